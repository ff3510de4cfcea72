//! Big scrapes: a body over `content_length_limit` fails that scrape with an error naming the URL
//! and the limit (announced or not, the next scrape still works), and a scrape bigger than the
//! output buffer keeps its newest metrics and counts every dropped one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use agent::Agent;
use agent::config::Config;
use agent::telemetry::Telemetry;

/// Answers the n-th request (from 0) with `bodies[n]` (the last one after that), as text
/// 0.0.4, with a Content-Length or, when `chunked`, in 1 KiB chunks without one.
async fn serve(bodies: Vec<String>, chunked: bool) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&served);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let body = bodies[n.min(bodies.len() - 1)].clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&chunk[..read]),
                    }
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nConnection: close\r\n";
                let mut response = Vec::new();
                if chunked {
                    response.extend_from_slice(
                        format!("{head}Transfer-Encoding: chunked\r\n\r\n").as_bytes(),
                    );
                    for piece in body.as_bytes().chunks(1024) {
                        response.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                        response.extend_from_slice(piece);
                        response.extend_from_slice(b"\r\n");
                    }
                    response.extend_from_slice(b"0\r\n\r\n");
                } else {
                    response.extend_from_slice(
                        format!("{head}Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
                    );
                    response.extend_from_slice(body.as_bytes());
                }
                let _ = stream.write_all(&response).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, served)
}

/// A text page of `n` gauges `g{i="0"}` ... in order.
fn gauges(n: usize) -> String {
    let mut page = String::from("# TYPE g gauge\n");
    for i in 0..n {
        page.push_str(&format!("g{{i=\"{i}\"}} {i}\n"));
    }
    page
}

fn agent_for(port: u16, input_extra: &str, agent_extra: &str, output: &str) -> Agent {
    let text = format!(
        "[agent]\nomit_hostname = true\n{agent_extra}\n\
         [[inputs.prometheus]]\nurls = [\"http://127.0.0.1:{port}/metrics\"]\n{input_extra}\n{output}\n"
    );
    let config = Config::parse(&text, |_| None).unwrap();
    Agent::new(config, None, &Telemetry::new()).unwrap()
}

#[tokio::test]
async fn a_page_over_content_length_limit_fails_naming_the_url_and_the_limit_and_the_next_scrape_works()
 {
    for chunked in [false, true] {
        // 2,000 gauges are about 30 KB; then a page of 10.
        let (port, served) = serve(vec![gauges(2000), gauges(10)], chunked).await;
        let agent = agent_for(
            port,
            "content_length_limit = \"16KiB\"",
            "",
            "[[outputs.file]]\nfiles = [\"stdout\"]",
        );
        let (lines, errors) = agent.test().await;
        assert!(lines.is_empty(), "nothing of the refused page is kept");
        assert_eq!(errors.len(), 1, "chunked: {chunked}");
        assert_eq!(errors[0].url, format!("http://127.0.0.1:{port}/metrics"));
        assert_eq!(
            errors[0].error, "body larger than content_length_limit (16384 bytes)",
            "chunked: {chunked}"
        );
        let (lines, errors) = agent.test().await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(lines.len(), 10);
        assert_eq!(served.load(Ordering::SeqCst), 2);
    }
}

#[tokio::test]
async fn a_page_exactly_at_the_limit_is_read() {
    let page = gauges(50);
    let (port, _) = serve(vec![page.clone()], true).await;
    let agent = agent_for(
        port,
        &format!("content_length_limit = {}", page.len()),
        "",
        "[[outputs.file]]\nfiles = [\"stdout\"]",
    );
    let (lines, errors) = agent.test().await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(lines.len(), 50);
}

#[test]
fn content_length_limit_reads_telegraf_sizes_and_refuses_what_is_out_of_range() {
    let input = |value: &str| {
        Config::parse(
            &format!(
                "[[inputs.prometheus]]\nurls = [\"http://h:1/metrics\"]\ncontent_length_limit = {value}\n[[outputs.file]]\n"
            ),
            |_| None,
        )
    };
    let limit = |value: &str| input(value).unwrap().inputs[0].content_length_limit;
    assert_eq!(limit("\"32MiB\""), 32 << 20);
    assert_eq!(limit("\"1MB\""), 1_000_000);
    assert_eq!(limit("4096"), 4096);
    assert_eq!(
        limit("0"),
        agent::config::MAX_CONTENT_LENGTH_LIMIT,
        "Telegraf's 0 (no limit) is the largest limit"
    );
    let default = Config::parse(
        "[[inputs.prometheus]]\nurls = [\"http://h:1/metrics\"]\n[[outputs.file]]\n",
        |_| None,
    )
    .unwrap();
    assert_eq!(default.inputs[0].content_length_limit, 64 << 20);
    for bad in ["\"2GiB\"", "-1", "\"12 parsecs\"", "true"] {
        let error = input(bad).unwrap_err().to_string();
        assert!(
            error.contains("inputs.prometheus[0].content_length_limit"),
            "{bad}: {error}"
        );
    }
}

#[tokio::test]
async fn a_scrape_bigger_than_the_buffer_keeps_the_newest_metrics_and_counts_the_dropped() {
    let (port, _) = serve(vec![gauges(2500)], false).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let text = format!(
        "[agent]\nomit_hostname = true\nmetric_batch_size = 100\nmetric_buffer_limit = 1000\n\
         [[inputs.prometheus]]\nurls = [\"http://127.0.0.1:{port}/metrics\"]\nurl_tag = \"\"\n\
         [[outputs.file]]\nfiles = [{:?}]\n",
        out.display().to_string()
    );
    let config = Config::parse(&text, |_| None).unwrap();
    let telemetry = Telemetry::new();
    let agent = Agent::new(config, None, &telemetry).unwrap();
    let (errors, delivered) = agent.once().await;
    assert!(errors.is_empty() && delivered, "{errors:?}");
    let written = std::fs::read_to_string(&out).unwrap();
    let ids: Vec<usize> = written
        .lines()
        .map(|line| {
            let tag = line.split(',').nth(1).unwrap();
            tag.split(['=', ' ']).nth(1).unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(
        ids,
        (1500..2500).collect::<Vec<_>>(),
        "the newest 1,000, in order"
    );
    assert!(
        telemetry
            .render()
            .contains(r#"agent_dropped_metrics_total{output="file[0]",reason="overflow"} 1500"#),
        "{}",
        telemetry.render()
    );
}
