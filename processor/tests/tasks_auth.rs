//! With `[http] auth-enabled`, the task API, the decision records and `debug/vars` need the
//! write API's credentials (as Kapacitor's); ping, ready and `/metrics` do not. The CLI sends
//! credentials given in its URL, as Kapacitor's CLI.

mod tasks_support;

use hyper::{Method, StatusCode};
use tasks_support::{call, cli, config, start};

const AUTH: &str = "auth-enabled = true\n[[http.users]]\nname = \"admin\"\npassword = \"p@ss\"\n";

async fn get(
    addr: std::net::SocketAddr,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, String) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let mut request = hyper::Request::get(format!("http://{addr}{path}"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = client
        .request(request.body(http_body_util::Full::default()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_task_api_needs_credentials_when_auth_is_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), AUTH)).await.unwrap();
    let addr = server.addr;

    for path in [
        "/kapacitor/v1/tasks",
        "/kapacitor/v1/tasks/x",
        "/kapacitor/v1/debug/vars",
        "/kapacitor/v1/decisions?task=x",
    ] {
        let (status, body) = get(addr, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert!(body.contains("\"error\""), "{path}: {body}");
        let (status, body) = get(addr, path, Some("Basic YWRtaW46d3Jvbmc=")).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{path} with a wrong password: {body}"
        );
    }
    // "admin:p@ss"
    let (status, body) = get(addr, "/kapacitor/v1/tasks", Some("Basic YWRtaW46cEBzcw==")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for path in ["/ping", "/kapacitor/v1/ping", "/ready", "/metrics"] {
        let (status, body) = get(addr, path, None).await;
        assert!(
            status.is_success(),
            "{path} needs no credentials: {status} {body}"
        );
    }
    // An unknown task with good credentials is a 404, not a 401.
    let (status, _, _) = call(
        addr,
        Method::GET,
        "/kapacitor/v1/tasks/x?u=admin&p=p%40ss",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let with_credentials = format!("http://admin:p%40ss@{addr}");
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || cli(&with_credentials, &["list", "tasks"]))
            .await
            .unwrap();
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("ID"), "{stdout}");
    let without = format!("http://{addr}");
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || cli(&without, &["list", "tasks"]))
            .await
            .unwrap();
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("authorization") || stderr.contains("credentials"),
        "{stderr}"
    );
    assert!(!stderr.contains("p%40ss"), "{stderr}");
    server.stop().await;
}
