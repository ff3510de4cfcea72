//! Scraping over https with the TLS options: a server whose certificate is signed by a
//! throwaway CA (the stand-in's generator), trusted through `tls_ca`, refused without it, and
//! accepted blindly with `insecure_skip_verify`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use tokio::net::TcpListener;

use agent::config::Config;
use agent::scrape::{ScrapeError, Scraper};

/// An https server answering an exposition on every path; returns its address and CA PEM.
async fn https_server() -> (SocketAddr, String) {
    let tls = k8s_standin::tls::generate().expect("certificates");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.acceptor;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_request| async {
                    let mut response = Response::new(Full::new(Bytes::from_static(b"up 1\n")));
                    response
                        .headers_mut()
                        .insert("content-type", "text/plain; version=0.0.4".parse().unwrap());
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, tls.ca_pem)
}

fn scraper(addr: SocketAddr, tls: &str) -> Scraper {
    let text = format!(
        "[[inputs.prometheus]]\nurls = [\"https://localhost:{}/metrics\"]\n{tls}\n[[outputs.file]]\n",
        addr.port()
    );
    let config = Config::parse(&text, |_| None).unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    Scraper::new(&config.inputs[0]).unwrap()
}

#[tokio::test]
async fn a_server_signed_by_the_configured_ca_is_trusted() {
    let (addr, ca_pem) = https_server().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let scraper = scraper(addr, &format!("tls_ca = \"{}\"", ca.display()));
    let scraped = scraper.scrape(&scraper.targets[0]).await.unwrap();
    assert_eq!(&scraped.body[..], b"up 1\n");
}

#[tokio::test]
async fn an_unknown_ca_is_refused_unless_verification_is_skipped() {
    let (addr, _) = https_server().await;
    let strict = scraper(addr, "");
    let error = strict.scrape(&strict.targets[0]).await.unwrap_err();
    assert!(matches!(error, ScrapeError::Request(_)), "{error}");
    assert!(error.to_string().contains("certificate"), "{error}");

    let blind = scraper(addr, "insecure_skip_verify = true");
    let scraped = blind.scrape(&blind.targets[0]).await.unwrap();
    assert_eq!(&scraped.body[..], b"up 1\n");
}
