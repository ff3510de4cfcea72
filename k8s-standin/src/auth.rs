//! Bearer-token authentication (401) and RBAC-like authorization (403), with the API server's
//! messages (`k8s.io/apiserver/pkg/endpoints/handlers/responsewriters.forbiddenMessage`).

use crate::request::RequestInfo;
use crate::status::{ApiError, GroupResource};

/// A bearer token and the user it authenticates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenUser {
    /// The token as sent in `Authorization: Bearer <token>`.
    pub token: String,
    /// The user name (e.g. `system:serviceaccount:default:processor`).
    pub user: String,
}

/// One allow rule, like a PolicyRule of a Role bound to `users`; `*` matches anything.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    /// Users the rule applies to (`*` for every authenticated user).
    pub users: Vec<String>,
    /// Verbs: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, …
    pub verbs: Vec<String>,
    /// API groups (`""` for core, `apps`, …).
    pub api_groups: Vec<String>,
    /// Resources, with subresources as `deployments/scale`.
    pub resources: Vec<String>,
    /// Namespaces the rule applies in (a RoleBinding's namespace); empty for all (ClusterRole).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Object names; empty for all. Requests without a name (list, create) never match a rule
    /// that names objects, as in RBAC.
    #[serde(default)]
    pub resource_names: Vec<String>,
}

impl Rule {
    /// A rule for every user allowing `verbs` on `resources` of `group` in every namespace.
    pub fn allow(verbs: &[&str], group: &str, resources: &[&str]) -> Rule {
        Rule {
            users: vec!["*".into()],
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            api_groups: vec![group.to_string()],
            resources: resources.iter().map(|r| r.to_string()).collect(),
            namespaces: Vec::new(),
            resource_names: Vec::new(),
        }
    }

    /// The rules of an RBAC `Role` or `ClusterRole` object (JSON, e.g. from
    /// `kubectl create --dry-run=client -o json -f role.yaml`), bound to `users`, and for a Role
    /// to its namespace; so a test can check that a manifest's Role grants what a client calls.
    pub fn from_role(role: &serde_json::Value, users: &[&str]) -> Result<Vec<Rule>, RoleError> {
        let kind = role
            .get("kind")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        if kind != "Role" && kind != "ClusterRole" {
            return Err(RoleError::NotARole(kind.to_string()));
        }
        let namespaces: Vec<String> = match role.pointer("/metadata/namespace") {
            Some(serde_json::Value::String(ns)) if kind == "Role" => vec![ns.clone()],
            _ => Vec::new(),
        };
        let strings = |rule: &serde_json::Value, field: &str| -> Vec<String> {
            rule.get(field)
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        let rules = role
            .get("rules")
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default();
        rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                if rule.get("nonResourceURLs").is_some() && rule.get("resources").is_none() {
                    return Err(RoleError::NonResourceRule(index));
                }
                Ok(Rule {
                    users: users.iter().map(|u| u.to_string()).collect(),
                    verbs: strings(rule, "verbs"),
                    api_groups: strings(rule, "apiGroups"),
                    resources: strings(rule, "resources"),
                    namespaces: namespaces.clone(),
                    resource_names: strings(rule, "resourceNames"),
                })
            })
            .collect()
    }

    /// Restricts the rule to one user.
    pub fn for_user(mut self, user: &str) -> Rule {
        self.users = vec![user.to_string()];
        self
    }

    fn matches(&self, user: &str, info: &RequestInfo) -> bool {
        let any = |list: &[String], value: &str| list.iter().any(|x| x == "*" || x == value);
        let resource = info.rbac_resource();
        let resource_ok = self.resources.iter().any(|r| {
            r == "*"
                || *r == resource
                || (!info.subresource.is_empty() && *r == format!("*/{}", info.subresource))
        });
        any(&self.users, user)
            && any(&self.verbs, &info.verb)
            && any(&self.api_groups, &info.api_group)
            && resource_ok
            && (self.namespaces.is_empty() || any(&self.namespaces, &info.namespace))
            && (self.resource_names.is_empty()
                || (!info.name.is_empty() && any(&self.resource_names, &info.name)))
    }
}

/// A Role object that cannot be turned into rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    /// The object is not a Role or ClusterRole.
    #[error("expected kind Role or ClusterRole, got {0:?}")]
    NotARole(String),
    /// A rule grants only non-resource URLs, which the stand-in always allows.
    #[error("rule {0} grants only nonResourceURLs, which the stand-in does not model")]
    NonResourceRule(usize),
}

/// Who may call, and what they may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Auth {
    /// Accepted tokens; when empty, authentication is off and every caller is `admin`.
    #[serde(default)]
    pub tokens: Vec<TokenUser>,
    /// Allow rules; `None` allows everything (no authorizer), `Some(rules)` denies whatever no
    /// rule allows, as RBAC does.
    #[serde(default)]
    pub rules: Option<Vec<Rule>>,
}

/// The user name when authentication is off.
pub const ADMIN: &str = "admin";

impl Auth {
    /// The user a request authenticates as, or 401.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<String, ApiError> {
        if self.tokens.is_empty() {
            return Ok(ADMIN.to_string());
        }
        let token = authorization
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or(ApiError::Unauthorized)?;
        self.tokens
            .iter()
            .find(|t| t.token == token)
            .map(|t| t.user.clone())
            .ok_or(ApiError::Unauthorized)
    }

    /// Allows or denies with the API server's 403. Discovery and `/version` are open to every
    /// authenticated user (the `system:discovery` role).
    pub fn authorize(&self, user: &str, info: &RequestInfo) -> Result<(), ApiError> {
        let Some(rules) = &self.rules else {
            return Ok(());
        };
        if !info.is_resource_request {
            return Ok(());
        }
        if rules.iter().any(|r| r.matches(user, info)) {
            return Ok(());
        }
        Err(forbidden(user, info, ""))
    }
}

