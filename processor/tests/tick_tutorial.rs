//! The tutorial's `autoscale.tick` (compat.md §1.3, unchanged) compiles to Kapacitor's pipeline,
//! and task vars override its `var`s.

use std::time::Duration;

use processor::line_protocol::Precision;
use processor::routing::Key;
use processor::scaler::Kind;
use processor::tick::lambda::{FieldValue, PointScope};
use processor::tick::nodes::{AggregateFn, Keep, NodeKind, NodeSpec};
use processor::tick::value::parse_vars_json;
use processor::tick::{Dbrp, DotStats, Error, Node, Pipeline, Value, VarOverrides, compile};

fn tutorial() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tick/autoscale.tick"
    );
    std::fs::read_to_string(path).expect("fixture autoscale.tick")
}

fn compile_tutorial(vars: &str) -> Result<Pipeline, Error> {
    let vars: VarOverrides = parse_vars_json(vars).expect("vars json");
    compile(&tutorial(), &vars)
}

struct Avg(f64);

impl PointScope for Avg {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        (name == "avg_requests_per_second").then_some(FieldValue::Float(self.0))
    }
    fn tag(&self, name: &str) -> Option<&str> {
        (name == "deployment").then_some("app")
    }
    fn time(&self) -> i64 {
        0
    }
}

#[test]
fn tutorial_nodes_are_named_as_kapacitor_names_them() {
    let pipeline = compile_tutorial("{}").unwrap();
    let names: Vec<&str> = pipeline.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "stream0",
            "from1",
            "derivative2",
            "groupby3",
            "sum4",
            "movingAverage5",
            "k8s_autoscale6"
        ]
    );
    let edges: Vec<(&str, &str)> = pipeline
        .edges()
        .map(|(p, c)| (p.name.as_str(), c.name.as_str()))
        .collect();
    assert_eq!(edges.len(), 6);
    assert_eq!(edges[0], ("stream0", "from1"));
    assert_eq!(edges[5], ("movingAverage5", "k8s_autoscale6"));
    assert!(pipeline.dbrps.is_empty());
}

#[test]
fn tutorial_properties_are_typed_with_kapacitor_defaults() {
    let pipeline = compile_tutorial("{}").unwrap();
    let spec = |name: &str| &pipeline.node_named(name).unwrap().spec;

    let NodeSpec::From(from) = spec("from1") else {
        panic!("from1")
    };
    assert_eq!(from.measurement.as_deref(), Some("requests"));
    assert_eq!(from.group_by.tags, vec!["host", "deployment"]);
    assert!(!from.group_by.all);
    assert_eq!(from.truncate, Some(Duration::from_secs(1)));
    assert_eq!(from.database, None);

    let NodeSpec::Derivative(d) = spec("derivative2") else {
        panic!("derivative2")
    };
    assert_eq!(d.field, "counter");
    assert_eq!(d.as_, "requests_per_second");
    assert_eq!(d.unit, Duration::from_secs(1));
    assert!(d.non_negative);

    let NodeSpec::GroupBy(g) = spec("groupby3") else {
        panic!("groupby3")
    };
    assert_eq!(g.dimensions.tags, vec!["deployment"]);

    let NodeSpec::Aggregate(sum) = spec("sum4") else {
        panic!("sum4")
    };
    assert_eq!(sum.function, AggregateFn::Sum);
    assert_eq!(sum.field, "requests_per_second");
    assert_eq!(sum.as_, "total_requests_per_second");

    let NodeSpec::MovingAverage(ma) = spec("movingAverage5") else {
        panic!("movingAverage5")
    };
    assert_eq!(ma.field, "total_requests_per_second");
    assert_eq!(ma.count, 60);
    assert_eq!(ma.as_, "avg_requests_per_second");

    let NodeSpec::K8sAutoscale(k) = spec("k8s_autoscale6") else {
        panic!("k8s_autoscale6")
    };
    assert_eq!(k.kind, Kind::Deployments);
    assert_eq!(k.resource_name_tag.as_deref(), Some("deployment"));
    assert_eq!(k.resource_name, None);
    assert_eq!(k.increase_cooldown, Duration::from_secs(60));
    assert_eq!(k.decrease_cooldown, Duration::from_secs(120));
    assert_eq!((k.min, k.max), (1, 10));
    assert_eq!(k.namespace, "");
    assert_eq!(
        (
            k.namespace_tag.as_str(),
            k.kind_tag.as_str(),
            k.resource_tag.as_str()
        ),
        ("namespace", "kind", "resource")
    );
    assert_eq!(
        k.replicas.source(),
        "int(ceil(\"avg_requests_per_second\" / 100.0))"
    );
    assert_eq!(k.replicas.eval_int(&Avg(250.0)), Ok(3));
    assert_eq!(k.replicas.eval_int(&Avg(100.0)), Ok(1));
    assert_eq!(k.replicas.eval_int(&Avg(0.0)), Ok(0));
}

