//! What a define costs as tasks accumulate: 1,000 defines into an empty processor, then into one
//! that holds 6,000 tasks, through the task API with a data dir (each define saved). Before the
//! per-task store every define rewrote and fsynced the whole file: 5.6 s per 1,000 at first,
//! 74 s at 6,000 tasks. Prints the figures. Run: `cargo bench -p processor --bench task_defines`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use processor::config::Config;
use processor::{Options, Processor};

const SCRIPT: &str = include_str!("../tests/fixtures/tick/autoscale.tick");

fn define(addr: SocketAddr, id: &str) {
    let body = serde_json::json!({
        "id": id,
        "type": "stream",
        "dbrps": [{"db": "autoscale", "rp": "autogen"}],
        "script": format!("{SCRIPT}        .dryRun()\n"),
        "status": "enabled",
    })
    .to_string();
    let mut stream = TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST /kapacitor/v1/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(body.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("answer");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "data_dir = {:?}\n[http]\nbind-address = \"127.0.0.1:0\"\n",
        dir.path().display().to_string()
    );
    let config = Config::parse(&text).expect("config").config;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let processor = runtime
        .block_on(Processor::bind(config, Options::default()))
        .expect("processor");
    let addr = processor.local_addr().expect("address");
    runtime.spawn(processor.serve(std::future::pending::<()>()));

    let mut defined = 0;
    let mut batch = |count: usize| {
        let started = Instant::now();
        for _ in 0..count {
            define(addr, &format!("t{defined}"));
            defined += 1;
        }
        started.elapsed()
    };
    let first = batch(1000);
    println!(
        "1,000 defines into an empty processor: {:.2} s ({:.2} ms each)",
        first.as_secs_f64(),
        first.as_secs_f64()
    );
    let filling = batch(5000);
    println!("5,000 more defines: {:.2} s", filling.as_secs_f64());
    let last = batch(1000);
    println!(
        "1,000 defines at 6,000 tasks: {:.2} s ({:.2} ms each); ratio to the first 1,000: {:.2}",
        last.as_secs_f64(),
        last.as_secs_f64(),
        last.as_secs_f64() / first.as_secs_f64()
    );
}
