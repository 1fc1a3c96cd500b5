//! Azure Resource Manager: subscriptions, cloud metadata, and Azure DNS (public and private zones).
//!
//! [`parse`] turns a request path into an [`ArmRoute`] (segments matched case-insensitively, as
//! ARM does) whose [`ArmRoute::operation`] names it for the counter and fault rules. [`handle`]
//! then runs ARM's pipeline in ARM's order: api-version, bearer token (signature, audience,
//! expiry), subscription and tenant, throttling (per subscription and principal, then per zone),
//! RBAC on the requested scope (so a caller without access gets 403 even for a missing zone),
//! and finally the resource provider: zones and record sets with ETag preconditions, paging and
//! Azure DNS's validation, rendered by [`crate::dns`].

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::dns::{DnsError, RecordSet, RecordType, Zone, name_key, parse_record_set, validate_name};
use crate::entra::{AccessClaims, Audience, TokenError};
use crate::faults::{Limit, retry_after_seconds};
use crate::http::{Req, Resp, azure_error, empty, json as json_resp, set_header, unquote_etag};
use crate::rbac::{ActionKind, allowed};
use crate::scenario::ZoneKind;
use crate::server::Ctx;

const PUBLIC_API_VERSIONS: &[&str] =
    &["2016-04-01", "2017-09-01", "2017-10-01", "2018-03-01-preview", "2018-05-01", "2023-07-01-preview"];
const PRIVATE_API_VERSIONS: &[&str] = &["2018-09-01", "2020-01-01", "2020-06-01", "2024-06-01"];
const DEFAULT_PAGE: usize = 100;

/// What an ARM request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArmRoute {
    /// `GET /metadata/endpoints`.
    CloudMetadata,
    /// `GET /subscriptions`.
    ListSubscriptions,
    /// `GET /subscriptions/{s}`.
    GetSubscription(String),
    /// `GET /subscriptions/{s}/resourcegroups/{rg}`.
    GetResourceGroup(String, String),
    /// Zones in a resource group, or in the subscription when the group is `None`.
    ListZones(ZoneKind, String, Option<String>),
    /// One zone.
    Zone(ZoneKind, String, String, String),
    /// Record sets of a zone; `Some(type)` for list-by-type, `None` for all.
    ListRecordSets(ZoneKind, String, String, String, Option<RecordType>),
    /// One record set.
    RecordSet(ZoneKind, String, String, String, RecordType, String),
    /// A record type the sandbox does not serve.
    UnsupportedType(String),
    /// Anything else.
    Unknown,
}

/// Parses the path into a route.
pub fn parse(req: &Req) -> ArmRoute {
    // ARM ignores empty segments: clients join a base URL ending in `/` with paths starting with
    // `/` (the CLI asks for `//metadata/endpoints`), and trailing slashes are common.
    let s: Vec<&str> = req.segments.iter().map(String::as_str).filter(|x| !x.is_empty()).collect();
    let lower: Vec<String> = s.iter().map(|x| x.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let kind = |p: &str| match p {
        "dnszones" => Some(ZoneKind::Public),
        "privatednszones" => Some(ZoneKind::Private),
        _ => None,
    };
    match l.as_slice() {
        ["metadata", "endpoints"] => ArmRoute::CloudMetadata,
        ["subscriptions"] => ArmRoute::ListSubscriptions,
        ["subscriptions", _] => ArmRoute::GetSubscription(s[1].into()),
        ["subscriptions", _, "resourcegroups", _] => ArmRoute::GetResourceGroup(s[1].into(), s[3].into()),
        ["subscriptions", _, "providers", "microsoft.network", p] => match kind(p) {
            Some(k) => ArmRoute::ListZones(k, s[1].into(), None),
            None => ArmRoute::Unknown,
        },
        ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.network", p, rest @ ..] => {
            let Some(k) = kind(p) else { return ArmRoute::Unknown };
            let (sub, rg) = (s[1].to_string(), s[3].to_string());
            match rest {
                [] => ArmRoute::ListZones(k, sub, Some(rg)),
                [_] => ArmRoute::Zone(k, sub, rg, s[7].into()),
                [_, "recordsets" | "all"] => ArmRoute::ListRecordSets(k, sub, rg, s[7].into(), None),
                [_, t] => match RecordType::parse(t) {
                    Some(t) => ArmRoute::ListRecordSets(k, sub, rg, s[7].into(), Some(t)),
                    None => ArmRoute::UnsupportedType(s[8].into()),
                },
                [_, t, _] => match RecordType::parse(t) {
                    Some(t) => ArmRoute::RecordSet(k, sub, rg, s[7].into(), t, s[9].into()),
                    None => ArmRoute::UnsupportedType(s[8].into()),
                },
                _ => ArmRoute::Unknown,
            }
        }
        _ => ArmRoute::Unknown,
    }
}

