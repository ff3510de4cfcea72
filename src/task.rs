//! The autoscale task the lab defines, pure: its script's vars set from the lab's defaults and
//! then from `--var name=value`, each typed as the script declares it, and the loop parameters
//! (target, moving-average count, cooldowns, bounds) read back from the compiled pipeline so the
//! view and the score judge the loop that really runs.
//!
//! Everything here happens before the lab starts anything: an unknown var, a value of the wrong
//! type or a script that does not compile is an [`Error`] (`main` exits 64).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use processor::tick::ast::Statement;
use processor::tick::nodes::NodeSpec;
use processor::tick::value::parse_duration;
use processor::tick::{self, TaskVar, Value, VarOverrides, VarType};

/// One `--var name=value` as given on the command line, not yet typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarArg {
    pub name: String,
    /// The text after the first `=`: typed later, as the script declares the var.
    pub value: String,
}

impl FromStr for VarArg {
    type Err = String;

    /// Parses `name=value`; the value may be empty (an empty string var) and may hold `=`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((name, value)) = text.split_once('=') else {
            return Err(format!("expected name=value, got {text:?}"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("no var name before `=` in {text:?}"));
        }
        Ok(VarArg {
            name: name.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// Why the task cannot be defined as asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The script does not parse or compile (with the vars applied).
    #[error("tick: {0}")]
    Script(#[source] tick::Error),
    /// `--var` names a var the script does not declare.
    #[error("--var {name}: the script declares no such var (it declares: {declared})")]
    UnknownVar { name: String, declared: String },
    /// `--var` names a var that holds a node chain.
    #[error("--var {name}: the script's var holds a node chain, which cannot be set")]
    NodeVar { name: String },
    /// The same var given twice.
    #[error("--var {name} is given twice")]
    Repeated { name: String },
    /// A value that is not of the type the script declares.
    #[error("--var {name}={value}: the script declares {name} as {kind}: {reason}")]
    BadValue {
        name: String,
        value: String,
        kind: VarType,
        reason: String,
    },
    /// A var of a type the command line cannot express.
    #[error("--var {name}: a {kind} var cannot be set from the command line (use a vars file)")]
    Unsettable { name: String, kind: VarType },
    /// `var name type` without a value, and none given.
    #[error(
        "the script declares `var {name} {kind}` without a value: give it with --var {name}=..."
    )]
    MissingValue { name: String, kind: VarType },
    /// The `target` var is not a positive number (the lab sizes replicas and scores with it).
    #[error("target must be a positive number of requests per second, not {0}")]
    Target(f64),
}

/// `Result` of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the lab sets when the script leaves it alone (no `target` var, no k8sAutoscale or
/// movingAverage node): also the values of the lab's own vars.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// Requests per second per replica: the `target` var.
    pub target: f64,
    /// Points averaged: the `moving_avg_count` var.
    pub moving_avg_count: i64,
    /// The `increase_cooldown` var.
    pub increase_cooldown: Duration,
    /// The `decrease_cooldown` var.
    pub decrease_cooldown: Duration,
    /// Bounds when the script has no k8sAutoscale node.
    pub min: i64,
    /// Upper bound when the script has no k8sAutoscale node; 0 = none.
    pub max: i64,
}

impl Defaults {
    /// The lab's values for the tutorial's vars, as TICKscript literals by var name.
    fn var_texts(&self) -> [(&'static str, String); 4] {
        let duration = |d: Duration| {
            tick::value::format_tick_duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        };
        [
            ("target", self.target.to_string()),
            ("moving_avg_count", self.moving_avg_count.to_string()),
            ("increase_cooldown", duration(self.increase_cooldown)),
            ("decrease_cooldown", duration(self.decrease_cooldown)),
        ]
    }
}

/// The loop as the compiled task runs it: what the view and the score use.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopParams {
    /// Requests per second per replica (the `target` var, else the default).
    pub target: f64,
    /// The first movingAverage node's count (1 without one).
    pub moving_avg_count: i64,
    /// The first k8sAutoscale node's cooldowns, min and max (0 = none).
    pub increase_cooldown: Duration,
    pub decrease_cooldown: Duration,
    pub min: i64,
    pub max: i64,
    /// Its stabilization windows (`.scaleUpStabilization()`, `.scaleDownStabilization()`):
    /// like a cooldown, a delay the task asks for (zero without them).
    pub up_stabilization: Duration,
    pub down_stabilization: Duration,
}

