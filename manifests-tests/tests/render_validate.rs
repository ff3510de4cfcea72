//! Every kustomization (base and each overlay) renders with `kubectl kustomize`, and every
//! object it renders validates in strict mode against the official Kubernetes JSON schemas
//! (`kubernetes-validate`) for 1.29, the oldest release we support, and the newest it knows.

use manifests_tests::render::{self, kind_of, name_of};
use manifests_tests::{kustomizations, manifests_dir, tools, validate};

const OLDEST_SUPPORTED: &str = "1.29.0";

#[test]
fn every_kustomization_renders_and_validates_strictly_for_1_29_and_the_newest_schemas() {
    let (Some(kubectl), Some(validator)) = (tools::kubectl(), tools::kubernetes_validate()) else {
        return;
    };
    let newest = validate::newest_version(&validator).expect("newest known version");
    let dir = tempfile::tempdir().expect("temp dir");
    let names = kustomizations().expect("list overlays");
    assert!(
        names.len() >= 4,
        "base + dev, node-exporter, nodeport: {names:?}"
    );
    for name in names {
        let rendered = render::kustomize(&kubectl, &manifests_dir().join(&name))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(!rendered.objects.is_empty(), "{name} renders nothing");
        let file = dir.path().join(format!("{}.yaml", name.replace('/', "-")));
        std::fs::write(&file, &rendered.yaml).expect("write rendered YAML");
        for version in [OLDEST_SUPPORTED, newest.as_str()] {
            validate::strict(&validator, version, &file)
                .unwrap_or_else(|error| panic!("{name}: {error}"));
        }
        eprintln!(
            "{name}: {} objects valid for {OLDEST_SUPPORTED} and {newest}",
            rendered.objects.len()
        );
    }
}

#[test]
fn strict_validation_rejects_an_unknown_field() {
    // The check above must be able to fail: a misspelt field in a rendered object is caught.
    let (Some(kubectl), Some(validator)) = (tools::kubectl(), tools::kubernetes_validate()) else {
        return;
    };
    let rendered = render::kustomize(&kubectl, &manifests_dir().join("base")).expect("renders");
    let misspelt = rendered
        .yaml
        .replace("readOnlyRootFilesystem", "readOnlyRootFileSystem");
    assert_ne!(misspelt, rendered.yaml);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("misspelt.yaml");
    std::fs::write(&file, misspelt).expect("write");
    let error = validate::strict(&validator, OLDEST_SUPPORTED, &file)
        .expect_err("a misspelt field must not validate");
    assert!(
        error.to_string().contains("readOnlyRootFileSystem"),
        "{error}"
    );
}

#[test]
fn no_kustomization_uses_a_removed_api_or_a_latest_image() {
    let Some(kubectl) = tools::kubectl() else {
        return;
    };
    for name in kustomizations().expect("list overlays") {
        let rendered = render::kustomize(&kubectl, &manifests_dir().join(&name)).expect("renders");
        for object in &rendered.objects {
            let api = object
                .get("apiVersion")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            assert!(
                !api.contains("v1beta")
                    && !api.contains("v1alpha")
                    && !api.starts_with("extensions/"),
                "{name}: {} {} uses {api}",
                kind_of(object),
                name_of(object)
            );
        }
        for (owner, spec) in rendered.pod_specs() {
            for container in render::containers(spec) {
                let image = container
                    .get("image")
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                let tag = manifests_tests::dockerfile::image_tag(image);
                assert!(
                    tag.is_some_and(|tag| tag != "latest"),
                    "{name}: {owner} runs {image:?}: images are referenced by tag, never latest"
                );
            }
        }
    }
}
