//! How long a scaler's calls take against the stand-in over loopback, with the real kube client:
//! `cargo bench -p k8s-standin --bench scale_round_trip`. The lab and the processor's tests use
//! these figures to know the stand-in adds well under a millisecond per call.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_standin::{Config, Server};
use kube::api::{Api, Patch, PatchParams};

fn scale_round_trip(c: &mut Criterion) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let (server, api) = runtime.block_on(async {
        let server = Server::start(Config::default().with_deployment("default", "app", 1))
            .await
            .unwrap_or_else(|e| panic!("stand-in: {e}"));
        let mut config = kube::Config::new(server.url().parse().unwrap_or_else(|e| panic!("{e}")));
        config.default_retry = false;
        let client = kube::Client::try_from(config).unwrap_or_else(|e| panic!("{e}"));
        let api: Api<Deployment> = Api::namespaced(client, "default");
        (server, api)
    });

    let mut group = c.benchmark_group("kube_against_standin");
    group.bench_function("get_scale", |b| {
        b.iter(|| {
            runtime
                .block_on(api.get_scale("app"))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    let mut replicas = 1;
    group.bench_function("patch_scale_merge", |b| {
        b.iter(|| {
            replicas = replicas % 10 + 1;
            let patch = Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}}));
            runtime
                .block_on(api.patch_scale("app", &PatchParams::default(), black_box(&patch)))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    group.finish();
    runtime.block_on(server.shutdown());
}

criterion_group!(benches, scale_round_trip);
criterion_main!(benches);
