//! API errors as the real API server reports them: a `meta.k8s.io/v1` Status with the HTTP code,
//! reason, message and details. Every handler returns `Result<_, ApiError>`; the router turns an
//! `ApiError` into the Status body, so no bad request ever panics or hangs.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One field-level cause of a 422 Invalid.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, …
    pub reason: &'static str,
    /// The full cause message, e.g. `Required value`.
    pub message: String,
    /// The JSON path of the field, e.g. `spec.listeners[0].port`.
    pub field: String,
}

impl Cause {
    /// A missing required field.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let message =
            if detail.is_empty() { "Required value".to_string() } else { format!("Required value: {detail}") };
        Self { reason: "FieldValueRequired", message, field: field.into() }
    }

    /// A value that breaks a rule; `value` is rendered the way Go's `%#v`-ish errors do.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {}: {detail}", render_value(value)),
            field: field.into(),
        }
    }

    /// A value outside an enum.
    pub fn not_supported(field: impl Into<String>, value: &Value, allowed: &[Value]) -> Self {
        let allowed: Vec<String> = allowed.iter().map(render_value).collect();
        Self {
            reason: "FieldValueNotSupported",
            message: format!("Unsupported value: {}: supported values: {}", render_value(value), allowed.join(", ")),
            field: field.into(),
        }
    }

    /// A value of the wrong JSON type, worded as the schema validator words it.
    pub fn type_invalid(field: impl Into<String>, value: &Value, expected: &str) -> Self {
        let field = field.into();
        let actual = json_type(value);
        Self {
            reason: "FieldValueTypeInvalid",
            message: format!("Invalid value: \"{actual}\": {field} in body must be of type {expected}: \"{actual}\""),
            field,
        }
    }
}

/// The JSON type name the API server prints in schema errors.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// An error reply: HTTP code plus the Status fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code, also `Status.code`.
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`.
    pub reason: &'static str,
    /// `Status.message`, worded as the real server words it.
    pub message: String,
    /// `Status.details`, if any.
    pub details: Option<Value>,
}

/// The `details` object: name, group, kind (the resource plural or the Kind, as the server does).
fn details(name: &str, group: &str, kind: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    d.insert("kind".into(), json!(kind));
    Value::Object(d)
}

/// `configmaps` or `gateways.gateway.networking.k8s.io`, the "qualified resource" of messages.
pub fn qualified(plural: &str, group: &str) -> String {
    if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into(), details: None }
    }

    /// 404 for a named object.
    pub fn not_found(plural: &str, group: &str, name: &str) -> Self {
        Self {
            details: Some(details(name, group, plural)),
            ..Self::new(404, "NotFound", format!("{} \"{name}\" not found", qualified(plural, group)))
        }
    }

    /// 404 for a path the server does not serve.
    pub fn no_route() -> Self {
        Self {
            details: Some(json!({})),
            ..Self::new(404, "NotFound", "the server could not find the requested resource")
        }
    }

    /// 409 on create of an existing name.
    pub fn already_exists(plural: &str, group: &str, name: &str) -> Self {
        Self {
            details: Some(details(name, group, plural)),
            ..Self::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", qualified(plural, group)))
        }
    }

    /// 409 on a stale resourceVersion.
    pub fn conflict(plural: &str, group: &str, name: &str) -> Self {
        Self {
            details: Some(details(name, group, plural)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    qualified(plural, group)
                ),
            )
        }
    }

    /// 409 on a server-side apply conflict.
    pub fn apply_conflict(plural: &str, group: &str, name: &str, conflicts: &[(String, String)]) -> Self {
        let lines: Vec<String> =
            conflicts.iter().map(|(manager, field)| format!("- conflict with \"{manager}\": {field}")).collect();
        let message = if conflicts.len() == 1 {
            format!("Apply failed with 1 conflict: conflict with \"{}\": {}", conflicts[0].0, conflicts[0].1)
        } else {
            format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
        };
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(manager, field)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{manager}\""), "field": field}))
            .collect();
        let mut d = details(name, group, plural);
        d["causes"] = Value::Array(causes);
        Self { details: Some(d), ..Self::new(409, "Conflict", message) }
    }

    /// 422 with field causes; `kind` is the Kind, qualified with the group as the server does.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified_kind = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
        let parts: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
        let joined = if parts.len() == 1 { parts[0].clone() } else { format!("[{}]", parts.join(", ")) };
        let mut d = details(name, group, kind);
        d["causes"] = Value::Array(
            causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect(),
        );
        Self {
            details: Some(d),
            ..Self::new(422, "Invalid", format!("{qualified_kind} \"{name}\" is invalid: {joined}"))
        }
    }

    /// 400 with a free-form message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401: no or an invalid bearer token.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 with the authorizer's wording already built.
    pub fn forbidden(plural: &str, group: &str, name: &str, message: impl Into<String>) -> Self {
        Self { details: Some(details(name, group, plural)), ..Self::new(403, "Forbidden", message) }
    }

    /// 405: verb not supported on this resource.
    pub fn method_not_allowed() -> Self {
        Self {
            details: Some(json!({})),
            ..Self::new(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        }
    }

    /// 415 for a PATCH content type the server does not know.
    pub fn unsupported_patch(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// 415 for a body media type the server does not decode.
    pub fn unsupported_media(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"
            ),
        )
    }

    /// 410 Expired for a watch or list from a compacted resourceVersion.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(410, "Expired", format!("too old resource version: {requested} ({oldest})"))
    }

    /// 500 for faults injected by tests and for internal errors.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 429 for injected throttling.
    pub fn too_many_requests() -> Self {
        Self {
            details: Some(json!({"retryAfterSeconds": 1})),
            ..Self::new(
                429,
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            )
        }
    }

    /// The Status object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (code, axum::Json(self.status())).into_response();
        if self.code == 401 {
            response.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        if self.code == 429 {
            // As kube-apiserver's max-in-flight filter does; clients (kube-rs included) honour it.
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}
