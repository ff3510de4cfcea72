//! Tasks never diverge between processor replicas (issue #14): real processor binaries as
//! separate processes on loopback, each with `[ha] peers` naming the others (no election). A
//! change through one replica's task API is on the others when it is answered; a replica that
//! was down catches up by the anti-entropy sync; conflicting defines of one id converge to one
//! script everywhere. The replicas require credentials, which they also use with each other.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use workspace_bins::peers::{KillOnDrop, free_port};

const TUTORIAL: &str = include_str!("fixtures/tick/autoscale.tick");
const USER: &str = "telegraf";
const PASSWORD: &str = "s3cret";

/// The tutorial's tick, deciding only (the replicas have no `[kubernetes]`), with `target`.
fn script(target: &str) -> String {
    format!("{TUTORIAL}        .dryRun()\n")
        .replace("var target = 100.0", &format!("var target = {target}"))
}

fn define_body(id: &str, script: &str, status: &str) -> String {
    serde_json::json!({
        "id": id,
        "type": "stream",
        "dbrps": [{"db": "autoscale", "rp": "autogen"}],
        "script": script,
        "status": status,
    })
    .to_string()
}

/// One HTTP/1.0 request with the replicas' credentials: (status, headers, body); status 0 when
/// nothing answered.
fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String, String) {
    use base64::Engine as _;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return (0, String::new(), String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Basic {credentials}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut response = String::new();
    if stream.write_all(request.as_bytes()).is_err()
        || stream.read_to_string(&mut response).is_err()
    {
        return (0, String::new(), String::new());
    }
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_owned(), body.to_owned())
}

