//! The `kapacitor`-style client commands of the processor binary: `define`, `enable`,
//! `disable`, `show`, `list tasks`, `delete tasks`, `stats general`, talking to a server's
//! task API. Output follows `kapacitor` (compat.md 3). And ours: `decisions ID` prints a task's
//! decision records (`GET /kapacitor/v1/decisions`) as a table or as JSON lines.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid -dbrp {0:?}: expected db.rp (quote names with dots: \"my.db\".\"rp\")")]
    Dbrp(String),
    #[error("invalid vars file {path}: {reason}")]
    Vars { path: String, reason: String },
    #[error("invalid server url {0:?}")]
    Url(String),
    #[error("cannot reach {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The server answered with an error (its message).
    #[error("{0}")]
    Server(String),
    /// The server answered with something this client cannot read.
    #[error("unexpected answer from {url}: {reason}")]
    Answer { url: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Rewrites single-dash long flags (`-tick`) to double-dash (`--tick`), as `kapacitor` accepts
/// them; `-h`, `--x`, `-` and negative numbers are left alone.
pub fn rewrite_flags(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|arg| {
            let rest = arg.strip_prefix('-').unwrap_or("");
            let long = rest.chars().count() >= 2
                && !rest.starts_with('-')
                && rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
            if long { format!("-{arg}") } else { arg }
        })
        .collect()
}

/// The server URL: `--url` > `PROCESSOR_URL` > `KAPACITOR_URL` > `http://localhost:9092`.
pub fn server_url(flag: Option<String>, env: impl Fn(&str) -> Option<String>) -> String {
    flag.or_else(|| env("PROCESSOR_URL"))
        .or_else(|| env("KAPACITOR_URL"))
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "http://localhost:9092".to_string())
        .trim_end_matches('/')
        .to_string()
}

/// Splits `db.rp` (either part may be double-quoted).
pub fn parse_dbrp(text: &str) -> Result<(String, String)> {
    let bad = || Error::Dbrp(text.to_owned());
    let (db, rest) = if let Some(quoted) = text.strip_prefix('"') {
        let end = quoted.find('"').ok_or_else(bad)?;
        let (db, rest) = quoted.split_at(end);
        (db.to_owned(), rest.get(1..).ok_or_else(bad)?)
    } else {
        let dot = text.find('.').ok_or_else(bad)?;
        (
            text.get(..dot).unwrap_or_default().to_owned(),
            text.get(dot..).unwrap_or_default(),
        )
    };
    let rp = rest.strip_prefix('.').ok_or_else(bad)?;
    let rp = rp.trim_matches('"').to_owned();
    if db.is_empty() || rp.is_empty() {
        return Err(bad());
    }
    Ok((db, rp))
}

/// A client of one server's task API.
pub struct TaskClient {
    /// The server URL without credentials (safe to print).
    url: String,
    /// `Authorization` value from credentials in the URL.
    authorization: Option<String>,
    http: HttpClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

/// Splits `http://user:password@host:port` into the URL without its credentials and a Basic
/// `Authorization` value (Kapacitor's CLI takes credentials in `-url` the same way; `%XX`
/// escapes in them are decoded).
pub fn split_credentials(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let credentials = format!("{}:{}", percent_decode(user), percent_decode(password));
    let value = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, credentials);
    (
        format!("{scheme}://{host}{path}"),
        Some(format!("Basic {value}")),
    )
}

/// `%XX` escapes decoded (`+` stays `+`: this is a URL's userinfo, not a form).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// The client commands, spelled as the tutorial's `kapacitor` commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create or update a task (as `kapacitor define`).
    Define {
        /// Task id.
        name: String,
        /// The TICKscript file.
        #[arg(long, value_name = "FILE")]
        tick: Option<PathBuf>,
        /// Task type (only `stream`).
        #[arg(long = "type", default_value = "stream")]
        kind: String,
        /// Database and retention policy, `db.rp` (repeatable).
        #[arg(long)]
        dbrp: Vec<String>,
        /// A JSON file of task vars overriding the script's `var`s.
        #[arg(long, value_name = "FILE")]
        vars: Option<PathBuf>,
    },
    /// Enable tasks.
    Enable { ids: Vec<String> },
    /// Disable tasks.
    Disable { ids: Vec<String> },
    /// Show a task: definition, status and DOT graph with stats.
    Show { id: String },
    /// List tasks (`list tasks [ID...]`).
    List { what: String, ids: Vec<String> },
    /// Delete tasks (`delete tasks ID...`).
    Delete { what: String, ids: Vec<String> },
    /// Server statistics (`stats general`).
    Stats { what: String },
    /// A task's scaling decisions, newest first: one line per k8sAutoscale evaluation with
    /// the replicas read, asked for and decided, the outcome and the rules that shaped it.
    Decisions {
        /// Task id.
        id: String,
        /// At most this many records.
        #[arg(long, value_name = "N", default_value_t = crate::decisions::DEFAULT_LIMIT as u64,
              value_parser = clap::value_parser!(u64).range(1..=crate::decisions::MAX_LIMIT as u64))]
        limit: u64,
        /// One JSON record per line instead of the table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a client command against the server at `url`.