#[test]
fn tutorial_vars_are_listed_in_declaration_order() {
    let pipeline = compile_tutorial("{}").unwrap();
    let vars: Vec<(&str, String)> = pipeline
        .vars
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_string()))
        .collect();
    assert_eq!(
        vars,
        vec![
            ("target", "100.0".to_string()),
            ("increase_cooldown", "1m".to_string()),
            ("decrease_cooldown", "2m".to_string()),
            ("moving_avg_count", "60".to_string()),
        ]
    );
}

#[test]
fn task_vars_replace_the_script_values_before_binding() {
    let pipeline = compile_tutorial(
        r#"{
            "moving_avg_count": {"type": "int", "value": 5},
            "increase_cooldown": {"type": "duration", "value": "10s"},
            "decrease_cooldown": {"type": "duration", "value": 20000000000},
            "target": {"type": "float", "value": 50}
        }"#,
    )
    .unwrap();
    let NodeSpec::MovingAverage(ma) = &pipeline.node_named("movingAverage5").unwrap().spec else {
        panic!("movingAverage5")
    };
    assert_eq!(ma.count, 5);
    let NodeSpec::K8sAutoscale(k) = &pipeline.node_named("k8s_autoscale6").unwrap().spec else {
        panic!("k8s_autoscale6")
    };
    assert_eq!(k.increase_cooldown, Duration::from_secs(10));
    assert_eq!(k.decrease_cooldown, Duration::from_secs(20));
    // The lambda captured the overridden target: 250 / 50 = 5.
    assert_eq!(k.replicas.eval_int(&Avg(250.0)), Ok(5));
    assert!(
        pipeline
            .vars
            .contains(&("moving_avg_count".to_string(), Value::Int(5)))
    );
}

