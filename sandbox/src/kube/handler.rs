//! Request handling: every HTTPS request of the API server enters at [`handle`], is authenticated
//! (admin token or ServiceAccount JWT), and is then either answered from a document (discovery,
//! OpenAPI, OIDC, the sandbox admin endpoints) or resolved through the registry to a resource
//! [`Target`], passed through fault injection and RBAC, and turned into one store operation (get,
//! list, watch, create, update, patch, server-side apply, delete). Every failure leaves as a
//! Status from [`super::error`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::ApiError;
use super::patch::PatchType;
use super::registry::{self, ResourceInfo};
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{DeleteOptions, ListQuery, WriteOptions};
use super::token::{self, Identity};
use super::{Context, apply, discovery, events, faults, openapi, patch, protobuf, rbac, selectors, table, watch};

/// Decoded query string.
#[derive(Debug, Default)]
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(uri: &Uri) -> Self {
        let raw = uri.query().unwrap_or("");
        Self(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode_component(k), decode_component(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | ""))
    }
}

fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (code, axum::Json(body)).into_response()
}

fn with_content_type(mut response: Response, content_type: &'static str) -> Response {
    response.headers_mut().insert("content-type", HeaderValue::from_static(content_type));
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The one entry point of every request.
pub(super) async fn handle(
    State(ctx): State<Arc<Context>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match route(&ctx, &method, &uri, &headers, &body).await {
        Ok(response) => response,
        Err(err) => {
            tracing::debug!(%method, path = uri.path(), code = err.code, reason = err.reason, "request failed");
            err.into_response()
        }
    }
}

fn authenticate(ctx: &Context, headers: &HeaderMap) -> Result<Identity, ApiError> {
    let auth = header(headers, "authorization");
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .ok_or_else(ApiError::unauthorized)?
        .trim();
    if token == ctx.admin_token {
        let user = header(headers, "impersonate-user");
        if user.is_empty() {
            return Ok(Identity::Admin);
        }
        let groups: Vec<String> =
            headers.get_all("impersonate-group").iter().filter_map(|v| v.to_str().ok().map(str::to_string)).collect();
        return Ok(Identity::impersonated(user, groups));
    }
    if !header(headers, "impersonate-user").is_empty() {
        // Only the admin may impersonate here, as a user without the `impersonate` verb.
        return Err(ApiError::forbidden(
            "users",
            "",
            header(headers, "impersonate-user"),
            format!(
                "users \"{}\" is forbidden: the sandbox lets only the admin token impersonate",
                header(headers, "impersonate-user")
            ),
        ));
    }
    let claims = ctx.tokens.verify(token).ok_or_else(ApiError::unauthorized)?;
    let namespace = claims.kubernetes.get("namespace").and_then(Value::as_str).unwrap_or_default().to_string();
    let name =
        claims.kubernetes.pointer("/serviceaccount/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let uid = claims.kubernetes.pointer("/serviceaccount/uid").and_then(Value::as_str).unwrap_or_default();
    // A token outlives nothing: once its ServiceAccount is deleted (or recreated), it stops working.
    let info = ctx.store.registry().lookup("", "v1", "serviceaccounts").ok_or_else(ApiError::unauthorized)?;
    let sa = ctx.store.get(&info, &namespace, &name).map_err(|_| ApiError::unauthorized())?;
    if sa.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid) {
        return Err(ApiError::unauthorized());
    }
    Ok(Identity::ServiceAccount { namespace, name })
}

async fn route(
    ctx: &Arc<Context>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let path = uri.path().trim_end_matches('/');
    let query = Query::parse(uri);
    match path {
        "/version" => return Ok(json_response(StatusCode::OK, &discovery::version())),
        "/healthz" | "/livez" | "/readyz" => return Ok("ok".into_response()),
        "/.well-known/openid-configuration" => {
            return Ok(json_response(StatusCode::OK, &ctx.tokens.openid_configuration()));
        }
        "/openid/v1/jwks" => return Ok(json_response(StatusCode::OK, &ctx.tokens.jwks())),
        _ => {}
    }
    let identity = authenticate(ctx, headers)?;
    let registry = ctx.store.registry();
    let accept = header(headers, "accept");
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["api"] if discovery::wants_aggregated(accept) => {
            return Ok(with_content_type(
                json_response(StatusCode::OK, &discovery::aggregated(&registry, true)),
                discovery::AGGREGATED_V2,
            ));
        }
        ["apis"] if discovery::wants_aggregated(accept) => {
            return Ok(with_content_type(
                json_response(StatusCode::OK, &discovery::aggregated(&registry, false)),
                discovery::AGGREGATED_V2,
            ));
        }
        ["api"] => return Ok(json_response(StatusCode::OK, &discovery::api_versions(&ctx.address.to_string()))),
        ["apis"] => return Ok(json_response(StatusCode::OK, &discovery::api_group_list(&registry))),
        ["api", version] => {
            return discovery::resource_list(&registry, "", version)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(ApiError::no_route);
        }
        ["apis", group] => {
            return discovery::group(&registry, group)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(ApiError::no_route);
        }
        ["apis", group, version] => {
            return discovery::resource_list(&registry, group, version)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(ApiError::no_route);
        }
        ["sandbox", "faults"] => return faults_endpoint(ctx, &identity, method, body),
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            review @ ("selfsubjectaccessreviews" | "subjectaccessreviews" | "selfsubjectrulesreviews"),
        ] => {
            if *method != Method::POST {
                return Err(ApiError::method_not_allowed());
            }
            if *review == "subjectaccessreviews" && identity != Identity::Admin {
                return Err(ApiError::forbidden(
                    "subjectaccessreviews",
                    "authorization.k8s.io",
                    "",
                    "subjectaccessreviews.authorization.k8s.io is forbidden: only the admin may review other users",
                ));
            }
            let kind = match *review {
                "selfsubjectaccessreviews" => "SelfSubjectAccessReview",
                "subjectaccessreviews" => "SubjectAccessReview",
                _ => "SelfSubjectRulesReview",
            };
            let request = if header(headers, "content-type").starts_with("application/vnd.kubernetes.protobuf") {
                protobuf::decode("authorization.k8s.io/v1", kind, body)?
            } else {
                decode_body(headers, body)?
            };
            let answer = if *review == "selfsubjectrulesreviews" {
                rbac::rules_review(&ctx.store, &identity, request)
            } else {
                rbac::access_review(&ctx.store, &identity, request)
            };
            return Ok(json_response(StatusCode::CREATED, &answer));
        }
        ["sandbox", "gateways", ns, name, "address"] => {
            if identity != Identity::Admin {
                return Err(ApiError::forbidden("", "", "", "only the admin token may control the sandbox"));
            }
            match *method {
                Method::DELETE => ctx.gateways.withhold_address(ns, name),
                Method::PUT | Method::POST => ctx.gateways.restore_address(ns, name),
                _ => return Err(ApiError::method_not_allowed()),
            }
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        ["openapi", "v3"] => return Ok(json_response(StatusCode::OK, &openapi::index(&registry))),
        ["openapi", "v3", "api", version] => {
            return openapi::document(&registry, "", version)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(ApiError::no_route);
        }
        ["openapi", "v3", "apis", group, version] => {
            return openapi::document(&registry, group, version)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(ApiError::no_route);
        }
        _ => {}
    }
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return Err(ApiError::no_route()),
    };
    let target = resolve(&registry, group, version, rest)?;
    ctx.faults.before_request(verb_of(method, &query, &target).unwrap_or("unknown"), &target.info.plural).await?;
    authorize(ctx, &identity, method, &query, headers, &target)?;
    resource(ctx, method, &query, headers, body, target).await
}