pub fn run(url: String, command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("processor: cannot start the runtime: {error}");
            return ExitCode::from(lifecycle::exit::UNAVAILABLE);
        }
    };
    let client = TaskClient::new(url);
    let usage = |message: &str| {
        eprintln!("processor: {message}");
        Err(None)
    };
    let result: Result<Option<String>, Option<Error>> = runtime.block_on(async {
        match command {
            Command::Define {
                name,
                tick,
                kind,
                dbrp,
                vars,
            } => client
                .define(&name, tick.as_deref(), &kind, &dbrp, vars.as_deref())
                .await
                .map(|()| None)
                .map_err(Some),
            Command::Enable { ids } => client
                .set_status(&ids, true)
                .await
                .map(|()| None)
                .map_err(Some),
            Command::Disable { ids } => client
                .set_status(&ids, false)
                .await
                .map(|()| None)
                .map_err(Some),
            Command::Show { id } => client.show(&id).await.map(Some).map_err(Some),
            Command::List { what, ids } if what == "tasks" => {
                client.list(&ids).await.map(Some).map_err(Some)
            }
            Command::Delete { what, ids } if what == "tasks" => {
                client.delete(&ids).await.map(|()| None).map_err(Some)
            }
            Command::Stats { what } if what == "general" => {
                client.stats_general().await.map(Some).map_err(Some)
            }
            Command::Decisions { id, limit, json } => client
                .decisions(&id, limit, json)
                .await
                .map(Some)
                .map_err(Some),
            Command::List { what, .. } | Command::Delete { what, .. } => {
                usage(&format!("unsupported kind {what:?}: only `tasks`"))
            }
            Command::Stats { what } => {
                usage(&format!("unsupported stats {what:?}: only `general`"))
            }
        }
    });
    match result {
        Ok(output) => {
            if let Some(output) = output {
                print!("{output}");
            }
            ExitCode::SUCCESS
        }
        Err(Some(error)) => {
            eprintln!("processor: {error}");
            ExitCode::FAILURE
        }
        Err(None) => ExitCode::from(lifecycle::exit::USAGE),
    }
}

