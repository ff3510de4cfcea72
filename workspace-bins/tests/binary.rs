//! `binary` builds another package's executable and hands back a path that runs.

#[test]
fn builds_and_finds_another_packages_binary() {
    let path = workspace_bins::binary("app", "app");
    assert!(path.is_file(), "{}", path.display());
    let output = std::process::Command::new(&path)
        .arg("--version")
        .output()
        .expect("run app --version");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("app "));
    // The second call is served from the cache, with the same path.
    assert_eq!(workspace_bins::binary("app", "app"), path);
}