/// A resolved resource path.
#[derive(Debug)]
struct Target {
    info: Arc<ResourceInfo>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn resolve(registry: &registry::Registry, group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(group.is_empty() && rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    let (namespace, rest) = if namespaced_path { (Some(rest[1].to_string()), &rest[2..]) } else { (None, rest) };
    let info = registry.lookup(group, version, rest[0]).ok_or_else(ApiError::no_route)?;
    if namespace.is_some() && !info.namespaced {
        return Err(ApiError::no_route());
    }
    let name = rest.get(1).map(|s| s.to_string());
    let subresource = rest.get(2).map(|s| s.to_string());
    if rest.len() > 3 {
        return Err(ApiError::no_route());
    }
    if let Some(sub) = &subresource {
        let known = (sub == "status" && info.status_subresource)
            || info.subresources.iter().any(|s| s.name == sub)
            || (sub == "finalize" && info.kind == "Namespace");
        if !known {
            return Err(ApiError::no_route());
        }
    }
    Ok(Target { info, namespace, name, subresource })
}

fn verb_of(method: &Method, query: &Query, target: &Target) -> Option<&'static str> {
    Some(match (method.clone(), target.name.is_some()) {
        (Method::GET, true) => "get",
        (Method::GET, false) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => "watch",
        (Method::GET, false) => "list",
        (Method::POST, _) => "create",
        (Method::PUT, _) => "update",
        (Method::PATCH, _) => "patch",
        (Method::DELETE, true) => "delete",
        (Method::DELETE, false) => "deletecollection",
        _ => return None,
    })
}

fn faults_endpoint(ctx: &Context, identity: &Identity, method: &Method, body: &Bytes) -> Result<Response, ApiError> {
    if *identity != Identity::Admin {
        return Err(ApiError::forbidden("", "", "", "only the admin token may control the sandbox"));
    }
    match *method {
        Method::GET => {}
        Method::POST => {
            let request: faults::FaultRequest = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid fault request: {e}")))?;
            ctx.faults.apply(request);
        }
        Method::DELETE => ctx.faults.clear(),
        _ => return Err(ApiError::method_not_allowed()),
    }
    Ok(json_response(StatusCode::OK, &ctx.faults.describe()))
}

fn authorize(
    ctx: &Context,
    identity: &Identity,
    method: &Method,
    query: &Query,
    headers: &HeaderMap,
    target: &Target,
) -> Result<(), ApiError> {
    if *identity == Identity::Admin {
        return Ok(());
    }
    let verb = verb_of(method, query, target).ok_or_else(ApiError::method_not_allowed)?;
    let attrs = rbac::Attributes {
        verb,
        group: &target.info.group,
        resource: &target.info.plural,
        subresource: target.subresource.as_deref(),
        namespace: target.namespace.as_deref(),
        name: target.name.as_deref(),
    };
    let decided = rbac::authorize(&ctx.store, identity, &attrs);
    ctx.access.record(identity, &attrs, decided.is_ok());
    decided?;
    // Server-side apply that creates the object also needs `create`, as on a real server. An
    // apply to a subresource never creates (the object missing is a 404), so it needs no more.
    let is_apply = header(headers, "content-type").starts_with("application/apply-patch");
    if verb == "patch"
        && is_apply
        && target.subresource.is_none()
        && let Some(name) = &target.name
    {
        let ns = target.namespace.clone().unwrap_or_default();
        if ctx.store.get(&target.info, &ns, name).is_err() {
            let create = rbac::Attributes { verb: "create", ..attrs };
            let decided = rbac::authorize(&ctx.store, identity, &create);
            ctx.access.record(identity, &create, decided.is_ok());
            decided?;
        }
    }
    Ok(())
}

fn decode_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let content_type = header(headers, "content-type");
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "" | "application/json" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))),
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}"))),
        other => Err(ApiError::unsupported_media(other)),
    }
}

