//! Static acceptance of the Dockerfiles (no Docker engine runs here): for every container of
//! every kustomization that runs one of our images, `<package>/Dockerfile` builds that package's
//! binary in a pinned builder, copies it into a distroless non-root image whose ENTRYPOINT runs
//! it, the image tag is the package version, and the binary accepts the flags the manifest
//! passes (checked by running the real binary with them and `--help`).

use std::collections::BTreeMap;
use std::process::Command;

use manifests_tests::dockerfile::{self, Stage, exec_form, image_tag};
use manifests_tests::render::{self, containers, strings};
use manifests_tests::{kustomizations, manifests_dir, tools};
use serde_json::Value;

const OUR_REGISTRY: &str = "autoscale/";

fn workspace_version() -> String {
    let text = std::fs::read_to_string(workspace_bins::workspace_root().join("Cargo.toml"))
        .expect("root Cargo.toml");
    let table: toml::Table = text.parse().expect("TOML");
    table
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(toml::Value::as_str)
        .expect("workspace.package.version")
        .to_owned()
}

struct Image {
    package: String,
    bin: String,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    user: String,
}

/// Reads and checks `<package>/Dockerfile`; returns what the image runs.
fn read_image(package: &str) -> Image {
    let path = workspace_bins::workspace_root()
        .join(package)
        .join("Dockerfile");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let stages = dockerfile::parse(&text).unwrap_or_else(|error| panic!("{package}: {error}"));
    assert!(stages.len() >= 2, "{package}: multi-stage");
    for stage in &stages {
        let tag = image_tag(&stage.image);
        assert!(
            tag.is_some_and(|tag| tag != "latest"),
            "{package}: base image {} is not pinned by tag",
            stage.image
        );
    }
    let (last, builders) = stages.split_last().expect("stages");
    assert!(
        last.image.contains("distroless") || last.image == "scratch",
        "{package}: final image {} is not distroless or scratch",
        last.image
    );
    let builds: Vec<(&Stage, dockerfile::CargoBuild)> = builders
        .iter()
        .flat_map(|stage| {
            stage
                .cargo_builds()
                .into_iter()
                .map(move |build| (stage, build))
        })
        .collect();
    assert_eq!(builds.len(), 1, "{package}: one cargo build");
    let (builder, build) = &builds[0];
    assert_eq!(
        build.package.as_deref(),
        Some(package),
        "{package}: cargo build -p"
    );
    assert!(
        build.release && build.locked,
        "{package}: cargo build --release --locked"
    );
    let bin = build.bin.clone().expect("cargo build --bin");
    let installed = format!("/usr/local/bin/{bin}");
    let alias = builder.alias.clone().expect("the builder stage is named");
    let copied = last.all("COPY").any(|copy| {
        copy.args.starts_with(&format!("--from={alias} "))
            && copy.args.split_whitespace().last() == Some(installed.as_str())
    });
    assert!(
        copied,
        "{package}: the final stage copies {bin} from {alias} to {installed}"
    );
    let user = last
        .last("USER")
        .map(|user| user.args.clone())
        .unwrap_or_default();
    let uid = user.split(':').next().unwrap_or("");
    assert!(
        !uid.is_empty() && uid != "0" && uid != "root",
        "{package}: USER {user:?} is not an unprivileged user"
    );
    let entrypoint = last
        .last("ENTRYPOINT")
        .and_then(|entry| exec_form(&entry.args))
        .expect("ENTRYPOINT in exec form");
    assert_eq!(
        entrypoint,
        vec![installed],
        "{package}: ENTRYPOINT runs the binary"
    );
    let cmd = last
        .last("CMD")
        .and_then(|cmd| exec_form(&cmd.args))
        .unwrap_or_default();
    Image {
        package: package.to_owned(),
        bin,
        entrypoint,
        cmd,
        user: uid.to_owned(),
    }
}

/// Runs the real binary with `args` followed by `extra`; true when it exits 0.
fn accepts(image: &Image, args: &[String], extra: &[&str]) -> bool {
    let binary = workspace_bins::binary(&image.package, &image.bin);
    let output = Command::new(&binary)
        .args(args)
        .args(extra)
        .env_remove("APP_CAPACITY")
        .output()
        .unwrap_or_else(|error| panic!("run {}: {error}", binary.display()));
    output.status.success()
}

#[test]
fn every_image_a_manifest_runs_builds_that_binary_and_accepts_the_manifests_flags() {
    let Some(kubectl) = tools::kubectl() else {
        return;
    };
    let version = workspace_version();
    let mut images: BTreeMap<String, Image> = BTreeMap::new();
    for name in kustomizations().expect("list overlays") {
        let rendered = render::kustomize(&kubectl, &manifests_dir().join(&name))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        for (owner, spec) in rendered.pod_specs() {
            let pod_user = spec
                .pointer("/securityContext/runAsUser")
                .and_then(Value::as_u64);
            for container in containers(spec) {
                let reference = container.get("image").and_then(Value::as_str).unwrap_or("");
                let Some(ours) = reference.strip_prefix(OUR_REGISTRY) else {
                    continue;
                };
                let what = format!("{name}: {owner} runs {reference}");
                let (package, tag) = ours.split_once(':').expect("a tagged image");
                assert_eq!(tag, version, "{what}: the tag is the package version");
                let image = images
                    .entry(package.to_owned())
                    .or_insert_with(|| read_image(package));
                let command = strings(container, "command");
                assert!(
                    command.is_empty() || command == image.entrypoint,
                    "{what}: command {command:?} bypasses the ENTRYPOINT"
                );
                let container_user = container
                    .pointer("/securityContext/runAsUser")
                    .and_then(Value::as_u64)
                    .or(pod_user);
                if let Some(uid) = container_user {
                    assert_eq!(uid.to_string(), image.user, "{what}: runAsUser vs USER");
                }
                let args = if container.get("args").is_some() {
                    strings(container, "args")
                } else {
                    image.cmd.clone()
                };
                assert!(
                    accepts(image, &args, &["--help"]),
                    "{what}: {} rejects the manifest's flags {args:?}",
                    image.bin
                );
                // The check can fail: the same flags plus one that does not exist are refused.
                assert!(
                    !accepts(image, &args, &["--no-such-flag", "--help"]),
                    "{what}: {} accepts anything",
                    image.bin
                );
            }
        }
    }
    let packages: Vec<&String> = images.keys().collect();
    assert_eq!(packages, ["agent", "app", "processor"]);
}

#[test]
fn every_dockerfiles_default_command_is_accepted_by_its_binary() {
    for package in ["agent", "app", "processor"] {
        let image = read_image(package);
        assert!(
            accepts(&image, &image.cmd, &["--help"]),
            "{package}: CMD {:?} is rejected",
            image.cmd
        );
    }
}
