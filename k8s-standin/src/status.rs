//! API errors and the `Status` objects the API server answers them with
//! (`k8s.io/apimachinery/pkg/api/errors`).

use serde_json::{Value, json};

/// What the group-qualified resource of an error is: group and plural (`apps`, `deployments`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupResource {
    /// API group, empty for core.
    pub group: String,
    /// Plural resource (the API server puts it in `details.kind`).
    pub resource: String,
}

impl GroupResource {
    /// Builds one.
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }

    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// A field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {name:?} is invalid: {field}: {}", qualified_kind(.kind, .group), cause_message(.value, .detail))]
pub struct FieldError {
    /// API group of the object's kind (`autoscaling` for a Scale).
    pub group: String,
    /// Kind (`Scale`, `Deployment`).
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Field path (`spec.replicas`).
    pub field: String,
    /// The invalid value as printed, `None` when the field is missing.
    pub value: Option<String>,
    /// Why.
    pub detail: String,
}

/// One failed request, carried to the one place that writes the response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 404 for a named object.
    #[error("{} {name:?} not found", .resource.qualified())]
    NotFound {
        resource: GroupResource,
        name: String,
    },
    /// 404 for a path the server does not serve.
    #[error("the server could not find the requested resource")]
    NoRoute,
    /// 409 when the object already exists.
    #[error("{} {name:?} already exists", .resource.qualified())]
    AlreadyExists {
        resource: GroupResource,
        name: String,
    },
    /// 409 when the resourceVersion precondition fails.
    #[error(
        "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
        .resource.qualified()
    )]
    Conflict {
        resource: GroupResource,
        name: String,
    },
    /// 401 without a valid bearer token.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403 from the authorizer; `message` is the authorizer's sentence.
    #[error("{}: {message}", forbidden_subject(.resource, .name))]
    Forbidden {
        resource: GroupResource,
        name: String,
        message: String,
    },
    /// 403 for non-resource paths.
    #[error("forbidden: {message}")]
    ForbiddenPath { message: String },
    /// 422 when a field value is invalid or missing.
    #[error("{0}")]
    Invalid(Box<FieldError>),
    /// 422 for a patch that cannot be applied (a JSON patch whose path is missing or whose
    /// `test` fails).
    #[error("the server rejected our request due to an error in our request: {0}")]
    Unprocessable(String),
    /// 400 for a body that cannot be used.
    #[error("{0}")]
    BadRequest(String),
    /// 405 for a verb the resource does not support.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 415 for a patch in a format the server does not accept.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
    )]
    UnsupportedMediaType,
    /// 413 for a body over the limit.
    #[error("Request entity too large: limit is {0} bytes")]
    TooLarge(usize),
    /// 415 for a create or update body that is not JSON (kubectl's typed generators, such as
    /// `kubectl create deployment`, send protobuf, which the stand-in does not decode).
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json"
    )]
    UnsupportedBody,
    /// 500 (also injected).
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// 503 (also injected).
    #[error("{0}")]
    ServiceUnavailable(String),
    /// 429 (injected).
    #[error("{0}")]
    TooManyRequests(String),
}

fn qualified_kind(kind: &str, group: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

fn cause_message(value: &Option<String>, detail: &str) -> String {
    match value {
        Some(v) => format!("Invalid value: {v}: {detail}"),
        None if detail.is_empty() => "Required value".to_string(),
        None => format!("Required value: {detail}"),
    }
}

fn forbidden_subject(resource: &GroupResource, name: &str) -> String {
    if name.is_empty() {
        format!("{} is forbidden", resource.qualified())
    } else {
        format!("{} {name:?} is forbidden", resource.qualified())
    }
}

/// The result type of this crate's request handling.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    /// A 422 for `field`.
    pub fn invalid(field: FieldError) -> ApiError {
        ApiError::Invalid(Box::new(field))
    }

    /// HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute => 404,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => 409,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden { .. } | ApiError::ForbiddenPath { .. } => 403,
            ApiError::Invalid(_) | ApiError::Unprocessable(_) => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::MethodNotAllowed => 405,
            ApiError::UnsupportedMediaType | ApiError::UnsupportedBody => 415,
            ApiError::TooLarge(_) => 413,
            ApiError::Internal(_) => 500,
            ApiError::ServiceUnavailable(_) => 503,
            ApiError::TooManyRequests(_) => 429,
        }
    }

    /// `Status.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden { .. } | ApiError::ForbiddenPath { .. } => "Forbidden",
            ApiError::Invalid(_) | ApiError::Unprocessable(_) => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::UnsupportedMediaType | ApiError::UnsupportedBody => "UnsupportedMediaType",
            ApiError::TooLarge(_) => "RequestEntityTooLarge",
            ApiError::Internal(_) => "InternalError",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailable",
            ApiError::TooManyRequests(_) => "TooManyRequests",
        }
    }

    /// The `Status` object as a JSON value.
    pub fn to_status(&self) -> Value {
        serde_json::from_slice(&self.to_status_bytes()).unwrap_or(Value::Null)
    }

    /// The `Status` object, serialized in the API server's field order.
    pub fn to_status_bytes(&self) -> Vec<u8> {
        let details = match self {
            ApiError::NotFound { resource, name }
            | ApiError::AlreadyExists { resource, name }
            | ApiError::Conflict { resource, name }
            | ApiError::Forbidden { resource, name, .. } => Some(details(resource, name)),
            ApiError::Invalid(e) => {
                let FieldError {
                    group,
                    kind,
                    name,
                    field,
                    value,
                    detail,
                } = e.as_ref();
                let mut d = details(&GroupResource::new(group, kind), name);
                let reason = if value.is_some() {
                    "FieldValueInvalid"
                } else {
                    "FieldValueRequired"
                };
                d.causes = vec![Cause {
                    reason: Some(reason),
                    message: cause_message(value, detail),
                    field: Some(field.clone()),
                }];
                Some(d)
            }
            ApiError::Internal(message) => Some(Details {
                causes: vec![Cause {
                    reason: None,
                    message: message.clone(),
                    field: None,
                }],
                ..Details::default()
            }),
            ApiError::TooManyRequests(_) => Some(Details {
                retry_after_seconds: Some(1),
                ..Details::default()
            }),
            _ => None,
        };
        let status = StatusBody {
            kind: "Status",
            api_version: "v1",
            metadata: Empty {},
            status: "Failure",
            message: self.to_string(),
            reason: self.reason(),
            details,
            code: self.code(),
        };
        serde_json::to_vec(&status).unwrap_or_default()
    }

    /// The error an injected fault of this HTTP code stands for, `None` for codes we do not
    /// model.
    pub fn injected(code: u16, group: &str, resource: &str, name: &str) -> Option<ApiError> {
        let resource = GroupResource::new(group, resource);
        let name = name.to_string();
        Some(match code {
            401 => ApiError::Unauthorized,
            403 => ApiError::Forbidden {
                resource,
                name,
                message: "injected fault".to_string(),
            },
            404 => ApiError::NotFound { resource, name },
            409 => ApiError::Conflict { resource, name },
            429 => ApiError::TooManyRequests(
                "the server has received too many requests and has asked us to try again later"
                    .to_string(),
            ),
            500 => ApiError::Internal("injected fault".to_string()),
            503 => ApiError::ServiceUnavailable(
                "the server is currently unable to handle the request".to_string(),
            ),
            _ => return None,
        })
    }
}