impl ArmRoute {
    /// Operation name for the counter (Azure's operationIds; `Private` prefix for private zones).
    pub fn operation(&self, method: &Method) -> &'static str {
        let private = |k: &ZoneKind| *k == ZoneKind::Private;
        match self {
            Self::CloudMetadata => "CloudMetadata",
            Self::ListSubscriptions => "Subscriptions_List",
            Self::GetSubscription(_) => "Subscriptions_Get",
            Self::GetResourceGroup(..) => "ResourceGroups_Get",
            Self::ListZones(k, _, rg) => match (private(k), rg.is_some()) {
                (true, true) => "PrivateZones_ListByResourceGroup",
                (true, false) => "PrivateZones_List",
                (false, true) => "Zones_ListByResourceGroup",
                (false, false) => "Zones_List",
            },
            Self::Zone(k, ..) => {
                if private(k) {
                    "PrivateZones_Get"
                } else {
                    "Zones_Get"
                }
            }
            Self::ListRecordSets(k, _, _, _, t) => match (private(k), t.is_some()) {
                (false, true) => "RecordSets_ListByType",
                (false, false) => "RecordSets_ListByDnsZone",
                (true, true) => "PrivateRecordSets_ListByType",
                (true, false) => "PrivateRecordSets_List",
            },
            Self::RecordSet(k, ..) => match (private(k), method.as_str()) {
                (false, "GET") => "RecordSets_Get",
                (false, "PUT") => "RecordSets_CreateOrUpdate",
                (false, "PATCH") => "RecordSets_Update",
                (false, "DELETE") => "RecordSets_Delete",
                (true, "GET") => "PrivateRecordSets_Get",
                (true, "PUT") => "PrivateRecordSets_CreateOrUpdate",
                (true, "PATCH") => "PrivateRecordSets_Update",
                (true, "DELETE") => "PrivateRecordSets_Delete",
                _ => "Unknown",
            },
            Self::UnsupportedType(_) | Self::Unknown => "Unknown",
        }
    }
}

fn dns_error(e: DnsError) -> Resp {
    azure_error(e.status, e.code, &e.message)
}

fn unauthorized(code: &str, message: &str) -> Resp {
    let mut r = azure_error(StatusCode::UNAUTHORIZED, code, message);
    set_header(
        &mut r,
        "www-authenticate",
        &format!(
            "Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\", error_description=\"{message}\""
        ),
    );
    r
}

fn throttled(wait: std::time::Duration, what: &str) -> Resp {
    let mut r = azure_error(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        &format!(
            "The request is being throttled as the limit has been reached for operation type - {what}. For more information, see - https://aka.ms/srpthrottlinglimits"
        ),
    );
    set_header(&mut r, "retry-after", &retry_after_seconds(wait).to_string());
    r
}

fn forbidden(claims: &AccessClaims, action: &str, scope: &str) -> Resp {
    azure_error(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        &format!(
            "The client '{oid}' with object id '{oid}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            oid = claims.oid
        ),
    )
}

