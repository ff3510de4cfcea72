//! Turning an HTTP method and path into the API server's request attributes (what RBAC and the
//! request log see), as `k8s.io/apiserver/pkg/endpoints/request.RequestInfoFactory` does.

/// The attributes of one request, as the API server's authorizer sees them.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct RequestInfo {
    /// Whether this is a request for a resource (under `/api/v1` or `/apis/{group}/{version}`
    /// with at least a resource name); discovery and `/version` are not.
    pub is_resource_request: bool,
    /// Lower-case verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`; for non-resource requests the lower-case HTTP method.
    pub verb: String,
    /// API group, empty for core.
    pub api_group: String,
    /// API version (`v1`).
    pub api_version: String,
    /// Namespace from the path, empty when none.
    pub namespace: String,
    /// Plural resource name (`deployments`).
    pub resource: String,
    /// Subresource (`scale`, `status`), empty when none.
    pub subresource: String,
    /// Object name, empty for collections.
    pub name: String,
}

impl RequestInfo {
    /// `deployments/scale`, the form Role rules use.
    pub fn rbac_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// Parses a request. `query_watch` is whether the query string has `watch=true` (or `1`).
pub fn parse(method: &str, path: &str, query_watch: bool) -> RequestInfo {
    let non_resource = || RequestInfo {
        verb: method.to_ascii_lowercase(),
        ..RequestInfo::default()
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest): (&str, &str, &[&str]) = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (group, version, rest),
        _ => return non_resource(),
    };
    let mut namespace = "";
    let rest = match rest {
        // `/api/v1/namespaces/{ns}` names the namespace object itself.
        ["namespaces", _] => rest,
        ["namespaces", ns, tail @ ..] => {
            namespace = ns;
            tail
        }
        _ => rest,
    };
    let (resource, name, subresource) = match rest {
        [resource] => (*resource, "", ""),
        [resource, name] => (*resource, *name, ""),
        [resource, name, sub, ..] => (*resource, *name, *sub),
        [] => return non_resource(),
    };
    if resource.is_empty() {
        return non_resource();
    }
    let verb = match (method, name.is_empty()) {
        ("GET" | "HEAD", _) if query_watch => "watch",
        ("GET" | "HEAD", true) => "list",
        ("GET" | "HEAD", false) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "deletecollection",
        ("DELETE", false) => "delete",
        (other, _) => {
            return RequestInfo {
                verb: other.to_ascii_lowercase(),
                ..RequestInfo::default()
            };
        }
    };
    RequestInfo {
        is_resource_request: true,
        verb: verb.to_string(),
        api_group: group.to_string(),
        api_version: version.to_string(),
        namespace: namespace.to_string(),
        resource: resource.to_string(),
        subresource: subresource.to_string(),
        name: name.to_string(),
    }
}

/// A list or watch whose `fieldSelector` is exactly `metadata.name=X` (or `==`), as the API
/// server's RequestInfo resolver reads it for authorization: the same request naming X.
/// `None` for anything else.
pub(crate) fn named_by_field_selector(
    info: &RequestInfo,
    params: &[(String, String)],
) -> Option<RequestInfo> {
    if !(info.verb == "list" || info.verb == "watch") || !info.name.is_empty() {
        return None;
    }
    let selector = params
        .iter()
        .find(|(key, _)| key == "fieldSelector")
        .map(|(_, value)| value.as_str())?;
    let name = selector
        .strip_prefix("metadata.name==")
        .or_else(|| selector.strip_prefix("metadata.name="))?;
    (!name.is_empty() && !name.contains(',')).then(|| RequestInfo {
        name: name.to_owned(),
        ..info.clone()
    })
}