fn field_manager(query: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let agent = header(headers, "user-agent");
    let prefix = agent.split('/').next().unwrap_or("").trim();
    if prefix.is_empty() { "unknown".into() } else { prefix.to_string() }
}

fn write_options(query: &Query, headers: &HeaderMap, subresource: Option<&str>) -> WriteOptions {
    WriteOptions {
        field_manager: field_manager(query, headers),
        subresource: subresource.filter(|s| *s == "status").map(str::to_string),
        dry_run: query.get("dryRun") == Some("All"),
        apply: false,
        field_validation: query.get("fieldValidation").map(str::to_string),
    }
}

fn list_query(query: &Query, info: &ResourceInfo) -> Result<ListQuery, ApiError> {
    let selector = query.get("fieldSelector").unwrap_or("");
    let fields = if info.group == "events.k8s.io" && info.plural == "events" {
        FieldSelector::parse_for(selector, events::EVENTS_V1_FIELDS)?.renamed(events::core_field)
    } else {
        FieldSelector::parse_for(selector, selectors::extra_fields(&info.group, &info.plural))?
    };
    Ok(ListQuery {
        labels: LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?,
        fields,
        limit: match query.get("limit") {
            Some(l) if !l.is_empty() => l.parse().map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?,
            _ => 0,
        },
        continue_token: query.get("continue").filter(|c| !c.is_empty()).map(str::to_string),
    })
}

