//! TICKscript costs: compiling the tutorial's script, and evaluating its lambdas per point.
//!
//! `cargo bench -p processor --bench tick_lambda`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use processor::line_protocol::{Precision, parse_body};
use processor::tick::nodes::NodeSpec;
use processor::tick::{VarOverrides, compile};

const TUTORIAL: &str = include_str!("../tests/fixtures/tick/autoscale.tick");

fn compile_tutorial(c: &mut Criterion) {
    let vars = VarOverrides::new();
    c.bench_function("tick/compile_tutorial", |b| {
        b.iter(|| compile(black_box(TUTORIAL), &vars).expect("tutorial compiles"))
    });
}

fn eval_lambdas(c: &mut Criterion) {
    let script = format!(
        "{TUTORIAL}\nstream|from().where(lambda: \"host\" =~ /^web-[0-9]+$/ AND \"counter\" > 0)"
    );
    let pipeline = compile(&script, &VarOverrides::new()).expect("script compiles");
    let Some(NodeSpec::K8sAutoscale(k8s)) = pipeline.nodes.get(6).map(|n| &n.spec) else {
        panic!("k8s_autoscale6")
    };
    let Some(NodeSpec::From(from)) = pipeline.nodes.get(7).map(|n| &n.spec) else {
        panic!("from7")
    };
    let predicate = from.where_.as_ref().expect("where lambda");
    let parsed = parse_body(
        b"requests,deployment=app,host=web-1,url=http://localhost:8000/metrics counter=4242i,avg_requests_per_second=250.5 1000000000\n".to_vec(),
        "autoscale".to_string(),
        "autogen".to_string(),
        Precision::Nanoseconds,
        0,
    );
    let point = parsed.batch.point(0).expect("one point");

    let mut group = c.benchmark_group("tick/eval");
    group.throughput(Throughput::Elements(1));
    group.bench_function("replicas_int_ceil_div", |b| {
        b.iter(|| k8s.replicas.eval_int(black_box(&point)).expect("int"))
    });
    group.bench_function("where_regex_and_compare", |b| {
        b.iter(|| predicate.eval_bool(black_box(&point)).expect("bool"))
    });
    group.finish();
}

criterion_group!(benches, compile_tutorial, eval_lambdas);
criterion_main!(benches);