/// The task ready to define: its vars (the task API's JSON shape) and the loop it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub vars: VarOverrides,
    pub params: LoopParams,
    /// Every var the task sets, as `name=value` in TICKscript syntax (for titles and reports).
    pub settings: Vec<String>,
}

/// Types the lab's defaults (for the vars the script declares, when they fit its type) and then
/// `vars` (each must be declared and fit) and compiles `script` with them.
pub fn prepare(script: &str, defaults: &Defaults, vars: &[VarArg]) -> Result<Task> {
    let mut given: BTreeMap<&str, &str> = BTreeMap::new();
    for var in vars {
        if given
            .insert(var.name.as_str(), var.value.as_str())
            .is_some()
        {
            return Err(Error::Repeated {
                name: var.name.clone(),
            });
        }
    }
    let lab_values = defaults.var_texts();
    let lab_value = |name: &str| {
        lab_values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };

    // Every var the script declares, and the types of those declared without a value.
    let program = tick::parser::parse(script).map_err(Error::Script)?;
    let mut declared = BTreeSet::new();
    let mut type_declared: BTreeMap<&str, Option<VarType>> = BTreeMap::new();
    for statement in &program.statements {
        match statement {
            Statement::Var { name, .. } => {
                declared.insert(*name);
                type_declared.remove(name);
            }
            Statement::TypeDecl {
                name, type_name, ..
            } => {
                declared.insert(*name);
                // An unknown type name is the compiler's error, reported below.
                type_declared.insert(name, VarType::from_name(type_name));
            }
            _ => {}
        }
    }
    if let Some(name) = given.keys().find(|name| !declared.contains(*name)) {
        return Err(Error::UnknownVar {
            name: (*name).to_owned(),
            declared: if declared.is_empty() {
                "nothing".to_owned()
            } else {
                declared.iter().copied().collect::<Vec<_>>().join(", ")
            },
        });
    }

    // First pass: values for the vars declared without one, to learn the others' types.
    let mut first = VarOverrides::new();
    for (name, kind) in &type_declared {
        let Some(kind) = *kind else { continue };
        let value = match (given.get(name), lab_value(name)) {
            (Some(text), _) => typed(name, kind, text)?,
            (None, Some(text)) => match typed(name, kind, text) {
                Ok(value) => value,
                Err(_) => return Err(missing(name, kind)),
            },
            (None, None) => return Err(missing(name, kind)),
        };
        first.insert((*name).to_owned(), value);
    }
    let pipeline = tick::compile(script, &first).map_err(Error::Script)?;
    let types: BTreeMap<&str, VarType> = pipeline
        .vars
        .iter()
        .map(|(name, value)| (name.as_str(), value.var_type()))
        .collect();

    // Second pass: the lab's defaults where they fit, then every --var.
    let mut overrides = VarOverrides::new();
    for (name, text) in &lab_values {
        if let Some(&kind) = types.get(name)
            && let Ok(value) = typed(name, kind, text)
        {
            overrides.insert((*name).to_owned(), value);
        }
    }
    for (name, text) in &given {
        let Some(&kind) = types.get(name) else {
            return Err(Error::NodeVar {
                name: (*name).to_owned(),
            });
        };
        overrides.insert((*name).to_owned(), typed(name, kind, text)?);
    }
    let pipeline = tick::compile(script, &overrides).map_err(Error::Script)?;

    let target = pipeline
        .vars
        .iter()
        .find(|(name, _)| name == "target")
        .and_then(|(_, value)| match value {
            Value::Float(x) => Some(*x),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        })
        .unwrap_or(defaults.target);
    if !(target.is_finite() && target > 0.0) {
        return Err(Error::Target(target));
    }
    let moving_avg_count = pipeline
        .nodes
        .iter()
        .find_map(|node| match &node.spec {
            NodeSpec::MovingAverage(spec) => Some(i64::try_from(spec.count).unwrap_or(i64::MAX)),
            _ => None,
        })
        .unwrap_or(1);
    // The first regular k8sAutoscale node (a burst node beside it only ever adds replicas).
    let autoscale = pipeline.nodes.iter().find_map(|node| match &node.spec {
        NodeSpec::K8sAutoscale(spec) if spec.behavior.burst.is_none() => Some(spec),
        _ => None,
    });
    let params = match autoscale {
        Some(spec) => LoopParams {
            target,
            moving_avg_count,
            increase_cooldown: spec.increase_cooldown,
            decrease_cooldown: spec.decrease_cooldown,
            min: spec.min,
            max: spec.max,
            up_stabilization: spec.behavior.up.stabilization,
            down_stabilization: spec.behavior.down.stabilization,
        },
        None => LoopParams {
            target,
            moving_avg_count,
            increase_cooldown: defaults.increase_cooldown,
            decrease_cooldown: defaults.decrease_cooldown,
            min: defaults.min,
            max: defaults.max,
            up_stabilization: Duration::ZERO,
            down_stabilization: Duration::ZERO,
        },
    };
    let settings = pipeline
        .vars
        .iter()
        .filter(|(name, _)| overrides.contains_key(name))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    Ok(Task {
        vars: overrides,
        params,
        settings,
    })
}