/// Serves one ARM request. Like ARM, every answer past the subscription's throttle says how
/// many requests of its class (reads, writes, deletes) the principal has left:
/// `x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}`.
pub fn handle(ctx: &Ctx, req: &Req, route: &ArmRoute) -> Resp {
    let mut remaining = None;
    let mut resp = serve(ctx, req, route, &mut remaining);
    if let Some((header, left)) = remaining {
        set_header(&mut resp, header, &left.to_string());
    }
    resp
}

fn serve(ctx: &Ctx, req: &Req, route: &ArmRoute, remaining: &mut Option<(&'static str, u32)>) -> Resp {
    if *route == ArmRoute::CloudMetadata {
        return json_resp(StatusCode::OK, &cloud_metadata(ctx, req));
    }
    let api_version = req.query("api-version");
    let Some(api_version) = api_version else {
        return azure_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    };
    let claims = match req.bearer() {
        None => {
            return unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            );
        }
        Some(token) => match ctx.entra.verify(token, Audience::Arm) {
            Ok(c) => c,
            Err(TokenError::Invalid) => {
                return unauthorized("InvalidAuthenticationToken", "The access token is invalid.");
            }
            Err(TokenError::Expired) => {
                return unauthorized(
                    "ExpiredAuthenticationToken",
                    "The access token expiry UTC time is earlier than current UTC time.",
                );
            }
            Err(TokenError::WrongAudience(aud)) => {
                return unauthorized(
                    "InvalidAuthenticationTokenAudience",
                    &format!(
                        "The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."
                    ),
                );
            }
        },
    };
    let mut world = ctx.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (sub, zone_kind) = match route {
        ArmRoute::ListSubscriptions => {
            let value: Vec<Value> = world
                .subscriptions
                .iter()
                .filter(|s| s.tenant.eq_ignore_ascii_case(&claims.tid))
                .map(subscription_json)
                .collect();
            let count = value.len();
            return json_resp(StatusCode::OK, &json!({"value": value, "count": {"type": "Total", "value": count}}));
        }
        ArmRoute::GetSubscription(s) | ArmRoute::GetResourceGroup(s, _) => (s.clone(), None),
        ArmRoute::ListZones(k, s, _)
        | ArmRoute::Zone(k, s, ..)
        | ArmRoute::ListRecordSets(k, s, ..)
        | ArmRoute::RecordSet(k, s, ..) => (s.clone(), Some(*k)),
        ArmRoute::UnsupportedType(t) => {
            return azure_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("The record type '{t}' is not supported by the sandbox (A, AAAA, CNAME, TXT, SOA, NS)."),
            );
        }
        ArmRoute::CloudMetadata | ArmRoute::Unknown => {
            return azure_error(
                StatusCode::NOT_FOUND,
                "InvalidResourceType",
                &format!("The resource type could not be found for the request {} {}.", req.method, req.path),
            );
        }
    };
    let Some(subscription) = world.subscriptions.iter().find(|s| s.id.eq_ignore_ascii_case(&sub)).cloned() else {
        return azure_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("The subscription '{sub}' could not be found."),
        );
    };
    if !subscription.tenant.eq_ignore_ascii_case(&claims.tid) {
        return unauthorized(
            "InvalidAuthenticationTokenTenant",
            &format!(
                "The access token is from the wrong issuer '{}'. It must match the tenant 'https://sts.windows.net/{}/' associated with this subscription.",
                claims.iss, subscription.tenant
            ),
        );
    }
    if let Some(k) = zone_kind {
        let versions = if k == ZoneKind::Public { PUBLIC_API_VERSIONS } else { PRIVATE_API_VERSIONS };
        if !versions.contains(&api_version) {
            let ty = if k == ZoneKind::Public { "dnszones" } else { "privateDnsZones" };
            return azure_error(
                StatusCode::BAD_REQUEST,
                "NoRegisteredProviderFound",
                &format!(
                    "No registered resource provider found for location 'global' and API version '{api_version}' for type '{ty}'. The supported api-versions are '{}'.",
                    versions.join(", ")
                ),
            );
        }
    }
    let principal_key = format!("{}/{}", subscription.id.to_ascii_lowercase(), claims.oid.to_ascii_lowercase());
    let (bucket, window, class) = match req.method {
        Method::GET | Method::HEAD => (Limit::ArmRead, "Read", "x-ms-ratelimit-remaining-subscription-reads"),
        Method::DELETE => (Limit::ArmDelete, "Delete", "x-ms-ratelimit-remaining-subscription-deletes"),
        _ => (Limit::ArmWrite, "Write", "x-ms-ratelimit-remaining-subscription-writes"),
    };
    match ctx.faults.check_limit(bucket, &principal_key) {
        Err(wait) => return throttled(wait, &format!("{window}_ObservationWindow")),
        Ok(left) => *remaining = left.map(|n| (class, n)),
    }

    match route {
        ArmRoute::GetSubscription(_) => json_resp(StatusCode::OK, &subscription_json(&subscription)),
        ArmRoute::GetResourceGroup(_, rg) => {
            let scope = format!("/subscriptions/{}/resourceGroups/{rg}", subscription.id);
            let action = "Microsoft.Resources/subscriptions/resourceGroups/read";
            if !allowed(&world.role_assignments, &claims.oid, &scope, action, ActionKind::Control) {
                return forbidden(&claims, action, &scope);
            }
            match world
                .resource_groups
                .iter()
                .find(|r| r.subscription == subscription.id && r.name.eq_ignore_ascii_case(rg))
            {
                Some(r) => json_resp(
                    StatusCode::OK,
                    &json!({"id": format!("/subscriptions/{}/resourceGroups/{}", r.subscription, r.name), "name": r.name, "type": "Microsoft.Resources/resourceGroups", "location": r.location, "properties": {"provisioningState": "Succeeded"}}),
                ),
                None => azure_error(
                    StatusCode::NOT_FOUND,
                    "ResourceGroupNotFound",
                    &format!("Resource group '{rg}' could not be found."),
                ),
            }
        }
        ArmRoute::ListZones(k, _, rg) => {
            let prefix =
                if *k == ZoneKind::Public { "Microsoft.Network/dnsZones" } else { "Microsoft.Network/privateDnsZones" };
            let scope = match rg {
                Some(rg) => format!("/subscriptions/{}/resourceGroups/{rg}", subscription.id),
                None => format!("/subscriptions/{}", subscription.id),
            };
            let action = format!("{prefix}/read");
            if !allowed(&world.role_assignments, &claims.oid, &scope, &action, ActionKind::Control) {
                return forbidden(&claims, &action, &scope);
            }
            if let Some(rg) = rg
                && let Err(r) = resource_group_exists(&world, &subscription.id, rg)
            {
                return *r;
            }
            let limit = if *k == ZoneKind::Public { Limit::PublicZoneListByRg } else { Limit::PrivateZoneListByRg };
            if let Err(wait) = ctx.faults.check_limit(limit, &scope.to_ascii_lowercase()) {
                return throttled(wait, "ZoneList");
            }
            let zones: Vec<&Zone> = world
                .zones
                .iter()
                .filter(|z| {
                    z.kind == *k
                        && z.subscription == subscription.id
                        && rg.as_ref().is_none_or(|rg| z.resource_group.eq_ignore_ascii_case(rg))
                })
                .collect();
            let (top, skip) = match paging(req) {
                Ok(p) => p,
                Err(r) => return *r,
            };
            let page: Vec<Value> = zones.iter().skip(skip).take(top).map(|z| z.to_json(&world.dns_limits)).collect();
            let next = (skip + top < zones.len()).then(|| next_link(req, skip + top));
            json_resp(StatusCode::OK, &json!({"value": page, "nextLink": next}))
        }
        ArmRoute::Zone(k, _, rg, zone) => {
            if req.method != Method::GET {
                return azure_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "The sandbox serves zones read-only; declare zones in the scenario.",
                );
            }
            let prefix =
                if *k == ZoneKind::Public { "Microsoft.Network/dnsZones" } else { "Microsoft.Network/privateDnsZones" };
            let scope = zone_scope(*k, &subscription.id, rg, zone);
            let action = format!("{prefix}/read");
            if !allowed(&world.role_assignments, &claims.oid, &scope, &action, ActionKind::Control) {
                return forbidden(&claims, &action, &scope);
            }
            match find_zone(&world, *k, &subscription.id, rg, zone) {
                Ok(i) => json_resp(StatusCode::OK, &world.zones[i].to_json(&world.dns_limits)),
                Err(r) => *r,
            }
        }
        ArmRoute::ListRecordSets(k, _, rg, zone, t) => {
            let scope = zone_scope(*k, &subscription.id, rg, zone);
            let prefix =
                if *k == ZoneKind::Public { "Microsoft.Network/dnsZones" } else { "Microsoft.Network/privateDnsZones" };
            let action = match t {
                Some(t) => format!("{prefix}/{}/read", t.as_str()),
                None if *k == ZoneKind::Public => format!("{prefix}/recordsets/read"),
                None => format!("{prefix}/ALL/read"),
            };
            if !allowed(&world.role_assignments, &claims.oid, &scope, &action, ActionKind::Control) {
                return forbidden(&claims, &action, &scope);
            }
            let i = match find_zone(&world, *k, &subscription.id, rg, zone) {
                Ok(i) => i,
                Err(r) => return *r,
            };
            let limit = if *k == ZoneKind::Public { Limit::PublicZoneList } else { Limit::PrivateZoneList };
            if let Err(wait) = ctx.faults.check_limit(limit, &scope.to_ascii_lowercase()) {
                return throttled(wait, "RecordSetList");
            }
            let (top, skip) = match paging(req) {
                Ok(p) => p,
                Err(r) => return *r,
            };
            let suffix = req.query("$recordsetnamesuffix").map(str::to_ascii_lowercase).filter(|s| !s.is_empty());
            let z = &world.zones[i];
            let sets: Vec<&RecordSet> = z
                .record_sets
                .iter()
                .filter(|((n, rt), _)| {
                    t.is_none_or(|t| t == *rt) && suffix.as_ref().is_none_or(|s| n.ends_with(s.as_str()))
                })
                .map(|(_, set)| set)
                .collect();
            let page: Vec<Value> = sets.iter().skip(skip).take(top).map(|s| s.to_json(z)).collect();
            let next = (skip + top < sets.len()).then(|| next_link(req, skip + top));
            json_resp(StatusCode::OK, &json!({"value": page, "nextLink": next}))
        }
        ArmRoute::RecordSet(k, _, rg, zone, t, name) => {
            let scope = format!("{}/{}/{}", zone_scope(*k, &subscription.id, rg, zone), t.as_str(), name);
            let prefix =
                if *k == ZoneKind::Public { "Microsoft.Network/dnsZones" } else { "Microsoft.Network/privateDnsZones" };
            let verb = match req.method {
                Method::GET => "read",
                Method::PUT | Method::PATCH => "write",
                Method::DELETE => "delete",
                _ => {
                    return azure_error(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "MethodNotAllowed",
                        &format!("The method {} is not allowed on a record set.", req.method),
                    );
                }
            };
            let action = format!("{prefix}/{}/{verb}", t.as_str());
            if !allowed(&world.role_assignments, &claims.oid, &scope, &action, ActionKind::Control) {
                return forbidden(&claims, &action, &scope);
            }
            let i = match find_zone(&world, *k, &subscription.id, rg, zone) {
                Ok(i) => i,
                Err(r) => return *r,
            };
            let limit = match (*k, verb) {
                (ZoneKind::Public, "read") => Limit::PublicZoneGet,
                (ZoneKind::Public, _) => Limit::PublicZoneWrite,
                (ZoneKind::Private, "read") => Limit::PrivateZoneGet,
                (ZoneKind::Private, _) => Limit::PrivateZoneWrite,
            };
            let zone_key = zone_scope(*k, &subscription.id, rg, zone).to_ascii_lowercase();
            if let Err(wait) = ctx.faults.check_limit(limit, &zone_key) {
                return throttled(wait, if verb == "read" { "RecordSetGet" } else { "RecordSetWrite" });
            }
            let limits = world.dns_limits.clone();
            let resp = record_set(req, &mut world.zones[i], *t, name, rg, &subscription.id, &limits);
            // 200 or 201 to a write changed the zone (a DELETE of nothing answers 204).
            let changed = matches!(resp.status(), StatusCode::OK | StatusCode::CREATED)
                && !matches!(req.method, Method::GET | Method::HEAD);
            if changed && ctx.record_set_watchers.any() {
                let z = &world.zones[i];
                let key = (name_key(name), *t);
                ctx.record_set_watchers.notify(&crate::admin::RecordSetChange {
                    zone: z.resource_id(),
                    name: key.0.clone(),
                    record_type: t.as_str(),
                    values: z.record_sets.get(&key).map(|s| s.data.values()),
                    at: std::time::Instant::now(),
                });
            }
            resp
        }
        ArmRoute::ListSubscriptions | ArmRoute::CloudMetadata | ArmRoute::UnsupportedType(_) | ArmRoute::Unknown => {
            empty(StatusCode::NOT_FOUND)
        }
    }
}

