//! The lab's command line as a process: a `--var` (or `--tick`) the task cannot take ends the
//! lab with exit 64 and a message naming the var, before anything starts (no live view).

use std::process::{Command, Output};

fn lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_autoscaler-lab"))
        .args(args)
        .args([
            "--out",
            &std::env::temp_dir()
                .join("lab-flags-test")
                .display()
                .to_string(),
        ])
        .output()
        .unwrap()
}

fn assert_usage_error(args: &[&str], message: &str) {
    let output = lab(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
    assert!(stderr.contains(message), "{args:?}: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "{args:?}: nothing ran: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn an_unknown_var_exits_64_naming_it() {
    assert_usage_error(
        &["--var", "increase_cooldown=1m", "--var", "cooldown=1m"],
        "--var cooldown: the script declares no such var (it declares: decrease_cooldown, \
         increase_cooldown, moving_avg_count, target)",
    );
}

#[test]
fn a_value_of_the_wrong_type_exits_64() {
    assert_usage_error(
        &["--var", "increase_cooldown=60"],
        "--var increase_cooldown=60: the script declares increase_cooldown as duration",
    );
    assert_usage_error(
        &["--var", "moving_avg_count=ten"],
        "the script declares moving_avg_count as int: expected a whole number",
    );
}

#[test]
fn a_var_without_a_value_or_set_twice_exits_64() {
    assert_usage_error(&["--var", "increase_cooldown"], "expected name=value");
    assert_usage_error(
        &["--target", "200", "--var", "target=150"],
        "--target and --var target=... both set the target",
    );
    assert_usage_error(
        &["--var", "target=150", "--var", "target=200"],
        "--var target is given twice",
    );
}

#[test]
fn a_tick_file_that_cannot_be_read_exits_64() {
    assert_usage_error(&["--tick", "/nonexistent/autoscale.tick"], "cannot read");
}