fn missing(name: &str, kind: VarType) -> Error {
    Error::MissingValue {
        name: name.to_owned(),
        kind,
    }
}

/// `text` as a task var of type `kind`, checked as far as the lab can (regexes and lambdas are
/// checked by the compile that follows).
fn typed(name: &str, kind: VarType, text: &str) -> Result<TaskVar> {
    let bad = |reason: &str| Error::BadValue {
        name: name.to_owned(),
        value: text.to_owned(),
        kind,
        reason: reason.to_owned(),
    };
    let value = match kind {
        VarType::Bool => match text.to_ascii_lowercase().as_str() {
            "true" => serde_json::Value::Bool(true),
            "false" => serde_json::Value::Bool(false),
            _ => return Err(bad("expected true or false")),
        },
        VarType::Int => serde_json::Value::from(
            text.trim()
                .parse::<i64>()
                .map_err(|_| bad("expected a whole number"))?,
        ),
        VarType::Float => {
            let x = text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad("expected a finite number"))?;
            serde_json::Number::from_f64(x)
                .map(serde_json::Value::Number)
                .ok_or_else(|| bad("expected a finite number"))?
        }
        VarType::Duration => {
            parse_duration(text.trim()).map_err(|reason| bad(&reason))?;
            serde_json::Value::String(text.trim().to_owned())
        }
        VarType::String | VarType::Regex | VarType::Lambda => {
            serde_json::Value::String(text.to_owned())
        }
        VarType::Star | VarType::List => {
            return Err(Error::Unsettable {
                name: name.to_owned(),
                kind,
            });
        }
    };
    Ok(TaskVar {
        kind,
        value,
        description: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::TUTORIAL_TICK;

    fn defaults() -> Defaults {
        Defaults {
            target: 100.0,
            moving_avg_count: 10,
            increase_cooldown: Duration::from_secs(5),
            decrease_cooldown: Duration::from_secs(15),
            min: 1,
            max: 10,
        }
    }

    fn args(list: &[&str]) -> Vec<VarArg> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    /// A pipeline with literal cooldowns and bounds, a type-declared var and vars of every type
    /// the command line sets.
    const CUSTOM: &str = "var window float\nvar name = 'app'\nvar verbose = FALSE\n\
        var limit = 3\nvar s = stream\n    |from()\n        .measurement('requests')\n\
        s\n    |movingAverage('value', 4)\n    |k8sAutoscale()\n        .resourceName('app')\n\
        .increaseCooldown(30s)\n        .decreaseCooldown(1m)\n        .min(2)\n        .max(8)\n\
        .replicas(lambda: int(ceil(\"movingAverage\" / window)))\n";

    #[test]
    fn var_args_split_at_the_first_equals_sign() {
        assert_eq!(
            "expr=a=b".parse::<VarArg>(),
            Ok(VarArg {
                name: "expr".into(),
                value: "a=b".into()
            })
        );
        assert_eq!(
            "name=".parse::<VarArg>(),
            Ok(VarArg {
                name: "name".into(),
                value: String::new()
            })
        );
        assert!("increase_cooldown".parse::<VarArg>().is_err());
        assert!("=5s".parse::<VarArg>().is_err());
    }

    #[test]
    fn the_lab_defaults_set_the_tutorial_vars() {
        let task = prepare(TUTORIAL_TICK, &defaults(), &[]).unwrap();
        assert_eq!(task.vars["moving_avg_count"].kind, VarType::Int);
        assert_eq!(task.vars["moving_avg_count"].value, serde_json::json!(10));
        assert_eq!(
            task.vars["increase_cooldown"].value,
            serde_json::json!("5s")
        );
        assert_eq!(
            task.vars["decrease_cooldown"].value,
            serde_json::json!("15s")
        );
        assert_eq!(task.vars["target"].kind, VarType::Float);
        assert_eq!(
            task.params,
            LoopParams {
                target: 100.0,
                moving_avg_count: 10,
                increase_cooldown: Duration::from_secs(5),
                decrease_cooldown: Duration::from_secs(15),
                min: 1,
                max: 10,
                up_stabilization: Duration::ZERO,
                down_stabilization: Duration::ZERO,
            }
        );
        assert_eq!(
            task.settings,
            [
                "target=100.0",
                "increase_cooldown=5s",
                "decrease_cooldown=15s",
                "moving_avg_count=10"
            ]
        );
    }

    #[test]
    fn the_example_ticks_are_scored_with_their_stabilization_and_their_stable_node() {
        let hpa = include_str!("../processor/examples/hpa-like.tick");
        let task = prepare(hpa, &defaults(), &[]).unwrap();
        assert_eq!(task.params.down_stabilization, Duration::from_secs(30));
        assert_eq!(task.params.up_stabilization, Duration::ZERO);
        assert_eq!(task.params.decrease_cooldown, Duration::ZERO);
        let burst = include_str!("../processor/examples/burst.tick");
        let task = prepare(burst, &defaults(), &args(&["moving_avg_count=60"])).unwrap();
        assert_eq!(
            task.params.moving_avg_count, 60,
            "the stable window, not the burst's 5"
        );
        assert_eq!(
            task.params.increase_cooldown,
            Duration::from_secs(5),
            "the lab's value"
        );
    }

    #[test]
    fn var_flags_override_the_lab_defaults_typed_as_the_script_declares() {
        let vars = args(&[
            "increase_cooldown=1m",
            "decrease_cooldown=2m",
            "moving_avg_count=60",
            "target=150",
        ]);
        let task = prepare(TUTORIAL_TICK, &defaults(), &vars).unwrap();
        assert_eq!(task.vars["increase_cooldown"].kind, VarType::Duration);
        assert_eq!(
            task.vars["increase_cooldown"].value,
            serde_json::json!("1m")
        );
        assert_eq!(task.vars["moving_avg_count"].value, serde_json::json!(60));
        // `150` is a float because the tutorial declares `var target = 100.0`.
        assert_eq!(task.vars["target"].kind, VarType::Float);
        assert_eq!(task.vars["target"].value, serde_json::json!(150.0));
        assert_eq!(
            task.params,
            LoopParams {
                target: 150.0,
                moving_avg_count: 60,
                increase_cooldown: Duration::from_secs(60),
                decrease_cooldown: Duration::from_secs(120),
                min: 1,
                max: 10,
                up_stabilization: Duration::ZERO,
                down_stabilization: Duration::ZERO,
            }
        );
    }

    #[test]
    fn an_unknown_var_is_an_error_naming_the_declared_ones() {
        let error = prepare(TUTORIAL_TICK, &defaults(), &args(&["cooldown=1m"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--var cooldown: the script declares no such var (it declares: decrease_cooldown, \
             increase_cooldown, moving_avg_count, target)"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_an_error() {
        for (arg, kind) in [
            ("moving_avg_count=1.5", VarType::Int),
            ("increase_cooldown=5", VarType::Duration),
            ("increase_cooldown=5 minutes", VarType::Duration),
            ("target=fast", VarType::Float),
            ("target=inf", VarType::Float),
        ] {
            match prepare(TUTORIAL_TICK, &defaults(), &args(&[arg])) {
                Err(Error::BadValue { kind: got, .. }) => assert_eq!(got, kind, "{arg}"),
                other => panic!("{arg}: {other:?}"),
            }
        }
        let error = prepare(TUTORIAL_TICK, &defaults(), &args(&["increase_cooldown=5"]))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "--var increase_cooldown=5: the script declares increase_cooldown as duration"
            ),
            "{error}"
        );
    }

    #[test]
    fn the_same_var_twice_is_an_error() {
        let vars = args(&["target=100", "target=200"]);
        assert!(matches!(
            prepare(TUTORIAL_TICK, &defaults(), &vars),
            Err(Error::Repeated { name }) if name == "target"
        ));
    }

    #[test]
    fn a_non_positive_target_is_an_error() {
        assert!(matches!(
            prepare(TUTORIAL_TICK, &defaults(), &args(&["target=0"])),
            Err(Error::Target(t)) if t == 0.0
        ));
    }

    #[test]
    fn a_script_without_the_lab_vars_runs_with_its_own_literals() {
        let task = prepare(CUSTOM, &defaults(), &args(&["window=50"])).unwrap();
        // None of the lab's vars is declared, so none is sent (the processor would refuse it).
        assert_eq!(task.vars.keys().collect::<Vec<_>>(), ["window"]);
        assert_eq!(task.vars["window"].value, serde_json::json!(50.0));
        assert_eq!(
            task.params,
            LoopParams {
                target: 100.0,
                moving_avg_count: 4,
                increase_cooldown: Duration::from_secs(30),
                decrease_cooldown: Duration::from_secs(60),
                min: 2,
                max: 8,
                up_stabilization: Duration::ZERO,
                down_stabilization: Duration::ZERO,
            }
        );
    }

    #[test]
    fn string_bool_and_int_vars_are_typed_and_node_vars_cannot_be_set() {
        let vars = args(&["window=50", "name=web", "verbose=true", "limit=7"]);
        let task = prepare(CUSTOM, &defaults(), &vars).unwrap();
        assert_eq!(task.vars["name"].value, serde_json::json!("web"));
        assert_eq!(task.vars["verbose"].value, serde_json::json!(true));
        assert_eq!(task.vars["limit"].value, serde_json::json!(7));
        assert!(task.settings.contains(&"name='web'".to_owned()));
        assert!(task.settings.contains(&"verbose=TRUE".to_owned()));

        let error = prepare(CUSTOM, &defaults(), &args(&["window=50", "s=1"])).unwrap_err();
        assert!(matches!(error, Error::NodeVar { name } if name == "s"));
        let error = prepare(CUSTOM, &defaults(), &args(&["window=50", "verbose=yes"]));
        assert!(matches!(
            error,
            Err(Error::BadValue {
                kind: VarType::Bool,
                ..
            })
        ));
    }

    #[test]
    fn a_var_declared_without_a_value_needs_one() {
        let error = prepare(CUSTOM, &defaults(), &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the script declares `var window float` without a value: give it with --var window=..."
        );
        // A declared target takes the lab's default.
        let script = CUSTOM.replace("var window float", "var target float\nvar window = 10.0");
        let task = prepare(&script, &defaults(), &[]).unwrap();
        assert_eq!(task.vars["target"].value, serde_json::json!(100.0));
        assert_eq!(task.params.target, 100.0);
    }

    #[test]
    fn a_script_that_does_not_compile_is_an_error() {
        let error = prepare("stream\n    |nosuchnode()\n", &defaults(), &[]).unwrap_err();
        assert!(matches!(error, Error::Script(_)), "{error}");
        // A lambda var is checked by the compile.
        let script = "var f = lambda: \"v\" > 1\nstream\n    |from()\n    |where(f)\n";
        assert!(prepare(script, &defaults(), &args(&["f=\"v\" >"])).is_err());
        assert!(prepare(script, &defaults(), &args(&["f=\"v\" < 3"])).is_ok());
    }
}