impl TaskClient {
    pub fn new(url: String) -> TaskClient {
        let (url, authorization) = split_credentials(&url);
        TaskClient {
            url,
            authorization,
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        let url = format!("{}{path}", self.url);
        let uri: hyper::Uri = url.parse().map_err(|_| Error::Url(self.url.clone()))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(value) = &self.authorization {
            request = request.header("authorization", value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| Error::Url(self.url.clone()))?;
        let connect = |reason: String| Error::Connect {
            url: self.url.clone(),
            reason,
        };
        let response = tokio::time::timeout(Duration::from_secs(10), self.http.request(request))
            .await
            .map_err(|_| connect("timed out after 10s".into()))?
            .map_err(|e| connect(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| connect(e.to_string()))?
            .to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        if status >= 400 {
            let message = json["error"]
                .as_str()
                .map_or_else(|| format!("server answered {status}"), str::to_owned);
            return Err(Error::Server(message));
        }
        Ok((status, json))
    }

    /// `define NAME -tick FILE -type stream -dbrp db.rp [-vars FILE]`: creates the task
    /// (disabled), or updates an existing one keeping its status.
    pub async fn define(
        &self,
        id: &str,
        tick: Option<&Path>,
        kind: &str,
        dbrps: &[String],
        vars: Option<&Path>,
    ) -> Result<()> {
        // The task API takes bodies of 16 MiB at most: a larger script could not be sent.
        let read = |path: &Path| {
            lifecycle::files::read_text_capped(path, crate::tick::MAX_SCRIPT_FILE).map_err(
                |source| Error::Read {
                    path: path.display().to_string(),
                    source,
                },
            )
        };
        let mut body = serde_json::Map::new();
        body.insert("id".into(), id.into());
        body.insert("type".into(), kind.into());
        if let Some(tick) = tick {
            body.insert("script".into(), read(tick)?.into());
        }
        if !dbrps.is_empty() {
            let list: Vec<serde_json::Value> = dbrps
                .iter()
                .map(|d| parse_dbrp(d).map(|(db, rp)| serde_json::json!({"db": db, "rp": rp})))
                .collect::<Result<_>>()?;
            body.insert("dbrps".into(), list.into());
        }
        if let Some(vars) = vars {
            let text = read(vars)?;
            let parsed = crate::tick::value::parse_vars_json(&text).map_err(|e| Error::Vars {
                path: vars.display().to_string(),
                reason: e.to_string(),
            })?;
            body.insert(
                "vars".into(),
                serde_json::to_value(parsed).unwrap_or_default(),
            );
        }
        let path = format!("/kapacitor/v1/tasks/{id}");
        let exists = self.call(Method::GET, &path, None).await.is_ok();
        if exists {
            self.call(Method::PATCH, &path, Some(body.into())).await?;
        } else {
            body.insert("status".into(), "disabled".into());
            self.call(Method::POST, "/kapacitor/v1/tasks", Some(body.into()))
                .await?;
        }
        Ok(())
    }

    /// `enable ID...` / `disable ID...`.
    pub async fn set_status(&self, ids: &[String], enabled: bool) -> Result<()> {
        let status = if enabled { "enabled" } else { "disabled" };
        for id in ids {
            self.call(
                Method::PATCH,
                &format!("/kapacitor/v1/tasks/{id}"),
                Some(serde_json::json!({ "status": status })),
            )
            .await?;
        }
        Ok(())
    }

    /// `delete tasks ID...`.
    pub async fn delete(&self, ids: &[String]) -> Result<()> {
        for id in ids {
            self.call(Method::DELETE, &format!("/kapacitor/v1/tasks/{id}"), None)
                .await?;
        }
        Ok(())
    }

    /// `show ID`: the text `kapacitor show` prints.
    pub async fn show(&self, id: &str) -> Result<String> {
        let (_, task) = self
            .call(Method::GET, &format!("/kapacitor/v1/tasks/{id}"), None)
            .await?;
        let s = |key: &str| task[key].as_str().unwrap_or_default().to_owned();
        let mut out = String::new();
        let _ = writeln!(out, "ID: {}", s("id"));
        let _ = writeln!(out, "Error: {}", s("error"));
        let _ = writeln!(out, "Template: {}", s("template-id"));
        let _ = writeln!(out, "Type: {}", s("type"));
        let _ = writeln!(out, "Status: {}", s("status"));
        let _ = writeln!(
            out,
            "Executing: {}",
            task["executing"].as_bool().unwrap_or(false)
        );
        let _ = writeln!(out, "Created: {}", rfc822(&s("created")));
        let _ = writeln!(out, "Modified: {}", rfc822(&s("modified")));
        let _ = writeln!(out, "LastEnabled: {}", rfc822(&s("last-enabled")));
        let _ = writeln!(out, "Databases Retention Policies: {}", dbrps(&task));
        let _ = writeln!(out, "TICKscript:\n{}", s("script"));
        if let Some(vars) = task["vars"].as_object().filter(|v| !v.is_empty()) {
            let _ = writeln!(out, "Vars:\n{:<20}{:<10}Value", "Name", "Type");
            for (name, var) in vars {
                let value = match &var["value"] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let _ = writeln!(
                    out,
                    "{name:<20}{:<10}{value}",
                    var["type"].as_str().unwrap_or_default()
                );
            }
        }
        let _ = writeln!(out, "\nDOT:\n{}", s("dot"));
        Ok(out)
    }

    /// `list tasks [ID...]`.
    pub async fn list(&self, ids: &[String]) -> Result<String> {
        let (_, list) = self.call(Method::GET, "/kapacitor/v1/tasks", None).await?;
        let mut out = format!(
            "{:<30}{:<10}{:<10}{:<10}{}\n",
            "ID", "Type", "Status", "Executing", "Databases and Retention Policies"
        );
        for task in list["tasks"].as_array().into_iter().flatten() {
            let id = task["id"].as_str().unwrap_or_default();
            if !ids.is_empty() && !ids.iter().any(|i| i == id) {
                continue;
            }
            let _ = writeln!(
                out,
                "{id:<30}{:<10}{:<10}{:<10}{}",
                task["type"].as_str().unwrap_or_default(),
                task["status"].as_str().unwrap_or_default(),
                task["executing"].as_bool().unwrap_or(false),
                dbrps(task)
            );
        }
        Ok(out)
    }

    /// `stats general`.
    pub async fn stats_general(&self) -> Result<String> {
        let (_, vars) = self
            .call(Method::GET, "/kapacitor/v1/debug/vars", None)
            .await?;
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        let mut out = String::new();
        for (label, key) in [
            ("ClusterID:", "cluster_id"),
            ("ServerID:", "server_id"),
            ("Host:", "host"),
            ("Tasks:", "num_tasks"),
            ("Enabled Tasks:", "num_enabled_tasks"),
            ("Subscriptions:", "num_subscriptions"),
            ("Version:", "version"),
        ] {
            let _ = writeln!(out, "{label:<30}{}", text(&vars[key]));
        }
        Ok(out)
    }
}

impl TaskClient {
    /// `decisions ID [--limit N] [--json]`: the task's decision records, newest first, as a
    /// table or (`json`) one JSON record per line as the server wrote it.
    pub async fn decisions(&self, id: &str, limit: u64, json: bool) -> Result<String> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("task", id)
            .append_pair("limit", &limit.to_string())
            .finish();
        let (_, answer) = self
            .call(
                Method::GET,
                &format!("/kapacitor/v1/decisions?{query}"),
                None,
            )
            .await?;
        let unexpected = |reason: String| Error::Answer {
            url: self.url.clone(),
            reason,
        };
        let records = answer["decisions"]
            .as_array()
            .ok_or_else(|| unexpected("no \"decisions\" list".to_owned()))?;
        if json {
            return Ok(records.iter().map(|r| format!("{r}\n")).collect());
        }
        let records: Vec<crate::decisions::Record> = records
            .iter()
            .map(|r| serde_json::from_value(r.clone()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| unexpected(format!("a decision record: {e}")))?;
        Ok(decisions_table(&records))
    }
}

/// The records as an aligned table: time (ms), target, current, raw, desired, outcome (with
/// `×N` for coalesced repeats), delay, then the rules (`policy 20→5, max 5→4`) and any error.
pub fn decisions_table(records: &[crate::decisions::Record]) -> String {
    let header = [
        "TIME", "TARGET", "CURRENT", "RAW", "DESIRED", "OUTCOME", "DELAY", "RULES",
    ];
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|r| {
            let time =
                std::time::UNIX_EPOCH + Duration::from_nanos(u64::try_from(r.time_ns).unwrap_or(0));
            let outcome = match r.repeated {
                0 | 1 => r.outcome.name().to_owned(),
                n => format!("{} ×{n}", r.outcome.name()),
            };
            let rules = crate::scaler::decision::describe_steps(&r.rules);
            let rules = match (&r.error, r.rules.is_empty()) {
                (None, true) => "-".to_owned(),
                (None, false) => rules,
                (Some(error), true) => format!("error: {error}"),
                (Some(error), false) => format!("{rules}; error: {error}"),
            };
            [
                humantime::format_rfc3339_millis(time).to_string(),
                r.target.to_string(),
                or_dash(r.current.map(|n| n.to_string())),
                or_dash(r.raw.map(|n| n.to_string())),
                or_dash(r.desired.map(|n| n.to_string())),
                outcome,
                or_dash(r.delay_seconds.map(|s| format!("{s:.3}s"))),
                rules,
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = header.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        let last = row.len() - 1;
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let pad = width - cell.chars().count() + 2;
                let _ = write!(out, "{cell}{:pad$}", "");
            }
        }
        out.push('\n');
    }
    out
}

fn dbrps(task: &serde_json::Value) -> String {
    let list: Vec<String> = task["dbrps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            format!(
                "\"{}\".\"{}\"",
                d["db"].as_str().unwrap_or_default(),
                d["rp"].as_str().unwrap_or_default()
            )
        })
        .collect();
    format!("[{}]", list.join(", "))
}