#[test]
fn task_var_of_the_wrong_type_is_rejected_by_name() {
    let err =
        compile_tutorial(r#"{"moving_avg_count": {"type": "float", "value": 5.5}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "vars override `moving_avg_count`: has type float but the script declares it as int"
    );
    let err =
        compile_tutorial(r#"{"moving_avg_count": {"type": "int", "value": 5.5}}"#).unwrap_err();
    assert!(err.to_string().contains("is not an integer"), "{err}");
    let err = compile_tutorial(r#"{"increase_cooldown": {"type": "duration", "value": "5min"}}"#)
        .unwrap_err();
    assert!(err.to_string().contains("`increase_cooldown`"), "{err}");
}

#[test]
fn task_var_that_the_script_does_not_declare_is_rejected() {
    let err = compile_tutorial(r#"{"moving_avg": {"type": "int", "value": 5}}"#).unwrap_err();
    assert_eq!(
        err,
        Error::Var {
            name: "moving_avg".to_string(),
            reason: "the script declares no such var".to_string()
        }
    );
}

#[test]
fn lambda_task_var_is_compiled_with_the_script_vars_in_scope() {
    let script = "var target = 100.0\nvar replicas = lambda: 1\nstream|from()|k8sAutoscale().resourceName('app').replicas(replicas)";
    let vars = parse_vars_json(
        r#"{"replicas": {"type": "lambda", "value": "int(ceil(\"avg_requests_per_second\" / target))"}}"#,
    )
    .unwrap();
    let pipeline = compile(script, &vars).unwrap();
    let NodeSpec::K8sAutoscale(k) = &pipeline.node_named("k8s_autoscale2").unwrap().spec else {
        panic!("k8s_autoscale2")
    };
    assert_eq!(k.replicas.eval_int(&Avg(201.0)), Ok(3));
}

#[test]
fn declared_type_var_takes_its_value_from_the_task_vars() {
    let script = "var count int\nstream|from()|movingAverage('x', count)";
    let vars = parse_vars_json(r#"{"count": {"type": "int", "value": 7}}"#).unwrap();
    let pipeline = compile(script, &vars).unwrap();
    let NodeSpec::MovingAverage(ma) = &pipeline.nodes[2].spec else {
        panic!()
    };
    assert_eq!(ma.count, 7);
    let err = compile(script, &VarOverrides::new()).unwrap_err();
    assert!(err.to_string().contains("has no value"), "{err}");
}

#[test]
fn dot_without_stats_lists_the_edges() {
    let pipeline = compile_tutorial("{}").unwrap();
    assert_eq!(
        pipeline.dot("autoscale"),
        "digraph autoscale {\n\
         stream0 -> from1;\n\
         from1 -> derivative2;\n\
         derivative2 -> groupby3;\n\
         groupby3 -> sum4;\n\
         sum4 -> movingAverage5;\n\
         movingAverage5 -> k8s_autoscale6;\n\
         }"
    );
}

struct ZeroStats;

impl DotStats for ZeroStats {
    fn graph(&self) -> Vec<(String, String)> {
        vec![("throughput".to_string(), "0.00 points/s".to_string())]
    }
    fn node(&self, node: &Node) -> Vec<(String, String)> {
        let mut stats = vec![("avg_exec_time_ns".to_string(), "0s".to_string())];
        if node.kind() == NodeKind::K8sAutoscale {
            for key in [
                "increase_events",
                "errors",
                "decrease_events",
                "cooldown_drops",
            ] {
                stats.push((key.to_string(), "0".to_string()));
            }
        }
        stats
    }
    fn edge(&self, _: &Node, _: &Node) -> Vec<(String, String)> {
        vec![("processed".to_string(), "0".to_string())]
    }
}

#[test]
fn dot_with_stats_reads_like_kapacitor_show() {
    let pipeline = compile_tutorial("{}").unwrap();
    let dot = pipeline.dot_with_stats("autoscale", &ZeroStats);
    assert!(dot.starts_with(
        "digraph autoscale {\ngraph [throughput=\"0.00 points/s\"];\n\nstream0 [avg_exec_time_ns=\"0s\" ];\nstream0 -> from1 [processed=\"0\"];\n"
    ), "{dot}");
    assert!(dot.contains(
        "\nk8s_autoscale6 [avg_exec_time_ns=\"0s\" cooldown_drops=\"0\" decrease_events=\"0\" errors=\"0\" increase_events=\"0\" ];\n}"
    ), "{dot}");
}

#[test]
fn kapacitor_docs_style_script_binds() {
    // The shape of Kapacitor's k8sAutoscale reference example: var aliasing, window, mean,
    // and an influxDBOut after the autoscale node.
    let script = r#"
dbrp "autoscale"."autogen"
var target = 100.0
var min = 1
var max = 100
var period = 5m
var every = period
stream
  |from()
    .measurement('requests')
    .groupBy('host', 'deployment')
    .truncate(1s)
  |derivative('value')
    .as('requests_per_second')
    .unit(1s)
    .nonNegative()
  |groupBy('deployment')
  |sum('requests_per_second')
    .as('total_requests')
  |window()
    .period(period)
    .every(every)
  |mean('total_requests')
    .as('total_requests')
  |k8sAutoscale()
    .resourceNameTag('deployment')
    .min(min)
    .max(max)
    .replicas(lambda: int(ceil("total_requests" / target)))
  |influxDBOut()
    .database('deployments')
    .measurement('scale_events')
    .precision('s')
    .tag('source', 'kapacitor')
"#;
    let pipeline = compile(script, &VarOverrides::new()).unwrap();
    let names: Vec<&str> = pipeline.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "stream0",
            "from1",
            "derivative2",
            "groupby3",
            "sum4",
            "window5",
            "mean6",
            "k8s_autoscale7",
            "influxdb_out8"
        ]
    );
    assert_eq!(pipeline.dbrps[0].database, "autoscale");
    assert_eq!(pipeline.dbrps[0].retention_policy, "autogen");
    let NodeSpec::Window(w) = &pipeline.nodes[5].spec else {
        panic!()
    };
    assert_eq!(
        (w.period, w.every),
        (Duration::from_secs(300), Duration::from_secs(300))
    );
    let NodeSpec::InfluxDbOut(out) = &pipeline.nodes[8].spec else {
        panic!()
    };
    assert_eq!(out.precision, Precision::Seconds);
    assert_eq!(
        out.tags.get("source").map(String::as_str),
        Some("kapacitor")
    );
}

#[test]
fn node_variables_branch_the_pipeline() {
    let script = r#"
var rates = stream
    |from()
        .measurement('requests')
        .groupBy(*)
        .where(lambda: "host" =~ /^web/ AND isPresent("counter"))
    |derivative('counter')
rates
    |eval(lambda: "counter" * 2.0, lambda: 'x')
        .as('double', 'marker')
        .tags('marker')
        .keep()
    |log().level('debug').prefix('E! ')
rates
    |httpOut('rates')
"#;
    let pipeline = compile(script, &VarOverrides::new()).unwrap();
    let derivative = pipeline.node_named("derivative2").unwrap();
    assert_eq!(derivative.children, vec![3, 5]);
    assert_eq!(pipeline.nodes[5].name, "http_out5");
    let NodeSpec::From(from) = &pipeline.nodes[1].spec else {
        panic!()
    };
    assert!(from.group_by.all);
    assert_eq!(
        from.where_.as_ref().unwrap().references(),
        vec!["host", "counter"]
    );
    let NodeSpec::Eval(eval) = &pipeline.nodes[3].spec else {
        panic!()
    };
    assert_eq!(eval.as_, vec!["double", "marker"]);
    assert_eq!(eval.keep, Keep::All);
    assert_eq!(eval.tags, vec!["marker"]);
    assert_eq!(derivative.location.line, 7);
}

#[test]
fn subscription_keys_cross_dbrps_with_from_measurements() {
    let script = r#"
stream|from().measurement('requests')|httpOut('a')
stream|from().measurement('requests').database('other')|httpOut('b')
stream|from()|httpOut('c')
"#;
    let pipeline = compile(script, &VarOverrides::new()).unwrap();
    let dbrp = |db: &str, rp: &str| Dbrp {
        database: db.to_string(),
        retention_policy: rp.to_string(),
    };
    let key = |db: &str, m: Option<&str>| Key {
        db: db.to_string(),
        rp: "autogen".to_string(),
        measurement: m.map(str::to_string),
    };
    assert_eq!(
        pipeline.subscription_keys(&[dbrp("autoscale", "autogen"), dbrp("other", "autogen")]),
        vec![
            key("autoscale", Some("requests")),
            key("autoscale", None),
            key("other", Some("requests")),
            key("other", None),
        ]
    );
    let tutorial = compile_tutorial("{}").unwrap();
    assert_eq!(
        tutorial.subscription_keys(&[dbrp("autoscale", "autogen")]),
        vec![key("autoscale", Some("requests"))]
    );
}
