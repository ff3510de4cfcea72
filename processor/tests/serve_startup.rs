//! `processor serve` as a process, at start: values outside what the code can take, users
//! without a password, unknown environment variables, the Kubernetes API, the data directory,
//! listen addresses and oversized config files. Bad config exits 64 naming the key; a valid
//! config that cannot be served (unreachable API server, unusable data_dir, address that cannot
//! be bound) exits 69 with the reason.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_processor");

/// A temp dir holding `processor.conf` = `data_dir = <dir>/data` + `text`.
fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("processor.conf");
    let data = dir.path().join("data");
    std::fs::write(
        &path,
        format!("data_dir = {:?}\n{text}", data.display().to_string()),
    )
    .expect("write config");
    (dir, path)
}

/// Runs `processor serve --config path` with `args` and `vars` added, to its exit. Without a
/// `--bind` in `args` it listens on a loopback port that is taken: a config that loads and
/// passes every start check then exits 69 (cannot listen) instead of serving forever.
fn serve(path: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let taken = taken_port();
    let mut command = Command::new(BIN);
    command.args(["serve", "--config"]).arg(path).args(args);
    if !args.contains(&"--bind") {
        let address = taken.local_addr().expect("local address");
        command.arg("--bind").arg(address.to_string());
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("run processor")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A loopback port that is held open for the test's life, so binding it fails.
fn taken_port() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind a loopback port")
}

#[test]
fn a_queue_size_beyond_a_channels_capacity_exits_64_naming_the_key() {
    let (_dir, path) = config("[pipeline]\nqueue-size = 2305843009213693952\n");
    let output = serve(&path, &[], &[]);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("pipeline.queue-size"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn out_of_range_durations_exit_64_naming_the_key() {
    for (text, key) in [
        (
            "[http]\nshutdown-timeout = \"100000000000000000s\"\n",
            "http.shutdown-timeout",
        ),
        (
            "[pipeline]\nstate-expiry = \"0s\"\n",
            "pipeline.state-expiry",
        ),
        (
            "[http]\nheader-read-timeout = \"0s\"\n",
            "http.header-read-timeout",
        ),
        ("[http]\nidle-timeout = \"3d\"\n", "http.idle-timeout"),
        (
            "[http]\nbody-read-timeout = \"1ms\"\n",
            "http.body-read-timeout",
        ),
        (
            "[http]\nmax-connection-limit = 2000000\n",
            "http.max-connection-limit",
        ),
        (
            "[[influxdb]]\nurls = [\"http://127.0.0.1:1\"]\ntimeout = \"10000000000000s\"\n",
            "influxdb[0].timeout",
        ),
    ] {
        let (_dir, path) = config(text);
        let output = serve(&path, &[], &[]);
        assert_eq!(
            output.status.code(),
            Some(64),
            "{text}: {}",
            stderr(&output)
        );
        assert!(stderr(&output).contains(key), "{text}: {}", stderr(&output));
    }
}

#[test]
fn a_placeholder_password_with_auth_enabled_exits_64_naming_the_key_and_the_secret() {
    // As the manifests used to ship it: in the file, and as the pod's environment sets it.
    let (_dir, path) = config(
        "[http]\nauth-enabled = true\n[[http.users]]\nname = \"telegraf\"\n\
         password = \"change-me\"\n",
    );
    let (_env_dir, env_path) = config("[http]\nauth-enabled = true\n");
    for (path, vars) in [
        (&path, &[][..]),
        (
            &env_path,
            &[
                ("PROCESSOR_HTTP_USERS_0_NAME", "telegraf"),
                ("PROCESSOR_HTTP_USERS_0_PASSWORD", "change-me"),
            ][..],
        ),
    ] {
        let output = serve(path, &[], vars);
        assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
        let stderr = stderr(&output);
        assert!(
            stderr.contains("http.users[0].password")
                && stderr.contains("placeholder")
                && stderr.contains("Secret `processor-auth`"),
            "{stderr}"
        );
    }
    // A real password passes the config checks (and then exits 69 on the taken port).
    let output = serve(
        &env_path,
        &[],
        &[
            ("PROCESSOR_HTTP_USERS_0_NAME", "telegraf"),
            ("PROCESSOR_HTTP_USERS_0_PASSWORD", "q8R-generated-4vX"),
        ],
    );
    assert_eq!(output.status.code(), Some(69), "{}", stderr(&output));
}

#[test]
fn a_user_without_a_password_exits_64_naming_the_user() {
    let (_dir, path) = config("[http]\nauth-enabled = true\n[[http.users]]\nname = \"telegraf\"\n");
    let output = serve(&path, &[], &[]);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    let stderr = stderr(&output);
    assert!(
        stderr.contains("http.users[0].password") && stderr.contains("telegraf"),
        "{stderr}"
    );
}

#[test]
fn every_unknown_processor_and_kapacitor_variable_is_warned_about_by_name() {
    let (_dir, path) = config("");
    let unknown = [
        "PROCESSOR_HTTP_BOGUS",
        "KAPACITOR_PIPELINE_NOPE",
        "KAPACITOR_NOPE",
        "PROCESSOR_KUBERNETES_BOGUS",
        "KAPACITOR_INFLUXDB_0_BOGUS",
    ];
    let vars: Vec<(&str, &str)> = unknown.iter().map(|name| (*name, "1")).collect();
    let output = serve(&path, &[], &vars);
    assert_eq!(output.status.code(), Some(69), "{}", stderr(&output));
    let stderr = stderr(&output);
    for name in unknown {
        assert!(
            stderr.contains(&format!(
                "environment variable {name} matches no config key"
            )),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn a_kubernetes_api_server_that_is_not_http_exits_64_naming_the_key() {
    let (_dir, path) =
        config("[kubernetes]\nenabled = true\napi-servers = [\"ftp://127.0.0.1:6443\"]\n");
    let output = serve(&path, &[], &[]);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("kubernetes[0].api-servers"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unreachable_kubernetes_api_server_exits_69_before_serving() {
    let closed = {
        let listener = taken_port();
        listener.local_addr().expect("local address")
    };
    let (_dir, path) = config(&format!(
        "[kubernetes]\nenabled = true\napi-servers = [\"http://{closed}\"]\n"
    ));
    let output = serve(&path, &[], &[]);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains("cannot reach the Kubernetes API server")
            && stderr.contains(&closed.to_string()),
        "{stderr}"
    );
    assert!(
        !stderr.contains("client ready") && !stderr.contains("cannot listen"),
        "{stderr}"
    );
}

#[test]
fn a_reachable_kubernetes_api_server_passes_the_start_check() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let api = runtime
        .block_on(k8s_standin::Server::start(
            k8s_standin::Config::default().with_deployment("default", "app", 1),
        ))
        .expect("stand-in starts");
    let (_dir, path) = config(&format!(
        "[kubernetes]\nenabled = true\napi-servers = [\"{}\"]\n",
        api.url()
    ));
    // Past the check it tries to listen on the taken port: 69, "cannot listen".
    let output = serve(&path, &[], &[]);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains("kubernetes client ready") && stderr.contains("cannot listen"),
        "{stderr}"
    );
}

#[test]
fn a_data_dir_that_cannot_be_created_exits_69_with_the_os_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("file");
    std::fs::write(&file, "x").expect("write");
    let path = dir.path().join("processor.conf");
    std::fs::write(
        &path,
        format!("data_dir = {:?}\n", file.join("data").display().to_string()),
    )
    .expect("write config");
    let output = serve(&path, &[], &[]);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains("data_dir")
            && stderr.contains("os error")
            && !stderr.contains("cannot listen"),
        "{stderr}"
    );
}

#[test]
fn an_invalid_listen_address_exits_64_and_one_that_cannot_be_bound_69() {
    let (_dir, path) = config("");
    let output = serve(&path, &["--bind", "256.1.1.1:9092"], &[]);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("256.1.1.1:9092"),
        "{}",
        stderr(&output)
    );

    let (_dir, path) = config("[http]\nbind-address = \"256.1.1.1:9092\"\n");
    let output = serve(&path, &[], &[]);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("http.bind-address"),
        "{}",
        stderr(&output)
    );

    let taken = taken_port();
    let address = taken.local_addr().expect("local address").to_string();
    let (_dir, path) = config("");
    let output = serve(&path, &["--bind", &address], &[]);
    assert_eq!(output.status.code(), Some(69), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot listen"),
        "{}",
        stderr(&output)
    );
}

#[cfg(unix)]
#[test]
fn a_config_path_linked_to_dev_zero_exits_64_instead_of_filling_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("processor.conf");
    std::os::unix::fs::symlink("/dev/zero", &path).expect("symlink");
    let output = serve(&path, &[], &[]);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("larger than 16777216 bytes"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn warnings_on_a_pipe_are_plain_text_without_terminal_colours() {
    let (_dir, path) = config("[http]\nbogus = 1\n");
    let output = serve(&path, &[], &[]);
    let stderr = stderr(&output);
    assert!(stderr.contains("http.bogus"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn the_allocator_purges_in_the_background_unless_jemalloc_conf_says_otherwise() {
    let (_dir, path) = config("");
    let output = serve(&path, &[], &[]);
    assert!(
        stderr(&output).contains("allocator: jemalloc, background purging"),
        "{}",
        stderr(&output)
    );
    let output = serve(&path, &[], &[("_RJEM_MALLOC_CONF", "dirty_decay_ms:2000")]);
    let text = stderr(&output);
    assert!(
        text.contains("allocator: jemalloc as _RJEM_MALLOC_CONF sets it")
            && text.contains("dirty_decay_ms:2000")
            && !text.contains("background purging"),
        "{text}"
    );
}