fn subscription_json(s: &crate::state::Subscription) -> Value {
    json!({
        "id": format!("/subscriptions/{}", s.id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": s.id,
        "tenantId": s.tenant,
        "displayName": s.name,
        "state": "Enabled",
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
    })
}

fn zone_scope(k: ZoneKind, sub: &str, rg: &str, zone: &str) -> String {
    let provider = if k == ZoneKind::Public { "dnszones" } else { "privateDnsZones" };
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/{provider}/{zone}")
}

fn resource_group_exists(world: &crate::state::World, sub: &str, rg: &str) -> Result<(), Box<Resp>> {
    if world.resource_groups.iter().any(|r| r.subscription.eq_ignore_ascii_case(sub) && r.name.eq_ignore_ascii_case(rg))
    {
        Ok(())
    } else {
        Err(Box::new(azure_error(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            &format!("Resource group '{rg}' could not be found."),
        )))
    }
}

/// The zone's index; 404 `ResourceGroupNotFound` or `ResourceNotFound` as ARM answers.
fn find_zone(world: &crate::state::World, k: ZoneKind, sub: &str, rg: &str, zone: &str) -> Result<usize, Box<Resp>> {
    resource_group_exists(world, sub, rg)?;
    world.zones.iter().position(|z| z.kind == k && z.subscription.eq_ignore_ascii_case(sub) && z.resource_group.eq_ignore_ascii_case(rg) && z.name.eq_ignore_ascii_case(zone.trim_end_matches('.'))).ok_or_else(|| {
        let ty = if k == ZoneKind::Public { "Microsoft.Network/dnszones" } else { "Microsoft.Network/privateDnsZones" };
        Box::new(azure_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The Resource '{ty}/{zone}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"),
        ))
    })
}