/// RFC 3339 -> Go's RFC822 (`02 Jan 06 15:04 UTC`); empty or unparsable text is kept.
fn rfc822(text: &str) -> String {
    let Ok(time) = humantime::parse_rfc3339_weak(text) else {
        return text.to_owned();
    };
    let Ok(since) = time.duration_since(std::time::UNIX_EPOCH) else {
        return text.to_owned();
    };
    let secs = i64::try_from(since.as_secs()).unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil from days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let name = usize::try_from(month - 1)
        .ok()
        .and_then(|m| MONTHS.get(m))
        .copied()
        .unwrap_or("???");
    format!(
        "{day:02} {name} {:02} {:02}:{:02} UTC",
        year.rem_euclid(100),
        rem / 3600,
        (rem % 3600) / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            rewrite_flags(strings(&[
                "processor",
                "define",
                "a",
                "-tick",
                "f",
                "-dbrp",
                "x.y",
                "-h",
                "--url",
                "u",
                "-1",
                "-"
            ])),
            strings(&[
                "processor",
                "define",
                "a",
                "--tick",
                "f",
                "--dbrp",
                "x.y",
                "-h",
                "--url",
                "u",
                "-1",
                "-"
            ])
        );
    }

    #[test]
    fn credentials_in_the_url_become_basic_auth_and_leave_the_url() {
        let (url, auth) = split_credentials("http://admin:p%40ss:word@localhost:9092");
        assert_eq!(url, "http://localhost:9092");
        let expected = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "admin:p@ss:word",
        );
        assert_eq!(auth, Some(format!("Basic {expected}")));
        assert_eq!(
            split_credentials("http://localhost:9092/x@y"),
            ("http://localhost:9092/x@y".to_owned(), None)
        );
        assert_eq!(
            split_credentials("localhost"),
            ("localhost".to_owned(), None)
        );
        assert_eq!(percent_decode("a%zz%4"), "a%zz%4");
    }

    #[test]
    fn the_url_flag_beats_processor_url_beats_kapacitor_url() {
        let env = |name: &str| match name {
            "PROCESSOR_URL" => Some("http://p:1".to_string()),
            "KAPACITOR_URL" => Some("http://k:2".to_string()),
            _ => None,
        };
        assert_eq!(server_url(Some("http://f:3/".into()), env), "http://f:3");
        assert_eq!(server_url(None, env), "http://p:1");
        assert_eq!(
            server_url(None, |n| (n == "KAPACITOR_URL")
                .then(|| "http://k:2".into())),
            "http://k:2"
        );
        assert_eq!(server_url(None, |_| None), "http://localhost:9092");
    }

    #[test]
    fn dbrps_split_on_the_first_dot_unless_quoted() {
        assert_eq!(
            parse_dbrp("autoscale.autogen").unwrap(),
            ("autoscale".into(), "autogen".into())
        );
        assert_eq!(
            parse_dbrp("\"my.db\".\"rp\"").unwrap(),
            ("my.db".into(), "rp".into())
        );
        assert!(parse_dbrp("nodot").is_err());
        assert!(parse_dbrp(".rp").is_err());
    }

    #[test]
    fn decisions_print_as_an_aligned_table_with_rules_and_repeats() {
        use crate::decisions::{Inputs, Outcome, Record, RecordTarget};
        use crate::scaler::decision::{Rule, Step};
        let record = |outcome, rules: Vec<Step>, repeated| Record {
            time: String::new(),
            time_ns: 1_800_000_000_123_456_789,
            task: "t".into(),
            node: "k8s_autoscale2".into(),
            target: RecordTarget {
                cluster: String::new(),
                namespace: "default".into(),
                kind: "deployments".into(),
                name: "app".into(),
            },
            inputs: Inputs::default(),
            current: Some(2),
            raw: Some(20.5),
            desired: Some(4),
            rules,
            outcome,
            delay_seconds: Some(0.0125),
            error: None,
            repeated,
        };
        let step = |rule, before, after| Step {
            rule,
            before,
            after,
        };
        let mut failed = record(Outcome::Error, Vec::new(), 1);
        (
            failed.current,
            failed.raw,
            failed.desired,
            failed.delay_seconds,
        ) = (None, None, None, None);
        failed.error = Some("forbidden: no".into());
        failed.target.namespace.clear();
        failed.target.cluster = "east".into();
        let table = decisions_table(&[
            record(
                Outcome::Increased,
                vec![step(Rule::Policy, 21, 5), step(Rule::Max, 5, 4)],
                1,
            ),
            record(Outcome::Unchanged, Vec::new(), 3),
            failed,
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "TIME                      TARGET                      CURRENT  RAW   DESIRED  OUTCOME       DELAY   RULES",
                "2027-01-15T08:00:00.123Z  default/deployments/app     2        20.5  4        increased     0.013s  policy 21→5, max 5→4",
                "2027-01-15T08:00:00.123Z  default/deployments/app     2        20.5  4        unchanged ×3  0.013s  -",
                "2027-01-15T08:00:00.123Z  east:<own>/deployments/app  -        -     -        error         -       error: forbidden: no",
            ]
        );
        assert_eq!(decisions_table(&[]).lines().count(), 1, "the header alone");
    }

    #[test]
    fn times_print_as_go_rfc822() {
        assert_eq!(rfc822("2026-11-28T19:05:00Z"), "28 Nov 26 19:05 UTC");
        assert_eq!(rfc822(""), "");
    }
}