/// Query parameters, percent-decoded (`+` is a space), as `application/x-www-form-urlencoded`.
pub(crate) fn query_params(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_patch_names_group_resource_subresource_namespace_and_name() {
        let info = parse(
            "PATCH",
            "/apis/apps/v1/namespaces/default/deployments/app/scale",
            false,
        );
        assert!(info.is_resource_request);
        assert_eq!(info.verb, "patch");
        assert_eq!(info.api_group, "apps");
        assert_eq!(info.api_version, "v1");
        assert_eq!(info.namespace, "default");
        assert_eq!(info.resource, "deployments");
        assert_eq!(info.name, "app");
        assert_eq!(info.subresource, "scale");
        assert_eq!(info.rbac_resource(), "deployments/scale");
    }

    #[test]
    fn a_watch_narrowed_to_one_name_is_authorized_as_that_name() {
        let watch = parse(
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
            true,
        );
        let params = |selector: &str| vec![("fieldSelector".to_owned(), selector.to_owned())];
        let named =
            named_by_field_selector(&watch, &params("metadata.name=processor")).expect("named");
        assert_eq!(
            (named.verb.as_str(), named.name.as_str()),
            ("watch", "processor")
        );
        assert!(named_by_field_selector(&watch, &params("metadata.name==processor")).is_some());
        // Anything wider stays a collection request.
        assert!(named_by_field_selector(&watch, &params("metadata.name=a,spec.x=b")).is_none());
        assert!(named_by_field_selector(&watch, &params("spec.holder=a")).is_none());
        assert!(named_by_field_selector(&watch, &[]).is_none());
        let get = parse(
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases/x",
            false,
        );
        assert!(named_by_field_selector(&get, &params("metadata.name=y")).is_none());
    }

    #[test]
    fn collections_are_lists_and_watches() {
        let list = parse("GET", "/api/v1/namespaces/ns/events", false);
        assert_eq!(list.verb, "list");
        assert_eq!(list.api_group, "");
        assert_eq!(list.resource, "events");
        let all = parse("GET", "/apis/apps/v1/deployments", false);
        assert_eq!((all.verb.as_str(), all.namespace.as_str()), ("list", ""));
        let watch = parse("GET", "/apis/apps/v1/deployments", true);
        assert_eq!(watch.verb, "watch");
    }

    #[test]
    fn writes_map_to_create_update_delete() {
        assert_eq!(
            parse(
                "POST",
                "/apis/coordination.k8s.io/v1/namespaces/a/leases",
                false
            )
            .verb,
            "create"
        );
        assert_eq!(
            parse(
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/a/leases/l",
                false
            )
            .verb,
            "update"
        );
        assert_eq!(
            parse("DELETE", "/api/v1/namespaces/a/events/e", false).verb,
            "delete"
        );
        assert_eq!(
            parse("DELETE", "/api/v1/namespaces/a/events", false).verb,
            "deletecollection"
        );
    }

    #[test]
    fn discovery_and_version_are_not_resource_requests() {
        for path in [
            "/api",
            "/apis",
            "/api/v1",
            "/apis/apps",
            "/apis/apps/v1",
            "/version",
            "/",
        ] {
            let info = parse("GET", path, false);
            assert!(!info.is_resource_request, "{path}");
            assert_eq!(info.verb, "get");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_method_or_path_panics_and_resource_requests_name_a_resource(
            method in "(GET|PUT|POST|PATCH|DELETE|OPTIONS|[A-Z]{0,8})",
            path in "(/(api|apis|namespaces|v1|apps|scale|[a-z.]{0,6}|)){0,8}",
            watch in proptest::bool::ANY,
        ) {
            let info = parse(&method, &path, watch);
            if info.is_resource_request {
                proptest::prop_assert!(!info.resource.is_empty());
            }
        }
    }

    #[test]
    fn a_namespace_path_names_the_namespace_object() {
        let info = parse("GET", "/api/v1/namespaces/default", false);
        assert_eq!(info.resource, "namespaces");
        assert_eq!(info.name, "default");
        assert_eq!(info.namespace, "");
    }

    #[test]
    fn percent_decoding_handles_selectors_and_bad_escapes() {
        let decoded = |value: &str| query_params(&format!("k={value}"))[0].1.clone();
        assert_eq!(decoded("app%3Dapp%2Cenv%21%3Dx"), "app=app,env!=x");
        assert_eq!(decoded("a+b"), "a b");
        assert_eq!(decoded("100%"), "100%");
        assert_eq!(decoded("%zz"), "%zz");
        assert_eq!(
            query_params("a=1&&b"),
            vec![("a".into(), "1".into()), ("b".into(), String::new())]
        );
    }
}