fn check_kind(info: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!("the body of the request is not a {} object", info.kind)));
    }
    if !api_version.is_empty() && api_version != info.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            info.api_version()
        )));
    }
    if !kind.is_empty() && kind != info.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            info.kind
        )));
    }
    Ok(())
}

/// A served kind stored as another kind (events.k8s.io/v1 Events are kept as core v1 Events).
#[derive(Debug, Clone)]
struct Conversion {
    storage: Arc<ResourceInfo>,
    to_view: fn(&Value) -> Value,
    to_storage: fn(&Value) -> Value,
}

impl Conversion {
    fn for_kind(ctx: &Context, info: &ResourceInfo) -> Option<Self> {
        if info.group == "events.k8s.io" && info.plural == "events" {
            let storage = ctx.store.registry().lookup("", "v1", "events")?;
            return Some(Self { storage, to_view: events::to_events_v1, to_storage: events::to_core });
        }
        None
    }
}

fn view(conversion: &Option<Conversion>, obj: Value) -> Value {
    match conversion {
        Some(c) => (c.to_view)(&obj),
        None => obj,
    }
}

fn stored(conversion: &Option<Conversion>, obj: Value) -> Value {
    match conversion {
        Some(c) => (c.to_storage)(&obj),
        None => obj,
    }
}

fn view_list(conversion: &Option<Conversion>, info: &ResourceInfo, mut list: Value) -> Value {
    if conversion.is_some() {
        if let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) {
            for item in items.iter_mut() {
                *item = view(conversion, std::mem::take(item));
            }
        }
        list["apiVersion"] = json!(info.api_version());
        list["kind"] = json!(format!("{}List", info.kind));
    }
    list
}

