//! Local IMDS: the managed-identity token endpoint of the Azure Instance Metadata Service,
//! `GET /metadata/identity/oauth2/token?api-version=…&resource=…[&client_id=…]` with the header
//! `Metadata: true`, as an AKS node serves it to its pods.
//!
//! The real endpoint is plain HTTP on the link-local `169.254.169.254`, reachable only from the
//! VM. The sandbox serves the same path on every one of its HTTPS listeners (whatever the `Host`),
//! so a client needs nothing beyond the sandbox CA it already trusts: point it at
//! [`crate::Endpoints::managed_identity_endpoint`]. Only the scenario's node identities
//! ([`crate::Scenario::node_identities`]) get tokens; they are signed like Entra's, with the
//! identity's principal id as `oid`, so ARM's role assignments apply to them unchanged.
//! Refusals have IMDS's shape, `{"error": …, "error_description": …}` — notably 400
//! `invalid_request` / `Identity not found` for an identity the node does not have, and 400 when
//! the `Metadata: true` header (IMDS's guard against server-side request forgery) is missing.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::entra::audience_kind;
use crate::http::{Req, Resp, json as json_resp};
use crate::server::Ctx;
use crate::state::Identity;

/// The token endpoint's path.
pub const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";

/// Whether a request is for the token endpoint (on any host and port).
pub fn is_token_path(req: &Req) -> bool {
    req.path.trim_end_matches('/') == TOKEN_PATH
}

/// The operation name for the call counter and fault rules (service `imds`).
pub fn operation(req: &Req) -> &'static str {
    if req.method == Method::GET { "Token" } else { "Unknown" }
}

fn refuse(status: StatusCode, error: &str, description: impl Into<String>) -> Resp {
    json_resp(status, &json!({"error": error, "error_description": description.into()}))
}

/// Serves one token request.
pub fn handle(ctx: &Ctx, req: &Req) -> Resp {
    if req.method != Method::GET {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "The token endpoint answers GET only");
    }
    if !req.header("metadata").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request", "Required metadata header not specified");
    }
    if req.query("api-version").is_none_or(str::is_empty) {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request", "Required query variable 'api-version' is missing");
    }
    let Some(resource) = req.query("resource").filter(|r| !r.is_empty()) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request", "Required audience variable not specified");
    };
    if audience_kind(resource).is_none() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            format!("AADSTS500011: The resource principal named {resource} was not found in the tenant."),
        );
    }
    let identity = match pick(ctx, req) {
        Ok(i) => i,
        Err(description) => return refuse(StatusCode::BAD_REQUEST, "invalid_request", description),
    };
    let lifetime = ctx.entra.token_lifetime();
    let now = ctx.entra.now();
    match ctx.entra.issue(&identity, resource, lifetime) {
        // IMDS sends every number as a string.
        Ok((token, lifetime)) => json_resp(
            StatusCode::OK,
            &json!({
                "access_token": token,
                "client_id": identity.client_id,
                "expires_in": lifetime.to_string(),
                "expires_on": (now + lifetime).to_string(),
                "ext_expires_in": lifetime.to_string(),
                "not_before": now.to_string(),
                "resource": resource,
                "token_type": "Bearer",
            }),
        ),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "unknown_error", e),
    }
}

/// The node identity a request names by `client_id`, `object_id` or `msi_res_id`/`mi_res_id`;
/// without one, the node's only identity (IMDS falls back to the system-assigned identity, which
/// sandbox nodes do not have).
fn pick(ctx: &Ctx, req: &Req) -> Result<Identity, &'static str> {
    let world = ctx.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut on_nodes = world.node_identities();
    let param = |name: &str| req.query(name).filter(|v| !v.is_empty());
    let found = if let Some(c) = param("client_id") {
        on_nodes.find(|i| i.client_id.eq_ignore_ascii_case(c))
    } else if let Some(o) = param("object_id").or_else(|| param("principal_id")) {
        on_nodes.find(|i| i.principal_id.eq_ignore_ascii_case(o))
    } else if let Some(r) = param("msi_res_id").or_else(|| param("mi_res_id")) {
        on_nodes.find(|i| i.resource_id().eq_ignore_ascii_case(r))
    } else {
        let all: Vec<&Identity> = on_nodes.collect();
        match all.as_slice() {
            [only] => Some(*only),
            [] => None,
            _ => {
                return Err(
                    "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request",
                );
            }
        }
    };
    found.cloned().ok_or("Identity not found")
}
