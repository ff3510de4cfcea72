//! Scraping over HTTP: the parser follows the response's Content-Type, unreadable answers are
//! errors that say why, and credentials are sent as configured.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use tokio::net::TcpListener;

use agent::config::Config;
use agent::scrape::{ACCEPT_HEADER, ScrapeError, Scraper};

type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<String>)>>>;

/// Serves `body` with `content_type` and `status` on every path, recording (path, Accept,
/// Authorization) of each request.
async fn serve(
    status: u16,
    content_type: Option<&'static str>,
    body: &'static str,
) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let recorded = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let recorded = Arc::clone(&recorded);
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let header = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_owned())
                    };
                    recorded.lock().unwrap().push((
                        request.uri().path().to_owned(),
                        header("accept"),
                        header("authorization"),
                    ));
                    let mut response =
                        Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                    if let Some(content_type) = content_type {
                        response
                            .headers_mut()
                            .insert("content-type", content_type.parse().unwrap());
                    }
                    async move { Ok::<_, Infallible>(response) }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (addr, seen)
}

fn scraper_for(addr: SocketAddr, extra: &str) -> Scraper {
    let text =
        format!("[[inputs.prometheus]]\nurls = [\"http://{addr}\"]\n{extra}\n[[outputs.file]]\n");
    let config = Config::parse(&text, |_| None).unwrap();
    Scraper::new(&config.inputs[0]).unwrap()
}

#[tokio::test]
async fn the_parser_follows_the_content_type() {
    let (addr, seen) = serve(
        200,
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "# TYPE a counter\na_total 1\n# EOF\n",
    )
    .await;
    let scraper = scraper_for(addr, "");
    let scraped = scraper.scrape(&scraper.targets[0]).await.unwrap();
    assert_eq!(scraped.format, agent::prom::Format::OpenMetrics);
    let (path, accept, authorization) = seen.lock().unwrap()[0].clone();
    assert_eq!(path, "/metrics", "an empty path scrapes /metrics");
    assert_eq!(accept.as_deref(), Some(ACCEPT_HEADER));
    assert_eq!(authorization, None);

    let (addr, _) = serve(200, None, "a 1\n").await;
    let scraper = scraper_for(addr, "");
    let scraped = scraper.scrape(&scraper.targets[0]).await.unwrap();
    assert_eq!(
        scraped.format,
        agent::prom::Format::Text,
        "no type means text 0.0.4"
    );
}

#[tokio::test]
async fn protobuf_and_unknown_types_are_errors_that_name_them() {
    for content_type in [
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        "application/json",
        "text/plain; version=9.9.9",
    ] {
        let (addr, _) = serve(200, Some(content_type), "whatever").await;
        let scraper = scraper_for(addr, "");
        let error = scraper.scrape(&scraper.targets[0]).await.unwrap_err();
        assert!(
            matches!(error, ScrapeError::UnsupportedContentType(_)),
            "{error}"
        );
        assert!(error.to_string().contains(content_type), "{error}");
    }
}

#[tokio::test]
async fn non_200_answers_and_dead_ports_are_errors() {
    let (addr, _) = serve(503, Some("text/plain"), "down").await;
    let scraper = scraper_for(addr, "");
    assert!(matches!(
        scraper.scrape(&scraper.targets[0]).await,
        Err(ScrapeError::Status(503))
    ));
    let dead: SocketAddr = format!("127.0.0.1:{}", workspace_bins::peers::free_port())
        .parse()
        .unwrap();
    let scraper = scraper_for(dead, "");
    assert!(matches!(
        scraper.scrape(&scraper.targets[0]).await,
        Err(ScrapeError::Request(_))
    ));
}

#[tokio::test]
async fn credentials_are_sent_as_configured() {
    let (addr, seen) = serve(200, None, "a 1\n").await;
    let basic = scraper_for(addr, "username = \"user\"\npassword = \"pass\"");
    basic.scrape(&basic.targets[0]).await.unwrap();
    let bearer = scraper_for(addr, "bearer_token_string = \"s3cret\"");
    bearer.scrape(&bearer.targets[0]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "from-file\n").unwrap();
    let from_file = scraper_for(
        addr,
        &format!("bearer_token = \"{}\"", token_file.display()),
    );
    from_file.scrape(&from_file.targets[0]).await.unwrap();
    // The file is read at every scrape: a rotated token is picked up.
    std::fs::write(&token_file, "rotated\n").unwrap();
    from_file.scrape(&from_file.targets[0]).await.unwrap();
    let authorizations: Vec<Option<String>> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, a)| a.clone())
        .collect();
    assert_eq!(
        authorizations,
        [
            Some("Basic dXNlcjpwYXNz".to_owned()),
            Some("Bearer s3cret".to_owned()),
            Some("Bearer from-file".to_owned()),
            Some("Bearer rotated".to_owned()),
        ]
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_token_file_that_never_ends_fails_the_scrape_instead_of_filling_memory() {
    let (addr, seen) = serve(200, None, "a 1\n").await;
    let endless = scraper_for(addr, "bearer_token = \"/dev/zero\"");
    let error = endless.scrape(&endless.targets[0]).await.unwrap_err();
    assert!(matches!(error, ScrapeError::BearerToken { .. }), "{error}");
    let chain = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert!(chain.contains("larger than"), "{chain}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing is sent without the token"
    );
}