async fn resource(
    ctx: &Arc<Context>,
    method: &Method,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
    target: Target,
) -> Result<Response, ApiError> {
    let Target { info, namespace, name, subresource } = target;
    let ns = namespace.clone().unwrap_or_default();
    let store = &ctx.store;
    let conversion = Conversion::for_kind(ctx, &info);
    let storage = conversion.as_ref().map(|c| c.storage.clone()).unwrap_or_else(|| info.clone());
    let accept = header(headers, "accept");
    if info.namespaced && namespace.is_none() && (name.is_some() || *method == Method::POST) {
        return Err(ApiError::no_route());
    }
    match (method.clone(), name.as_deref(), subresource.as_deref()) {
        (Method::GET, None, None) => {
            let q = list_query(query, &info)?;
            if query.flag("watch") && query.get("watch").is_some() {
                let from = match query.get("resourceVersion") {
                    Some(rv) if !rv.is_empty() => Some(rv.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!(
                            "resourceVersion: Invalid value: \"{rv}\": must be a non-negative integer"
                        ))
                    })?),
                    _ => None,
                };
                let timeout = query
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(ctx.options.default_watch_timeout);
                let req = watch::WatchRequest {
                    namespace,
                    labels: q.labels,
                    fields: q.fields,
                    from,
                    bookmarks: query.flag("allowWatchBookmarks") && query.get("allowWatchBookmarks").is_some(),
                    timeout,
                    bookmark_interval: ctx.options.bookmark_interval,
                    send_initial_events: query.flag("sendInitialEvents") && query.get("sendInitialEvents").is_some(),
                    view: conversion.as_ref().map(|c| (info.clone(), c.to_view)),
                    table: table::wants_table(accept),
                    metadata: table::wants_metadata(accept),
                };
                if ctx.faults.take_expiry() {
                    let expired = ApiError::expired(from.unwrap_or(0), store.current_rv());
                    return Ok(watch::serve_error(&expired));
                }
                return Ok(watch::serve(store.clone(), storage, req, ctx.faults.watch_closer()));
            }
            let list = view_list(&conversion, &info, store.list(&storage, namespace.as_deref(), &q)?);
            if table::wants_metadata(accept) {
                let items: Vec<Value> = list["items"]
                    .as_array()
                    .map(|a| a.iter().map(registry::partial_metadata).collect())
                    .unwrap_or_default();
                let meta = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list["metadata"].clone(), "items": items});
                return Ok(with_content_type(json_response(StatusCode::OK, &meta), table::metadata_content_type(true)));
            }
            if table::wants_table(accept) {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let rv = list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
                let t = table::table(&info, &items, rv, list.pointer("/metadata/continue").and_then(Value::as_str));
                return Ok(with_content_type(json_response(StatusCode::OK, &t), table::TABLE_CONTENT_TYPE));
            }
            Ok(json_response(StatusCode::OK, &list))
        }
        (Method::GET, Some(name), None | Some("status")) => {
            let obj = view(&conversion, store.get(&storage, &ns, name)?);
            if table::wants_metadata(accept) {
                let meta = registry::partial_metadata(&obj);
                return Ok(with_content_type(
                    json_response(StatusCode::OK, &meta),
                    table::metadata_content_type(false),
                ));
            }
            if table::wants_table(accept) {
                let rv = obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("").to_string();
                let t = table::table(&info, std::slice::from_ref(&obj), &rv, None);
                return Ok(with_content_type(json_response(StatusCode::OK, &t), table::TABLE_CONTENT_TYPE));
            }
            Ok(json_response(StatusCode::OK, &obj))
        }
        (Method::POST, None, None) => {
            let obj = if header(headers, "content-type").starts_with("application/vnd.kubernetes.protobuf") {
                protobuf::decode(&info.api_version(), &info.kind, body)?
            } else {
                decode_body(headers, body)?
            };
            check_kind(&info, &obj)?;
            let created =
                store.create(&storage, &ns, stored(&conversion, obj), &write_options(query, headers, None))?;
            Ok(json_response(StatusCode::CREATED, &view(&conversion, created)))
        }
        (Method::POST, Some(name), Some("token")) => {
            let content_type = header(headers, "content-type");
            let request = if content_type.starts_with("application/vnd.kubernetes.protobuf") {
                token::decode_protobuf_token_request(body)?
            } else {
                decode_body(headers, body)?
            };
            let sa = store.get(&info, &ns, name)?;
            let response = token::token_request(&ctx.tokens, &sa, &request)?;
            Ok(json_response(StatusCode::CREATED, &response))
        }
        (Method::PUT, Some(name), None | Some("status") | Some("finalize")) => {
            let obj = decode_body(headers, body)?;
            check_kind(&info, &obj)?;
            let sub = subresource.as_deref().filter(|s| *s != "finalize");
            let opts = write_options(query, headers, sub);
            let obj = stored(&conversion, obj);
            let (updated, _) = store.write(&storage, &ns, name, &opts, false, |_| Ok(obj))?;
            Ok(json_response(StatusCode::OK, &view(&conversion, updated)))
        }
        (Method::PATCH, Some(name), None | Some("status")) => {
            patch_resource(ctx, &info, &conversion, &ns, name, subresource.as_deref(), query, headers, body)
        }
        (Method::DELETE, Some(name), None) => {
            let mut opts = DeleteOptions {
                propagation: query.get("propagationPolicy").map(str::to_string),
                dry_run: query.get("dryRun") == Some("All"),
                ..DeleteOptions::default()
            };
            if !body.is_empty() {
                let options: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("couldn't decode DeleteOptions: {e}")))?;
                if let Some(p) = options.get("propagationPolicy").and_then(Value::as_str) {
                    opts.propagation = Some(p.to_string());
                }
                if options.get("orphanDependents") == Some(&Value::Bool(true)) {
                    opts.propagation = Some("Orphan".into());
                }
                opts.uid = options.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_string);
                opts.resource_version =
                    options.pointer("/preconditions/resourceVersion").and_then(Value::as_str).map(str::to_string);
                if options.get("dryRun").and_then(Value::as_array).is_some_and(|d| d.iter().any(|x| x == "All")) {
                    opts.dry_run = true;
                }
            }
            let deleted = store.delete(&storage, &ns, name, &opts)?;
            Ok(json_response(StatusCode::OK, &view(&conversion, deleted)))
        }
        (Method::DELETE, None, None) => {
            let q = list_query(query, &info)?;
            let opts = DeleteOptions {
                propagation: query.get("propagationPolicy").map(str::to_string),
                ..DeleteOptions::default()
            };
            let deleted = store.delete_collection(&storage, namespace.as_deref(), &q, &opts)?;
            Ok(json_response(StatusCode::OK, &view_list(&conversion, &info, deleted)))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

#[allow(clippy::too_many_arguments)]
fn patch_resource(
    ctx: &Arc<Context>,
    info: &Arc<ResourceInfo>,
    conversion: &Option<Conversion>,
    ns: &str,
    name: &str,
    subresource: Option<&str>,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let content_type = header(headers, "content-type");
    let kind = PatchType::from_content_type(content_type).ok_or_else(|| ApiError::unsupported_patch(content_type))?;
    if kind == PatchType::Strategic && info.from_crd {
        return Err(ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
            details: None,
        });
    }
    let mut opts = write_options(query, headers, subresource);
    let patch_body: Value = match kind {
        PatchType::Apply => serde_json::from_slice(body).or_else(|_| {
            serde_yaml_ng::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
        })?,
        _ => serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
    };
    if kind == PatchType::Apply {
        if query.get("fieldManager").is_none_or(str::is_empty) {
            return Err(ApiError::bad_request("PATCH /apply requires fieldManager to be set"));
        }
        check_kind(info, &patch_body)?;
        if patch_body.get("apiVersion").is_none() || patch_body.get("kind").is_none() {
            return Err(ApiError::bad_request("apiVersion and kind must be set in an apply configuration"));
        }
        opts.apply = true;
        let force = query.flag("force") && query.get("force").is_some();
        let storage = conversion.as_ref().map(|c| c.storage.clone()).unwrap_or_else(|| info.clone());
        let step = apply::server_side(info, ns, name, &patch_body, &opts, force);
        // As on a real server, a subresource (status, scale) is applied to an existing object only.
        let (obj, created) = ctx.store.write(&storage, ns, name, &opts, subresource.is_none(), |live| {
            let live = live.map(|l| view(conversion, l.clone()));
            step(live.as_ref()).map(|applied| stored(conversion, applied))
        })?;
        let code = if created { StatusCode::CREATED } else { StatusCode::OK };
        return Ok(json_response(code, &view(conversion, obj)));
    }
    let storage = conversion.as_ref().map(|c| c.storage.clone()).unwrap_or_else(|| info.clone());
    let (obj, _) = ctx.store.write(&storage, ns, name, &opts, false, |live| {
        let Some(live) = live else { return Ok(Value::Null) };
        let mut doc = view(conversion, live.clone());
        match kind {
            PatchType::Json => patch::json_patch(&mut doc, &patch_body)?,
            PatchType::Merge => patch::merge_patch(&mut doc, &patch_body)?,
            PatchType::Strategic => patch::strategic_merge(&mut doc, &patch_body)?,
            PatchType::Apply => {}
        }
        Ok(stored(conversion, doc))
    })?;
    Ok(json_response(StatusCode::OK, &view(conversion, obj)))
}
