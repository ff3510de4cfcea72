//! Each TOML section read into its type: `[agent]`, `[global_tags]`, `[[inputs.prometheus]]`,
//! `[[outputs.influxdb]]`, `[[outputs.file]]`, with the checks on their values (interval floor,
//! URLs without credentials, known encodings and formats); plugins and sections the agent does
//! not implement become warnings. Texts are added in order: plugins accumulate, later `[agent]`
//! and `[global_tags]` keys win.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::keys::{Section, duration_value, expect_table, invalid, string_map};
use super::{
    AgentConfig, Config, ConfigError, ContentEncoding, FileOutput, InfluxdbOutput,
    MAX_CONTENT_LENGTH_LIMIT, MIN_INTERVAL, Output, PrometheusInput, Result, TlsConfig,
    default_content_length_limit, default_interval, default_metric_batch_size,
    default_metric_buffer_limit, default_timeout, default_user_agent, parse_go_duration, urls,
};
use crate::filter::MetricFilter;

#[derive(Default)]
pub(super) struct Builder {
    agent: toml::Table,
    global_tags: BTreeMap<String, String>,
    inputs: Vec<PrometheusInput>,
    outputs: Vec<Output>,
    warnings: Vec<String>,
}

impl Builder {
    pub(super) fn add(
        &mut self,
        table: toml::Table,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<()> {
        for (section, value) in table {
            match section.as_str() {
                "agent" => {
                    let table = expect_table(&section, value)?;
                    self.agent.extend(table);
                }
                "global_tags" => {
                    let table = expect_table(&section, value)?;
                    self.global_tags.extend(string_map(&section, table)?);
                }
                "inputs" => self.add_plugins(&section, value, Kind::Input, env)?,
                "outputs" => self.add_plugins(&section, value, Kind::Output, env)?,
                "processors" | "aggregators" => {
                    for name in expect_table(&section, value)?.keys() {
                        self.warnings.push(format!(
                            "{section}.{name}: plugin not implemented; metrics pass through unchanged"
                        ));
                    }
                }
                _ => self
                    .warnings
                    .push(format!("{section}: section not implemented; ignored")),
            }
        }
        Ok(())
    }

    fn add_plugins(
        &mut self,
        section: &str,
        value: toml::Value,
        kind: Kind,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<()> {
        for (name, instances) in expect_table(section, value)? {
            let instances = match instances {
                toml::Value::Array(items) => items,
                table @ toml::Value::Table(_) => vec![table],
                other => {
                    return Err(invalid(
                        format!("{section}.{name}"),
                        format!("expected a table, found {}", other.type_str()),
                    ));
                }
            };
            for (index, instance) in instances.into_iter().enumerate() {
                let key = format!("{section}.{name}[{index}]");
                let table = expect_table(&key, instance)?;
                let mut reader = Section::new(key, table);
                match (kind, name.as_str()) {
                    (Kind::Input, "prometheus") => {
                        let input = prometheus_input(&mut reader, env, &mut self.warnings)?;
                        self.inputs.push(input);
                    }
                    (Kind::Output, "influxdb") => {
                        self.outputs
                            .push(Output::Influxdb(Box::new(influxdb_output(&mut reader)?)));
                    }
                    (Kind::Output, "file") => {
                        self.outputs
                            .push(Output::File(Box::new(file_output(&mut reader)?)));
                    }
                    (Kind::Input, _) => {
                        self.warnings.push(format!(
                            "{section}.{name}: input plugin not implemented; it collects nothing"
                        ));
                        continue;
                    }
                    (Kind::Output, _) => {
                        self.warnings.push(format!(
                            "{section}.{name}: output plugin not implemented; nothing is written to it"
                        ));
                        continue;
                    }
                }
                reader.finish(&mut self.warnings);
            }
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<Config> {
        let mut reader = Section::new("agent".to_owned(), self.agent);
        let agent = agent_config(&mut reader, &mut self.warnings)?;
        reader.finish(&mut self.warnings);
        if self.inputs.is_empty() {
            return Err(ConfigError::NoInputs);
        }
        if self.outputs.is_empty() {
            return Err(ConfigError::NoOutputs);
        }
        Ok(Config {
            agent,
            global_tags: self.global_tags,
            inputs: self.inputs,
            outputs: self.outputs,
            warnings: self.warnings,
        })
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Input,
    Output,
}

fn agent_config(s: &mut Section, warnings: &mut Vec<String>) -> Result<AgentConfig> {
    let interval = s.duration("interval")?.unwrap_or_else(default_interval);
    at_least_min_interval("agent.interval", interval)?;
    let precision = match s.take("precision") {
        None => None,
        Some(toml::Value::String(text)) => Some(precision(&text, warnings)?),
        Some(other) => Some(duration_value("agent.precision", other)?),
    }
    .filter(|p| !p.is_zero());
    let flush_interval = s
        .duration("flush_interval")?
        .unwrap_or_else(default_interval);
    at_least_min_interval("agent.flush_interval", flush_interval)?;
    let metric_batch_size = s
        .positive("metric_batch_size")?
        .unwrap_or_else(default_metric_batch_size);
    let metric_buffer_limit = s
        .positive("metric_buffer_limit")?
        .unwrap_or_else(default_metric_buffer_limit);
    Ok(AgentConfig {
        interval,
        round_interval: s.bool("round_interval")?.unwrap_or(true),
        metric_batch_size,
        // Telegraf raises a buffer smaller than a batch to the batch size.
        metric_buffer_limit: metric_buffer_limit.max(metric_batch_size),
        collection_jitter: s.duration("collection_jitter")?.unwrap_or_default(),
        flush_interval,
        flush_jitter: s.duration("flush_jitter")?.unwrap_or_default(),
        precision,
        hostname: s.string("hostname")?.unwrap_or_default(),
        omit_hostname: s.bool("omit_hostname")?.unwrap_or(false),
        debug: s.bool("debug")?.unwrap_or(false),
        quiet: s.bool("quiet")?.unwrap_or(false),
        logfile: s.string("logfile")?.unwrap_or_default(),
    })
}

/// Refuses a loop period below [`MIN_INTERVAL`] (zero included).
fn at_least_min_interval(key: &str, interval: Duration) -> Result<()> {
    if interval < MIN_INTERVAL {
        return Err(invalid(
            key,
            format!("{interval:?} is shorter than the minimum of {MIN_INTERVAL:?}"),
        ));
    }
    Ok(())
}

/// Refuses URLs with credentials inside (`http://user:password@host`): they would not be sent,
/// and would show in tags and logs. The error shows the URL with them hidden.
fn without_credentials(key: String, urls: &[String]) -> Result<()> {
    match urls.iter().find(|url| urls::has_userinfo(url)) {
        None => Ok(()),
        Some(url) => Err(invalid(
            key,
            format!(
                "{} has credentials in the URL, which are not supported; use username and password",
                urls::redact(url)
            ),
        )),
    }
}

/// `[agent] precision`: a Go duration, or (old Telegraf configs such as the tutorial's) a bare
/// unit like `"s"`, accepted with a warning since modern Telegraf refuses it.
fn precision(text: &str, warnings: &mut Vec<String>) -> Result<Duration> {
    let bare_unit = match text {
        "ns" => Some(Duration::from_nanos(1)),
        "us" | "µs" | "u" => Some(Duration::from_micros(1)),
        "ms" => Some(Duration::from_millis(1)),
        "s" => Some(Duration::from_secs(1)),
        "m" => Some(Duration::from_secs(60)),
        "h" => Some(Duration::from_secs(3600)),
        _ => None,
    };
    if let Some(duration) = bare_unit {
        warnings.push(format!(
            "agent.precision: {text:?} is the old unit-only form (modern Telegraf refuses it); read as \"1{}\"",
            if text == "u" { "us" } else { text }
        ));
        return Ok(duration);
    }
    parse_go_duration(text).map_err(|e| invalid("agent.precision", e.to_string()))
}

fn prometheus_input(
    s: &mut Section,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<PrometheusInput> {
    let urls = s.strings("urls")?.unwrap_or_default();
    let pod_discovery = super::pod_discovery::read(s, env, warnings)?;
    if urls.is_empty() && pod_discovery.is_none() {
        return Err(invalid(
            s.key("urls"),
            "at least one URL is required (or monitor_kubernetes_pods = true)",
        ));
    }
    without_credentials(s.key("urls"), &urls)?;
    let metric_version = match s.integer("metric_version")?.unwrap_or(1) {
        0 | 1 => 1,
        2 => 2,
        other => {
            return Err(invalid(
                s.key("metric_version"),
                format!("must be 1 or 2, not {other}"),
            ));
        }
    };
    Ok(PrometheusInput {
        urls,
        metric_version,
        url_tag: s.string("url_tag")?.unwrap_or_else(|| "url".to_owned()),
        ignore_timestamp: s.bool("ignore_timestamp")?.unwrap_or(false),
        timeout: s.duration("timeout")?.unwrap_or_else(default_timeout),
        response_timeout: s.duration("response_timeout")?.filter(|d| !d.is_zero()),
        content_length_limit: content_length_limit(s)?,
        bearer_token: s.string("bearer_token")?.map(PathBuf::from),
        bearer_token_string: s.string("bearer_token_string")?,
        username: s.string("username")?,
        password: s.string("password")?,
        http_headers: s.string_map("http_headers")?,
        tls: tls_config(s)?,
        interval: match s.duration("interval")?.filter(|d| !d.is_zero()) {
            Some(interval) => {
                at_least_min_interval(&s.key("interval"), interval)?;
                Some(interval)
            }
            None => None,
        },
        name_prefix: s.string("name_prefix")?.unwrap_or_default(),
        name_suffix: s.string("name_suffix")?.unwrap_or_default(),
        name_override: s.string("name_override")?.unwrap_or_default(),
        tags: s.string_map("tags")?,
        filter: metric_filter(s)?,
        pod_discovery,
    })
}

fn content_length_limit(s: &mut Section) -> Result<u64> {
    match s.size("content_length_limit")? {
        None => Ok(default_content_length_limit()),
        Some(0) => Ok(MAX_CONTENT_LENGTH_LIMIT),
        Some(bytes) if bytes <= MAX_CONTENT_LENGTH_LIMIT => Ok(bytes),
        Some(bytes) => Err(invalid(
            s.key("content_length_limit"),
            format!("must be at most {MAX_CONTENT_LENGTH_LIMIT} bytes (1 GiB), not {bytes}"),
        )),
    }
}

fn influxdb_output(s: &mut Section) -> Result<InfluxdbOutput> {
    let mut urls = s.strings("urls")?.unwrap_or_default();
    without_credentials(s.key("urls"), &urls)?;
    if let Some(url) = s.string("url")? {
        without_credentials(s.key("url"), std::slice::from_ref(&url))?;
        urls.push(url);
    }
    if urls.is_empty() {
        urls.push("http://localhost:8086".to_owned());
    }
    let content_encoding = match s.string("content_encoding")?.as_deref() {
        None | Some("gzip") => ContentEncoding::Gzip,
        Some("identity" | "") => ContentEncoding::Identity,
        Some(other) => {
            return Err(invalid(
                s.key("content_encoding"),
                format!("must be \"gzip\" or \"identity\", not {other:?}"),
            ));
        }
    };
    let write_consistency = s.string("write_consistency")?.unwrap_or_default();
    if !matches!(
        write_consistency.as_str(),
        "" | "any" | "one" | "quorum" | "all"
    ) {
        return Err(invalid(
            s.key("write_consistency"),
            format!("must be any, one, quorum or all, not {write_consistency:?}"),
        ));
    }
    Ok(InfluxdbOutput {
        urls,
        database: s
            .string("database")?
            .unwrap_or_else(|| "telegraf".to_owned()),
        retention_policy: s.string("retention_policy")?.unwrap_or_default(),
        write_consistency,
        timeout: s.duration("timeout")?.unwrap_or_else(default_timeout),
        username: s.string("username")?,
        password: s.string("password")?,
        user_agent: s.string("user_agent")?.unwrap_or_else(default_user_agent),
        http_headers: s.string_map("http_headers")?,
        content_encoding,
        skip_database_creation: s.bool("skip_database_creation")?.unwrap_or(false),
        influx_uint_support: s.bool("influx_uint_support")?.unwrap_or(false),
        tls: tls_config(s)?,
        filter: metric_filter(s)?,
    })
}

fn file_output(s: &mut Section) -> Result<FileOutput> {
    let data_format = s
        .string("data_format")?
        .unwrap_or_else(|| "influx".to_owned());
    if data_format != "influx" {
        return Err(invalid(
            s.key("data_format"),
            format!("only \"influx\" is implemented, not {data_format:?}"),
        ));
    }
    Ok(FileOutput {
        files: s
            .strings("files")?
            .unwrap_or_else(|| vec!["stdout".to_owned()]),
        influx_uint_support: s.bool("influx_uint_support")?.unwrap_or(false),
        filter: metric_filter(s)?,
    })
}

fn tls_config(s: &mut Section) -> Result<TlsConfig> {
    // Telegraf's 2017 names (ssl_*) are still accepted by it as aliases.
    let mut path = |new: &str, old: &str| -> Result<Option<PathBuf>> {
        Ok(s.string(new)?.or(s.string(old)?).map(PathBuf::from))
    };
    let ca = path("tls_ca", "ssl_ca")?;
    let cert = path("tls_cert", "ssl_cert")?;
    let key = path("tls_key", "ssl_key")?;
    Ok(TlsConfig {
        ca,
        cert,
        key,
        insecure_skip_verify: s.bool("insecure_skip_verify")?.unwrap_or(false),
    })
}

fn metric_filter(s: &mut Section) -> Result<MetricFilter> {
    Ok(MetricFilter {
        namepass: s.globs("namepass")?,
        namedrop: s.globs("namedrop")?,
        tagpass: s.tag_globs("tagpass")?,
        tagdrop: s.tag_globs("tagdrop")?,
        fieldpass: s.globs("fieldpass")?.or(s.globs("pass")?),
        fielddrop: s.globs("fielddrop")?.or(s.globs("drop")?),
        taginclude: s.globs("taginclude")?,
        tagexclude: s.globs("tagexclude")?,
    })
}