#[derive(serde::Serialize)]
struct Empty {}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody {
    kind: &'static str,
    api_version: &'static str,
    metadata: Empty,
    status: &'static str,
    message: String,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
    code: u16,
}

#[derive(serde::Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Details {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    causes: Vec<Cause>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<u32>,
}

#[derive(serde::Serialize)]
struct Cause {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

/// `details` with the empty fields omitted, as `omitempty` does.
fn details(resource: &GroupResource, name: &str) -> Details {
    Details {
        name: name.to_string(),
        group: resource.group.clone(),
        kind: resource.resource.clone(),
        ..Details::default()
    }
}

/// The `Status` a successful delete answers with.
pub fn success_delete(group: &str, resource: &str, name: &str, uid: &str) -> Value {
    let mut d = details(&GroupResource::new(group, resource), name);
    d.uid = uid.to_string();
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": serde_json::to_value(d).unwrap_or(Value::Null)})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_the_api_server_byte_for_byte() {
        let err = ApiError::NotFound {
            resource: GroupResource::new("apps", "deployments"),
            name: "app".into(),
        };
        assert_eq!(
            String::from_utf8(err.to_status_bytes()).ok(),
            Some(r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"app\" not found","reason":"NotFound","details":{"name":"app","group":"apps","kind":"deployments"},"code":404}"#.to_string())
        );
    }

    #[test]
    fn conflict_names_the_qualified_resource_and_asks_for_a_retry() {
        let err = ApiError::Conflict {
            resource: GroupResource::new("apps", "deployments"),
            name: "app".into(),
        };
        let status = err.to_status();
        assert_eq!(status["code"], 409);
        assert_eq!(status["reason"], "Conflict");
        assert_eq!(
            status["message"],
            "Operation cannot be fulfilled on deployments.apps \"app\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(status["details"]["kind"], "deployments");
    }

    #[test]
    fn forbidden_quotes_the_authorizer_and_omits_the_core_group() {
        let err = ApiError::Forbidden {
            resource: GroupResource::new("", "events"),
            name: String::new(),
            message: "User \"bob\" cannot create resource \"events\" in API group \"\" in the namespace \"default\"".into(),
        };
        let status = err.to_status();
        assert_eq!(
            status["message"],
            "events is forbidden: User \"bob\" cannot create resource \"events\" in API group \"\" in the namespace \"default\""
        );
        assert_eq!(status["details"], json!({"kind": "events"}));
        assert_eq!(status["code"], 403);
    }

    #[test]
    fn unauthorized_has_no_details() {
        assert_eq!(
            String::from_utf8(ApiError::Unauthorized.to_status_bytes()).ok(),
            Some(r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#.to_string())
        );
    }

    #[test]
    fn invalid_scale_carries_the_field_cause() {
        let err = ApiError::invalid(FieldError {
            group: "autoscaling".into(),
            kind: "Scale".into(),
            name: "app".into(),
            field: "spec.replicas".into(),
            value: Some("-1".into()),
            detail: "must be greater than or equal to 0".into(),
        });
        let status = err.to_status();
        assert_eq!(
            status["message"],
            "Scale.autoscaling \"app\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(status["details"]["causes"][0]["field"], "spec.replicas");
        assert_eq!(status["code"], 422);
    }

    #[test]
    fn injected_codes_map_to_their_reasons() {
        for (code, reason) in [
            (500, "InternalError"),
            (503, "ServiceUnavailable"),
            (409, "Conflict"),
            (403, "Forbidden"),
            (429, "TooManyRequests"),
        ] {
            let err = ApiError::injected(code, "apps", "deployments", "app");
            assert_eq!(err.as_ref().map(ApiError::reason), Some(reason));
            assert_eq!(err.map(|e| e.code()), Some(code));
        }
        assert_eq!(ApiError::injected(418, "", "", ""), None);
    }
}