/// `$top` (default 100) and our `$skipToken` (an offset).
fn paging(req: &Req) -> Result<(usize, usize), Box<Resp>> {
    let top = match req.query("$top") {
        None => DEFAULT_PAGE,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(Box::new(azure_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("The value '{t}' of query parameter '$top' is invalid. It must be a positive integer."),
                )));
            }
        },
    };
    let skip = match req.query("$skipToken") {
        None => 0,
        Some(t) => match t.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return Err(Box::new(azure_error(StatusCode::BAD_REQUEST, "BadRequest", "The skip token is invalid.")));
            }
        },
    };
    Ok((top, skip))
}

fn next_link(req: &Req, skip: usize) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &req.query {
        if !k.eq_ignore_ascii_case("$skipToken") {
            q.append_pair(k, v);
        }
    }
    q.append_pair("$skipToken", &skip.to_string());
    format!("{}{}?{}", req.base_url(), req.path, q.finish())
}

enum Precondition {
    Ok,
    Failed(String),
}

fn check_preconditions(req: &Req, existing: Option<&RecordSet>, name: &str) -> Precondition {
    if let Some(if_match) = req.header("if-match") {
        let want = unquote_etag(if_match);
        match existing {
            None => {
                return Precondition::Failed(format!(
                    "The condition '{if_match}' in the If-Match header was not satisfied: the record set {name} does not exist."
                ));
            }
            Some(set) if want != "*" && want != set.etag => {
                return Precondition::Failed(format!(
                    "The condition '{if_match}' in the If-Match header was not satisfied. The current was '{}'.",
                    set.etag
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(if_none) = req.header("if-none-match") {
        let want = unquote_etag(if_none);
        if let Some(set) = existing
            && (want == "*" || want == set.etag)
        {
            return Precondition::Failed(format!(
                "The Record set {name} exists already and hence cannot be created again."
            ));
        }
    }
    Precondition::Ok
}

fn precondition_failed(message: &str) -> Resp {
    azure_error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed", message)
}

fn with_etag(mut r: Resp, etag: &str) -> Resp {
    set_header(&mut r, "etag", etag);
    r
}

fn record_set(
    req: &Req,
    zone: &mut Zone,
    t: RecordType,
    name: &str,
    rg: &str,
    sub: &str,
    limits: &crate::scenario::DnsLimits,
) -> Resp {
    let key = (name_key(name), t);
    let not_found = || {
        azure_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("The resource record '{name}' does not exist in resource group '{rg}' of subscription '{sub}'."),
        )
    };
    match req.method {
        Method::GET => match zone.record_sets.get(&key) {
            Some(set) => with_etag(json_resp(StatusCode::OK, &set.to_json(zone)), &set.etag),
            None => not_found(),
        },
        Method::DELETE => {
            if !t.writable() {
                return azure_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!(
                        "Record sets of type '{}' at the zone apex are managed by Azure DNS and cannot be deleted.",
                        t.as_str()
                    ),
                );
            }
            if let Precondition::Failed(m) = check_preconditions(req, zone.record_sets.get(&key), name) {
                return precondition_failed(&m);
            }
            match zone.record_sets.remove(&key) {
                Some(_) => empty(StatusCode::OK),
                None => empty(StatusCode::NO_CONTENT),
            }
        }
        Method::PUT | Method::PATCH => {
            let patch = req.method == Method::PATCH;
            if !t.writable() {
                return azure_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!(
                        "Record sets of type '{}' are managed by Azure DNS in the sandbox and cannot be written.",
                        t.as_str()
                    ),
                );
            }
            if let Err(e) = validate_name(name, &zone.name) {
                return dns_error(e);
            }
            let Some(body) = req.json_body() else {
                return azure_error(StatusCode::BAD_REQUEST, "InvalidRequestFormat", "Cannot parse the request.");
            };
            let existing = zone.record_sets.get(&key).cloned();
            if let Precondition::Failed(m) = check_preconditions(req, existing.as_ref(), name) {
                return precondition_failed(&m);
            }
            if patch && existing.is_none() {
                return not_found();
            }
            let mut set = match parse_record_set(&body, t, name, existing.as_ref(), patch, limits) {
                Ok(s) => s,
                Err(e) => return dns_error(e),
            };
            if let Some(old) = &existing {
                set.name = old.name.clone();
            }
            if t == RecordType::Cname && name_key(name) == "@" {
                return azure_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "A CNAME record set cannot be created at the zone apex.",
                );
            }
            let others = zone.other_types_at(name, t);
            if t == RecordType::Cname && !others.is_empty() {
                return azure_error(
                    StatusCode::CONFLICT,
                    "Conflict",
                    &format!(
                        "The CNAME record set {name} could not be created because another record set with the same name already exists in this zone."
                    ),
                );
            }
            if others.contains(&RecordType::Cname) {
                return azure_error(
                    StatusCode::CONFLICT,
                    "Conflict",
                    &format!(
                        "The record set {name} could not be created because a CNAME record set with the same name already exists in this zone."
                    ),
                );
            }
            let created = existing.is_none();
            if created && zone.record_sets.len() >= zone.max_record_sets(limits) {
                return azure_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!(
                        "The maximum number of record sets ({}) for the zone {} has been reached. Delete record sets or use another zone.",
                        zone.max_record_sets(limits),
                        zone.name
                    ),
                );
            }
            let etag = set.etag.clone();
            zone.insert(set);
            let Some(stored) = zone.record_sets.get(&key) else { return not_found() };
            let body = stored.to_json(zone);
            with_etag(json_resp(if created { StatusCode::CREATED } else { StatusCode::OK }, &body), &etag)
        }
        _ => azure_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "Method not allowed."),
    }
}