/// A replica: the processor binary on `port`, its data in `dir`.
struct Replica {
    addr: SocketAddr,
    process: Option<KillOnDrop>,
    config: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Replica {
    fn new(dir: &Path, name: &str, port: u16, peers: &[u16], sync_interval: &str) -> Replica {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        let peers: Vec<String> = peers
            .iter()
            .map(|port| format!("\"http://127.0.0.1:{port}\""))
            .collect();
        let config = dir.join(format!("{name}.conf"));
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\n\
                 [http]\nbind-address = \"127.0.0.1:{port}\"\nauth-enabled = true\n\
                 [[http.users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
                 [ha]\nidentity = \"{name}\"\npeers = [{}]\nsync-interval = \"{sync_interval}\"\n\
                 peer-timeout = \"2s\"\n",
                data.display().to_string(),
                peers.join(", ")
            ),
        )
        .unwrap();
        let mut replica = Replica {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            process: None,
            config,
            log: dir.join(format!("{name}.log")),
        };
        replica.start();
        replica
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(workspace_bins::binary("processor", "processor"))
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the processor");
        self.process = Some(KillOnDrop(child));
        let deadline = Instant::now() + Duration::from_secs(60);
        while request(self.addr, "GET", "/ping", "").0 != 204 {
            assert!(
                Instant::now() < deadline,
                "no replica on {}: {}",
                self.addr,
                self.logged()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: down, without a goodbye.
    fn kill(&mut self) {
        self.process = None;
    }

    fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Task `id` as this replica shows it (`None`: 404).
    fn task(&self, id: &str) -> Option<serde_json::Value> {
        let (status, _, body) = request(self.addr, "GET", &format!("/kapacitor/v1/tasks/{id}"), "");
        match status {
            200 => Some(serde_json::from_str(&body).unwrap()),
            404 => None,
            other => panic!("GET task {id} on {}: {other} {body}", self.addr),
        }
    }

    /// (script, status) of task `id`.
    fn script_and_status(&self, id: &str) -> Option<(String, String)> {
        self.task(id).map(|task| {
            (
                task["script"].as_str().unwrap_or_default().to_owned(),
                task["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
    }
}

/// Waits (at most `limit`) until `done`; returns how long it took.
fn within(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

#[test]
fn a_define_enable_disable_and_delete_on_one_replica_are_on_every_other_when_answered() {
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let others = |i: usize| -> Vec<u16> {
        ports
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| *p)
            .collect()
    };
    // A sync interval of an hour: what is seen here is the forwarding alone.
    let replicas: Vec<Replica> = (0..3)
        .map(|i| Replica::new(dir.path(), &format!("r{i}"), ports[i], &others(i), "1h"))
        .collect();
    let (a, b, c) = (&replicas[0], &replicas[1], &replicas[2]);

    let script = script("100.0");
    let (status, head, body) = request(
        a.addr,
        "POST",
        "/kapacitor/v1/tasks",
        &define_body("scale", &script, "disabled"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(!head.to_lowercase().contains("warning:"), "{head}");
    for replica in [b, c] {
        assert_eq!(
            replica.script_and_status("scale"),
            Some((script.clone(), "disabled".to_owned())),
            "the define reached {}",
            replica.addr
        );
    }

    let (status, _, body) = request(
        a.addr,
        "PATCH",
        "/kapacitor/v1/tasks/scale",
        r#"{"status":"enabled"}"#,
    );
    assert_eq!(status, 200, "{body}");
    for replica in [b, c] {
        assert_eq!(replica.task("scale").unwrap()["status"], "enabled");
        assert_eq!(replica.task("scale").unwrap()["executing"], true);
    }

    // A change on another replica goes everywhere too.
    let (status, _, body) = request(
        b.addr,
        "PATCH",
        "/kapacitor/v1/tasks/scale",
        r#"{"status":"disabled"}"#,
    );
    assert_eq!(status, 200, "{body}");
    for replica in [a, c] {
        assert_eq!(replica.task("scale").unwrap()["status"], "disabled");
    }

    let (status, _, body) = request(c.addr, "DELETE", "/kapacitor/v1/tasks/scale", "");
    assert_eq!(status, 204, "{body}");
    for replica in [a, b] {
        assert_eq!(replica.task("scale"), None, "deleted on {}", replica.addr);
    }
}

#[test]
fn a_replica_down_during_a_define_catches_up_within_one_sync_period() {
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let a = Replica::new(dir.path(), "a", port_a, &[port_b], "2s");
    let mut b = Replica::new(dir.path(), "b", port_b, &[port_a], "2s");
    let doomed = script("100.0");
    let (status, _, body) = request(
        a.addr,
        "POST",
        "/kapacitor/v1/tasks",
        &define_body("doomed", &doomed, "enabled"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(b.task("doomed").is_some());

    b.kill();
    // While B is down: a define and a delete on A, each answered with a warning naming B.
    let script = script("250.0");
    let (status, head, body) = request(
        a.addr,
        "POST",
        "/kapacitor/v1/tasks",
        &define_body("scale", &script, "enabled"),
    );
    assert_eq!(status, 200, "{body}");
    let peer_b = format!("http://127.0.0.1:{port_b}");
    assert!(
        head.lines()
            .any(|line| line.to_lowercase().starts_with("warning:") && line.contains(&peer_b)),
        "the answer names the peer that did not take it: {head}"
    );
    let (status, head, _) = request(a.addr, "DELETE", "/kapacitor/v1/tasks/doomed", "");
    assert_eq!(status, 204);
    assert!(head.contains(&peer_b), "{head}");
    let (_, _, metrics) = request(a.addr, "GET", "/metrics", "");
    let failures = format!("processor_ha_forward_failures_total{{peer=\"{peer_b}\"}} 2");
    assert!(metrics.contains(&failures), "{failures} in\n{metrics}");

    // B comes back with its old data dir (it still holds `doomed`): within one sync period
    // (2 s, plus a start) it has A's define and A's delete.
    b.start();
    let took = within(Duration::from_secs(30), "B converges", || {
        b.script_and_status("scale") == Some((script.clone(), "enabled".to_owned()))
            && b.task("doomed").is_none()
    });
    eprintln!(
        "the restarted replica converged {took:?} after it answered /ping (sync-interval 2s)"
    );
    assert_eq!(b.task("scale").unwrap()["executing"], true);
    // And A did not take B's stale copy of `doomed` back.
    assert_eq!(a.task("doomed"), None);
}

#[test]
fn concurrent_conflicting_defines_of_one_id_converge_to_the_same_script_on_both() {
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let a = Replica::new(dir.path(), "a", port_a, &[port_b], "1s");
    let b = Replica::new(dir.path(), "b", port_b, &[port_a], "1s");
    let (script_a, script_b) = (script("100.0"), script("300.0"));
    for round in 0..3 {
        let id = format!("race{round}");
        let define = |addr: SocketAddr, script: String, id: String| {
            std::thread::spawn(move || {
                request(
                    addr,
                    "POST",
                    "/kapacitor/v1/tasks",
                    &define_body(&id, &script, "enabled"),
                )
            })
        };
        let on_a = define(a.addr, script_a.clone(), id.clone());
        let on_b = define(b.addr, script_b.clone(), id.clone());
        let (status_a, _, body_a) = on_a.join().unwrap();
        let (status_b, _, body_b) = on_b.join().unwrap();
        // Each define is taken, or refused because the other's arrived first.
        for (status, body) in [(status_a, &body_a), (status_b, &body_b)] {
            assert!(
                status == 200 || (status == 400 && body.contains("already exists")),
                "{status} {body}"
            );
        }
        within(Duration::from_secs(30), "one script on both", || {
            let (on_a, on_b) = (a.script_and_status(&id), b.script_and_status(&id));
            on_a.is_some() && on_a == on_b
        });
        let (script, _) = a.script_and_status(&id).unwrap();
        assert!(script == script_a || script == script_b);
        // The versions agree too, so no later sync changes either.
        let version = |replica: &Replica| {
            let (_, _, body) = request(replica.addr, "GET", "/kapacitor/v1/ha/tasks", "");
            let state: serde_json::Value = serde_json::from_str(&body).unwrap();
            state["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|task| task["id"] == id.as_str())
                .map(|task| task["version"].clone())
        };
        assert_eq!(version(&a), version(&b));
        assert!(version(&a).is_some_and(|v| v["time"].as_i64() > Some(0)));
    }
}