/// The 403 for `user` doing `info`, with an optional authorizer reason appended.
pub fn forbidden(user: &str, info: &RequestInfo, reason: &str) -> ApiError {
    let scope = if info.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", info.namespace)
    };
    let mut message = format!(
        "User {user:?} cannot {} resource {:?} in API group {:?} {scope}",
        info.verb,
        info.rbac_resource(),
        info.api_group
    );
    if !reason.is_empty() {
        message = format!("{message}: {reason}");
    }
    ApiError::Forbidden {
        resource: GroupResource::new(&info.api_group, &info.resource),
        name: info.name.clone(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::parse;

    fn auth() -> Auth {
        Auth {
            tokens: vec![TokenUser {
                token: "t0k".into(),
                user: "system:serviceaccount:default:processor".into(),
            }],
            rules: Some(vec![
                Rule::allow(&["get", "list"], "apps", &["deployments"]),
                Rule::allow(&["get", "patch"], "apps", &["deployments/scale"])
                    .for_user("system:serviceaccount:default:processor"),
            ]),
        }
    }

    #[test]
    fn a_missing_or_wrong_token_is_unauthorized() {
        assert_eq!(auth().authenticate(None), Err(ApiError::Unauthorized));
        assert_eq!(
            auth().authenticate(Some("Bearer nope")),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(
            auth().authenticate(Some("Basic dDA=")),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(
            auth().authenticate(Some("Bearer t0k")),
            Ok("system:serviceaccount:default:processor".to_string())
        );
    }

    #[test]
    fn without_tokens_everyone_is_admin() {
        assert_eq!(Auth::default().authenticate(None), Ok(ADMIN.to_string()));
    }

    #[test]
    fn rules_allow_subresources_only_when_named() {
        let a = auth();
        let user = "system:serviceaccount:default:processor";
        let patch = parse(
            "PATCH",
            "/apis/apps/v1/namespaces/default/deployments/app/scale",
            false,
        );
        assert_eq!(a.authorize(user, &patch), Ok(()));
        let put = parse(
            "PUT",
            "/apis/apps/v1/namespaces/default/deployments/app/scale",
            false,
        );
        let err = a.authorize(user, &put).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("deployments.apps \"app\" is forbidden: User \"system:serviceaccount:default:processor\" cannot update resource \"deployments/scale\" in API group \"apps\" in the namespace \"default\"".to_string())
        );
        let patch_main = parse(
            "PATCH",
            "/apis/apps/v1/namespaces/default/deployments/app",
            false,
        );
        assert!(a.authorize(user, &patch_main).is_err());
        assert!(a.authorize("someone-else", &patch).is_err());
    }

    #[test]
    fn cluster_scope_lists_say_so() {
        let info = parse("GET", "/apis/coordination.k8s.io/v1/leases", false);
        let err = auth().authorize("u", &info).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("leases.coordination.k8s.io is forbidden: User \"u\" cannot list resource \"leases\" in API group \"coordination.k8s.io\" at the cluster scope".to_string())
        );
    }

    #[test]
    fn discovery_is_open_to_authenticated_users() {
        let info = parse("GET", "/apis/apps/v1", false);
        assert_eq!(auth().authorize("u", &info), Ok(()));
    }

    #[test]
    fn a_role_object_becomes_namespaced_rules_for_its_users() {
        let role = serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "processor", "namespace": "default"},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
                {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch", "update"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}
            ]
        });
        let user = "system:serviceaccount:default:processor";
        let rules = Rule::from_role(&role, &[user]);
        let Ok(rules) = rules else {
            panic!("{rules:?}")
        };
        assert_eq!(rules.len(), 3);
        let a = Auth {
            tokens: vec![],
            rules: Some(rules),
        };
        let patch = parse(
            "PATCH",
            "/apis/apps/v1/namespaces/default/deployments/app/scale",
            false,
        );
        assert!(a.authorize(user, &patch).is_ok());
        let other_ns = parse(
            "PATCH",
            "/apis/apps/v1/namespaces/prod/deployments/app/scale",
            false,
        );
        assert!(a.authorize(user, &other_ns).is_err());
        let event = parse("POST", "/api/v1/namespaces/default/events", false);
        assert!(a.authorize(user, &event).is_ok());
        let list = parse("GET", "/apis/apps/v1/namespaces/default/deployments", false);
        assert!(a.authorize(user, &list).is_err());
        let not_role = Rule::from_role(&serde_json::json!({"kind": "Deployment"}), &[user]);
        assert_eq!(not_role, Err(RoleError::NotARole("Deployment".into())));
    }

    #[test]
    fn resource_names_and_namespaces_narrow_a_rule() {
        let mut rule = Rule::allow(&["get"], "apps", &["deployments"]);
        rule.resource_names = vec!["app".into()];
        rule.namespaces = vec!["default".into()];
        let a = Auth {
            tokens: vec![],
            rules: Some(vec![rule]),
        };
        let ok = parse(
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/app",
            false,
        );
        let other_name = parse(
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/web",
            false,
        );
        let other_ns = parse(
            "GET",
            "/apis/apps/v1/namespaces/prod/deployments/app",
            false,
        );
        let list = parse("GET", "/apis/apps/v1/namespaces/default/deployments", false);
        assert!(a.authorize("x", &ok).is_ok());
        assert!(a.authorize("x", &other_name).is_err());
        assert!(a.authorize("x", &other_ns).is_err());
        assert!(a.authorize("x", &list).is_err());
    }
}