fn cloud_metadata(ctx: &Ctx, req: &Req) -> Value {
    let real = req.host.starts_with("management.");
    let login = if real {
        "https://login.microsoftonline.com/".to_string()
    } else {
        format!("{}/", ctx.endpoints.authority_host)
    };
    let arm = format!("{}/", req.base_url());
    json!({
        "portal": "https://portal.azure.com",
        "authentication": {
            "loginEndpoint": login,
            "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "media": "https://rest.media.azure.net",
        "graphAudience": "https://graph.windows.net/",
        "graph": "https://graph.windows.net/",
        "name": "AzureCloud",
        "suffixes": {
            "keyVaultDns": "vault.azure.net",
            "storage": "core.windows.net",
            "sqlServerHostname": "database.windows.net",
            "acrLoginServer": "azurecr.io",
            "mhsmDns": "managedhsm.azure.net",
        },
        "batch": "https://batch.core.windows.net/",
        "resourceManager": arm,
        "activeDirectoryDataLake": "https://datalake.azure.net/",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "gallery": "https://gallery.azure.com/",
        "microsoftGraphResourceId": "https://graph.microsoft.com/",
    })
}

/// The record sets of a zone, for the admin API (no auth, no limits).
pub fn zone_record_sets(zone: &Zone) -> Vec<Value> {
    zone.record_sets.values().map(|s| s.to_json(zone)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use axum::http::HeaderMap;

    fn route(method: Method, path: &str) -> ArmRoute {
        let uri: axum::http::Uri = path.parse().expect("uri");
        parse(&Req::new(method, &uri, HeaderMap::new(), Bytes::new()))
    }

    #[test]
    fn parses_public_and_private_paths_case_insensitively() {
        let r = route(
            Method::GET,
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnsZones/example.com/A?api-version=2018-05-01",
        );
        assert_eq!(
            r,
            ArmRoute::ListRecordSets(
                ZoneKind::Public,
                "s".into(),
                "rg".into(),
                "example.com".into(),
                Some(RecordType::A)
            )
        );
        assert_eq!(r.operation(&Method::GET), "RecordSets_ListByType");
        let r = route(
            Method::PUT,
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/privateDnsZones/z.internal/A/www",
        );
        assert_eq!(
            r,
            ArmRoute::RecordSet(
                ZoneKind::Private,
                "s".into(),
                "rg".into(),
                "z.internal".into(),
                RecordType::A,
                "www".into()
            )
        );
        assert_eq!(r.operation(&Method::PUT), "PrivateRecordSets_CreateOrUpdate");
        assert_eq!(
            route(Method::GET, "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/privateDnsZones/z/ALL"),
            ArmRoute::ListRecordSets(ZoneKind::Private, "s".into(), "rg".into(), "z".into(), None)
        );
        assert_eq!(
            route(Method::GET, "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones/z/MX/m"),
            ArmRoute::UnsupportedType("MX".into())
        );
        assert_eq!(route(Method::GET, "/metadata/endpoints?api-version=2022-09-01"), ArmRoute::CloudMetadata);
        assert_eq!(
            route(Method::GET, "//metadata/endpoints?api-version=2022-09-01"),
            ArmRoute::CloudMetadata,
            "the CLI's double slash"
        );
    }
}
