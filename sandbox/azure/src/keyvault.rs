//! Key Vault data plane: secrets and certificates, behind the bearer challenge and Azure RBAC.
//!
//! [`parse`] maps a path to a [`KvRoute`] (`/secrets/{n}` and `/secrets/{n}/` both mean latest).
//! [`handle`] runs Key Vault's pipeline: no token → 401 with the `WWW-Authenticate` challenge
//! (tenant in `authorization`, `resource` = the vault audience of the host's cloud); then token
//! checks, api-version (any 7.x or dated version), the per-vault throttling buckets, RBAC data
//! actions (403 `ForbiddenByRbac`), and the operation. Certificate versions share their version id
//! with a managed backing secret whose value is base64 PKCS#12 (empty password) or PEM, per the
//! policy's content type; a disabled version's secret answers 403 `SecretDisabled`.

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::certs::{CertInfo, GenSpec, parse_import, x5t};
use crate::entra::{AccessClaims, Audience, TokenError};
use crate::faults::{Limit, retry_after_seconds};
use crate::http::{Req, Resp, empty, json as json_resp, new_id, now_unix, set_header};
use crate::rbac::{ActionKind, allowed};
use crate::scenario;
use crate::server::Ctx;
use crate::state::{CertPolicy, CertVersion, Certificate, SecretVersion, Vault};

/// What a Key Vault request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvRoute {
    /// `GET /secrets`.
    ListSecrets,
    /// `GET /secrets/{n}[/{v}]`.
    GetSecret(String, Option<String>),
    /// `GET /secrets/{n}/versions`.
    ListSecretVersions(String),
    /// `PUT /secrets/{n}`.
    SetSecret(String),
    /// `PATCH /secrets/{n}/{v}`.
    UpdateSecret(String, String),
    /// `GET /certificates`.
    ListCertificates,
    /// `GET /certificates/{n}[/{v}]`.
    GetCertificate(String, Option<String>),
    /// `GET /certificates/{n}/versions`.
    ListCertificateVersions(String),
    /// `GET /certificates/{n}/policy`.
    GetPolicy(String),
    /// `GET /certificates/{n}/pending`.
    GetOperation(String),
    /// `POST /certificates/{n}/create`.
    CreateCertificate(String),
    /// `POST /certificates/{n}/import`.
    ImportCertificate(String),
    /// `PATCH /certificates/{n}/{v}`.
    UpdateCertificate(String, String),
    /// Anything else.
    Unknown,
}

/// Parses method and path into a route.
pub fn parse(req: &Req) -> KvRoute {
    let mut s: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    if s.last() == Some(&"") {
        s.pop();
    }
    let m = &req.method;
    match (m.as_str(), s.as_slice()) {
        ("GET", ["secrets"]) => KvRoute::ListSecrets,
        ("GET", ["secrets", n]) => KvRoute::GetSecret((*n).into(), None),
        ("GET", ["secrets", n, "versions"]) => KvRoute::ListSecretVersions((*n).into()),
        ("GET", ["secrets", n, v]) => KvRoute::GetSecret((*n).into(), Some((*v).into())),
        ("PUT", ["secrets", n]) => KvRoute::SetSecret((*n).into()),
        ("PATCH", ["secrets", n, v]) => KvRoute::UpdateSecret((*n).into(), (*v).into()),
        ("GET", ["certificates"]) => KvRoute::ListCertificates,
        ("GET", ["certificates", n]) => KvRoute::GetCertificate((*n).into(), None),
        ("GET", ["certificates", n, "versions"]) => KvRoute::ListCertificateVersions((*n).into()),
        ("GET", ["certificates", n, "policy"]) => KvRoute::GetPolicy((*n).into()),
        ("GET", ["certificates", n, "pending"]) => KvRoute::GetOperation((*n).into()),
        ("GET", ["certificates", n, v]) => KvRoute::GetCertificate((*n).into(), Some((*v).into())),
        ("POST", ["certificates", n, "create"]) => KvRoute::CreateCertificate((*n).into()),
        ("POST", ["certificates", n, "import"]) => KvRoute::ImportCertificate((*n).into()),
        ("PATCH", ["certificates", n, v]) => KvRoute::UpdateCertificate((*n).into(), (*v).into()),
        _ => KvRoute::Unknown,
    }
}

impl KvRoute {
    /// Operation name (Key Vault's REST operation names).
    pub fn operation(&self) -> &'static str {
        match self {
            Self::ListSecrets => "GetSecrets",
            Self::GetSecret(..) => "GetSecret",
            Self::ListSecretVersions(_) => "GetSecretVersions",
            Self::SetSecret(_) => "SetSecret",
            Self::UpdateSecret(..) => "UpdateSecret",
            Self::ListCertificates => "GetCertificates",
            Self::GetCertificate(..) => "GetCertificate",
            Self::ListCertificateVersions(_) => "GetCertificateVersions",
            Self::GetPolicy(_) => "GetCertificatePolicy",
            Self::GetOperation(_) => "GetCertificateOperation",
            Self::CreateCertificate(_) => "CreateCertificate",
            Self::ImportCertificate(_) => "ImportCertificate",
            Self::UpdateCertificate(..) => "UpdateCertificate",
            Self::Unknown => "Unknown",
        }
    }

    /// The RBAC data action and the object kind (`secrets` / `certificates`) it is checked on.
    fn action(&self) -> (&'static str, &'static str, Option<&str>) {
        match self {
            Self::ListSecrets => ("Microsoft.KeyVault/vaults/secrets/readMetadata/action", "secrets", None),
            Self::GetSecret(n, _) => ("Microsoft.KeyVault/vaults/secrets/getSecret/action", "secrets", Some(n)),
            Self::ListSecretVersions(n) => {
                ("Microsoft.KeyVault/vaults/secrets/readMetadata/action", "secrets", Some(n))
            }
            Self::SetSecret(n) => ("Microsoft.KeyVault/vaults/secrets/setSecret/action", "secrets", Some(n)),
            Self::UpdateSecret(n, _) => ("Microsoft.KeyVault/vaults/secrets/update/action", "secrets", Some(n)),
            Self::ListCertificates => ("Microsoft.KeyVault/vaults/certificates/read", "certificates", None),
            Self::GetCertificate(n, _)
            | Self::ListCertificateVersions(n)
            | Self::GetPolicy(n)
            | Self::GetOperation(n) => ("Microsoft.KeyVault/vaults/certificates/read", "certificates", Some(n)),
            Self::CreateCertificate(n) => {
                ("Microsoft.KeyVault/vaults/certificates/create/action", "certificates", Some(n))
            }
            Self::ImportCertificate(n) => {
                ("Microsoft.KeyVault/vaults/certificates/import/action", "certificates", Some(n))
            }
            Self::UpdateCertificate(n, _) => {
                ("Microsoft.KeyVault/vaults/certificates/update/action", "certificates", Some(n))
            }
            Self::Unknown => ("", "", None),
        }
    }
}

/// A Key Vault error body (`x-ms-error-code` set too).
pub fn kv_error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Resp {
    let mut body = json!({"error": {"code": code, "message": message}});
    if let Some(inner) = inner {
        body["error"]["innererror"] = json!({"code": inner});
    }
    let mut r = json_resp(status, &body);
    set_header(&mut r, "x-ms-error-code", code);
    r
}

/// `(authority host, resource)` of the cloud a vault host belongs to.
fn cloud_of(host: &str) -> (&'static str, &'static str) {
    if host.ends_with(".vault.azure.cn") {
        ("https://login.chinacloudapi.cn", "https://vault.azure.cn")
    } else if host.ends_with(".vault.usgovcloudapi.net") {
        ("https://login.microsoftonline.us", "https://vault.usgovcloudapi.net")
    } else {
        ("https://login.microsoftonline.com", "https://vault.azure.net")
    }
}

fn challenge(req: &Req, tenant: &str, error: Option<(&str, &str)>) -> Resp {
    let (authority, resource) = cloud_of(&req.host);
    let mut r = match error {
        None => empty(StatusCode::UNAUTHORIZED),
        Some((code, message)) => kv_error(StatusCode::UNAUTHORIZED, code, message, None),
    };
    set_header(
        &mut r,
        "www-authenticate",
        &format!("Bearer authorization=\"{authority}/{tenant}\", resource=\"{resource}\""),
    );
    r
}

fn api_version_ok(v: &str) -> bool {
    if let Some(rest) = v.strip_prefix("7.") {
        return rest
            .split('-')
            .next()
            .is_some_and(|minor| !minor.is_empty() && minor.chars().all(|c| c.is_ascii_digit()));
    }
    // Dated versions (2025-07-01, 2026-04-01…) follow 7.6.
    let date = v.split("-preview").next().unwrap_or(v);
    jiff::civil::Date::strptime("%Y-%m-%d", date).is_ok_and(|d| d.year() >= 2025)
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 127 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Serves one request to vault `vault_name`.
pub fn handle(ctx: &Ctx, req: &Req, vault_name: &str, route: &KvRoute) -> Resp {
    let mut r = handle_inner(ctx, req, vault_name, route);
    let headers = [
        ("x-ms-keyvault-region", "eastus".to_string()),
        ("x-ms-keyvault-service-version", "1.9.2200.1".to_string()),
        ("x-ms-keyvault-network-info", "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;".to_string()),
    ];
    for (k, v) in headers {
        set_header(&mut r, k, &v);
    }
    if let Some(id) = req.header("x-ms-client-request-id") {
        set_header(&mut r, "x-ms-client-request-id", id);
    }
    r
}

fn handle_inner(ctx: &Ctx, req: &Req, vault_name: &str, route: &KvRoute) -> Resp {
    let tenant = {
        let world = ctx.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match world.vault(vault_name) {
            Some(v) => v.tenant.clone(),
            None => {
                return kv_error(
                    StatusCode::NOT_FOUND,
                    "VaultNotFound",
                    &format!("The vault '{vault_name}' does not exist in the sandbox."),
                    None,
                );
            }
        }
    };
    let claims: AccessClaims = match req.bearer() {
        None => return challenge(req, &tenant, None),
        Some(token) => match ctx.entra.verify(token, Audience::KeyVault) {
            Ok(c) => c,
            Err(TokenError::Invalid) => {
                return challenge(
                    req,
                    &tenant,
                    Some(("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")),
                );
            }
            Err(TokenError::Expired) => {
                return challenge(req, &tenant, Some(("Unauthorized", "AKV10021: Token is expired.")));
            }
            Err(TokenError::WrongAudience(aud)) => {
                return challenge(
                    req,
                    &tenant,
                    Some((
                        "Unauthorized",
                        &format!("AKV10022: Invalid audience. Expected {}, found: {aud}.", cloud_of(&req.host).1),
                    )),
                );
            }
        },
    };
    if !claims.tid.eq_ignore_ascii_case(&tenant) {
        return challenge(
            req,
            &tenant,
            Some((
                "Unauthorized",
                &format!(
                    "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{tenant}/, found {}.",
                    claims.iss
                ),
            )),
        );
    }
    match req.query("api-version") {
        None => {
            return kv_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                "The request URI contains an invalid or missing api-version.",
                None,
            );
        }
        Some(v) if !api_version_ok(v) => {
            return kv_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                &format!(
                    "The specified version ({v}) is not recognized. Consider using the latest supported version (7.6)."
                ),
                None,
            );
        }
        Some(_) => {}
    }
    let vault_key = vault_name.to_ascii_lowercase();
    if let Err(wait) = ctx.faults.check_limit(Limit::KeyVaultAll, &vault_key) {
        return throttled(wait);
    }
    if matches!(route, KvRoute::SetSecret(_) | KvRoute::CreateCertificate(_) | KvRoute::ImportCertificate(_))
        && let Err(wait) = ctx.faults.check_limit(Limit::KeyVaultWrite, &vault_key)
    {
        return throttled(wait);
    }
    let mut world = ctx.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let role_assignments = world.role_assignments.clone();
    let Some(vault) = world.vault_mut(vault_name) else {
        return kv_error(StatusCode::NOT_FOUND, "VaultNotFound", "The vault does not exist.", None);
    };
    if *route == KvRoute::Unknown {
        return kv_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("The operation {} {} is not served by the sandbox Key Vault.", req.method, req.path),
            None,
        );
    }
    let (action, kind, object) = route.action();
    if let Some(n) = object
        && !valid_name(n)
    {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!("The request URI contains an invalid name: {n}"),
            None,
        );
    }
    let resource = match object {
        Some(n) => format!("{}/{kind}/{n}", vault.resource_id()),
        None => vault.resource_id(),
    };
    if !allowed(&role_assignments, &claims.oid, &resource, action, ActionKind::Data) {
        return kv_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid={};oid={};iss={}\r\nAction: '{action}'\r\nResource: '{}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: {};location=eastus\r\n",
                claims.appid,
                claims.oid,
                claims.iss,
                resource.to_ascii_lowercase(),
                vault.name
            ),
            Some("ForbiddenByRbac"),
        );
    }
    let base = req.base_url();
    let ca = &ctx.ca;
    match route {
        KvRoute::ListSecrets => {
            let items: Vec<Value> = vault
                .secrets
                .values()
                .filter_map(|s| s.versions.last().map(|v| secret_item(&base, &s.name, v, false)))
                .collect();
            paged(req, items)
        }
        KvRoute::GetSecret(n, v) => {
            let Some(secret) = vault.secrets.get(&n.to_ascii_lowercase()) else {
                return secret_not_found(n, v.as_deref());
            };
            let version = match v {
                None => secret.versions.last(),
                Some(v) => secret.versions.iter().find(|x| x.version.eq_ignore_ascii_case(v)),
            };
            let Some(version) = version else { return secret_not_found(n, v.as_deref()) };
            if !version.enabled {
                return kv_error(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "Operation get is not allowed on a disabled secret.",
                    Some("SecretDisabled"),
                );
            }
            json_resp(StatusCode::OK, &secret_bundle(&base, &secret.name, version))
        }
        KvRoute::ListSecretVersions(n) => {
            let Some(secret) = vault.secrets.get(&n.to_ascii_lowercase()) else { return secret_not_found(n, None) };
            let items = secret.versions.iter().map(|v| secret_item(&base, &secret.name, v, true)).collect();
            paged(req, items)
        }
        KvRoute::SetSecret(n) => set_secret(req, vault, n, &base),
        KvRoute::UpdateSecret(n, v) => {
            let body = req.json_body().unwrap_or(Value::Null);
            let Some(secret) = vault.secrets.get_mut(&n.to_ascii_lowercase()) else {
                return secret_not_found(n, Some(v));
            };
            let name = secret.name.clone();
            let Some(version) = secret.versions.iter_mut().find(|x| x.version.eq_ignore_ascii_case(v)) else {
                return secret_not_found(n, Some(v));
            };
            if let Some(enabled) = body.pointer("/attributes/enabled").and_then(Value::as_bool) {
                version.enabled = enabled;
            }
            if let Some(ct) = body.get("contentType").and_then(Value::as_str) {
                version.content_type = Some(ct.to_string());
            }
            if let Some(tags) = body.get("tags").and_then(Value::as_object) {
                version.tags = tags.clone();
            }
            version.updated = now_unix();
            let item = secret_item(&base, &name, version, true);
            json_resp(StatusCode::OK, &item)
        }
        KvRoute::ListCertificates => {
            let items: Vec<Value> = vault
                .certificates
                .values()
                .filter_map(|c| c.versions.last().map(|v| cert_item(&base, &c.name, v, false)))
                .collect();
            paged(req, items)
        }
        KvRoute::GetCertificate(n, v) => {
            let Some(cert) = vault.certificates.get(&n.to_ascii_lowercase()) else {
                return cert_not_found(n, v.as_deref());
            };
            let version = match v {
                None => cert.versions.last(),
                Some(v) => cert.versions.iter().find(|x| x.version.eq_ignore_ascii_case(v)),
            };
            let Some(version) = version else { return cert_not_found(n, v.as_deref()) };
            json_resp(StatusCode::OK, &cert_bundle(&base, cert, version))
        }
        KvRoute::ListCertificateVersions(n) => {
            let Some(cert) = vault.certificates.get(&n.to_ascii_lowercase()) else { return cert_not_found(n, None) };
            let items = cert.versions.iter().map(|v| cert_item(&base, &cert.name, v, true)).collect();
            paged(req, items)
        }
        KvRoute::GetPolicy(n) => {
            let Some(cert) = vault.certificates.get(&n.to_ascii_lowercase()) else { return cert_not_found(n, None) };
            json_resp(
                StatusCode::OK,
                &cert.policy.to_json(
                    &format!("{base}/certificates/{}", cert.name),
                    cert.policy_times.0,
                    cert.policy_times.1,
                ),
            )
        }
        KvRoute::GetOperation(n) => {
            let Some(cert) = vault.certificates.get(&n.to_ascii_lowercase()) else {
                return kv_error(
                    StatusCode::NOT_FOUND,
                    "PendingCertificateNotFound",
                    &format!("Pending certificate not found: {n}"),
                    None,
                );
            };
            json_resp(StatusCode::OK, &operation(&base, cert, false))
        }
        KvRoute::CreateCertificate(n) => {
            let body = req.json_body().unwrap_or(Value::Null);
            let policy = match body.get("policy") {
                Some(p) if !p.is_null() => match CertPolicy::from_json(p) {
                    Ok(p) => p,
                    Err(m) => return kv_error(StatusCode::BAD_REQUEST, "BadParameter", &m, None),
                },
                _ => match vault.certificates.get(&n.to_ascii_lowercase()) {
                    Some(c) => c.policy.clone(),
                    None => {
                        return kv_error(
                            StatusCode::BAD_REQUEST,
                            "BadParameter",
                            "Property policy is required for a new certificate.",
                            None,
                        );
                    }
                },
            };
            if let Err(r) = not_a_plain_secret(vault, n) {
                return *r;
            }
            let tags = body.get("tags").and_then(Value::as_object).cloned().unwrap_or_default();
            if let Err(m) = vault.create_certificate(n, policy, ca, tags) {
                return kv_error(StatusCode::BAD_REQUEST, "BadParameter", &m, None);
            }
            let Some(cert) = vault.certificates.get(&n.to_ascii_lowercase()) else { return cert_not_found(n, None) };
            let mut r = json_resp(StatusCode::ACCEPTED, &operation(&base, cert, true));
            set_header(
                &mut r,
                "location",
                &format!(
                    "{base}/certificates/{}/pending?api-version={}",
                    cert.name,
                    req.query("api-version").unwrap_or("7.4")
                ),
            );
            r
        }
        KvRoute::ImportCertificate(n) => import_certificate(req, vault, n, &base),
        KvRoute::UpdateCertificate(n, v) => {
            let body = req.json_body().unwrap_or(Value::Null);
            let enabled = body.pointer("/attributes/enabled").and_then(Value::as_bool);
            if let Some(enabled) = enabled
                && !vault.set_version_enabled(n, v, enabled)
            {
                return cert_not_found(n, Some(v));
            }
            let Some(cert) = vault.certificates.get_mut(&n.to_ascii_lowercase()) else {
                return cert_not_found(n, Some(v));
            };
            let Some(version) = cert.versions.iter_mut().find(|x| x.version.eq_ignore_ascii_case(v)) else {
                return cert_not_found(n, Some(v));
            };
            if let Some(tags) = body.get("tags").and_then(Value::as_object) {
                version.tags = tags.clone();
            }
            let version = version.clone();
            json_resp(StatusCode::OK, &cert_bundle(&base, cert, &version))
        }
        KvRoute::Unknown => kv_error(StatusCode::NOT_FOUND, "NotFound", "Not found.", None),
    }
}

fn throttled(wait: std::time::Duration) -> Resp {
    let mut r = kv_error(
        StatusCode::TOO_MANY_REQUESTS,
        "Throttled",
        "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
        None,
    );
    set_header(&mut r, "retry-after", &retry_after_seconds(wait).to_string());
    r
}

fn secret_not_found(n: &str, v: Option<&str>) -> Resp {
    let id = v.map(|v| format!("{n}/{v}")).unwrap_or_else(|| n.to_string());
    kv_error(
        StatusCode::NOT_FOUND,
        "SecretNotFound",
        &format!(
            "A secret with (name/id) {id} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
        None,
    )
}

fn cert_not_found(n: &str, v: Option<&str>) -> Resp {
    let id = v.map(|v| format!("{n}/{v}")).unwrap_or_else(|| n.to_string());
    kv_error(
        StatusCode::NOT_FOUND,
        "CertificateNotFound",
        &format!(
            "A certificate with (name/id) {id} was not found in this key vault. If you recently deleted this certificate you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
        None,
    )
}

fn attributes(enabled: bool, created: i64, updated: i64, nbf: Option<i64>, exp: Option<i64>) -> Value {
    let mut a = json!({"enabled": enabled, "created": created, "updated": updated, "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90});
    if let Some(nbf) = nbf {
        a["nbf"] = json!(nbf);
    }
    if let Some(exp) = exp {
        a["exp"] = json!(exp);
    }
    a
}

fn secret_bundle(base: &str, name: &str, v: &SecretVersion) -> Value {
    let mut b = json!({
        "value": v.value,
        "id": format!("{base}/secrets/{name}/{}", v.version),
        "attributes": attributes(v.enabled, v.created, v.updated, v.nbf, v.exp),
        "tags": v.tags,
    });
    if let Some(ct) = &v.content_type {
        b["contentType"] = json!(ct);
    }
    if v.managed {
        b["managed"] = json!(true);
        b["kid"] = json!(format!("{base}/keys/{name}/{}", v.version));
    }
    b
}

fn secret_item(base: &str, name: &str, v: &SecretVersion, versioned: bool) -> Value {
    let id = if versioned { format!("{base}/secrets/{name}/{}", v.version) } else { format!("{base}/secrets/{name}") };
    let mut b =
        json!({"id": id, "attributes": attributes(v.enabled, v.created, v.updated, v.nbf, v.exp), "tags": v.tags});
    if let Some(ct) = &v.content_type {
        b["contentType"] = json!(ct);
    }
    if v.managed {
        b["managed"] = json!(true);
    }
    b
}

fn cert_bundle(base: &str, cert: &Certificate, v: &CertVersion) -> Value {
    let cert_id = format!("{base}/certificates/{}", cert.name);
    json!({
        "id": format!("{cert_id}/{}", v.version),
        "kid": format!("{base}/keys/{}/{}", cert.name, v.version),
        "sid": format!("{base}/secrets/{}/{}", cert.name, v.version),
        "x5t": x5t(v.material.leaf()),
        "cer": STANDARD.encode(v.material.leaf()),
        "contentType": cert.policy.content_type,
        "attributes": attributes(v.enabled, v.created, v.updated, Some(v.nbf), Some(v.exp)),
        "tags": v.tags,
        "policy": cert.policy.to_json(&cert_id, cert.policy_times.0, cert.policy_times.1),
        "preserveCertOrder": false,
    })
}

fn cert_item(base: &str, name: &str, v: &CertVersion, versioned: bool) -> Value {
    let id = if versioned {
        format!("{base}/certificates/{name}/{}", v.version)
    } else {
        format!("{base}/certificates/{name}")
    };
    json!({"id": id, "x5t": x5t(v.material.leaf()), "attributes": attributes(v.enabled, v.created, v.updated, Some(v.nbf), Some(v.exp)), "tags": v.tags})
}

/// A certificate operation. The create answer says `inProgress` (SDK pollers only poll, and
/// then fetch the certificate, when the first answer is in progress); `pending` says `completed`.
fn operation(base: &str, cert: &Certificate, in_progress: bool) -> Value {
    let (status, details) = if in_progress {
        (
            "inProgress",
            "Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later.",
        )
    } else {
        ("completed", "")
    };
    json!({
        "id": format!("{base}/certificates/{}/pending", cert.name),
        "issuer": {"name": cert.policy.issuer},
        "csr": "",
        "cancellation_requested": false,
        "status": status,
        "status_details": details,
        "target": format!("{base}/certificates/{}", cert.name),
        "request_id": new_id(),
    })
}

/// Pages `items` by `maxresults` (1–25, default 25) and our `$skiptoken` (an offset).
fn paged(req: &Req, items: Vec<Value>) -> Resp {
    let max = match req.query("maxresults") {
        None => 25,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if (1..=25).contains(&n) => n,
            _ => {
                return kv_error(
                    StatusCode::BAD_REQUEST,
                    "BadParameter",
                    "Invalid maxresults: the value must be between 1 and 25.",
                    None,
                );
            }
        },
    };
    let skip = match req.query("$skiptoken") {
        None => 0,
        Some(t) => match t.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return kv_error(StatusCode::BAD_REQUEST, "BadParameter", "Invalid $skiptoken.", None),
        },
    };
    let page: Vec<Value> = items.iter().skip(skip).take(max).cloned().collect();
    let next = (skip + max < items.len()).then(|| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("api-version", req.query("api-version").unwrap_or("7.4"));
        q.append_pair("$skiptoken", &(skip + max).to_string());
        if req.query("maxresults").is_some() {
            q.append_pair("maxresults", &max.to_string());
        }
        let path = req.path.trim_end_matches('/');
        format!("{}{path}?{}", req.base_url(), q.finish())
    });
    json_resp(StatusCode::OK, &json!({"value": page, "nextLink": next}))
}

fn not_a_plain_secret(vault: &Vault, n: &str) -> Result<(), Box<Resp>> {
    let key = n.to_ascii_lowercase();
    if vault.secrets.get(&key).is_some_and(|s| s.versions.iter().any(|v| !v.managed))
        && !vault.certificates.contains_key(&key)
    {
        return Err(Box::new(kv_error(
            StatusCode::CONFLICT,
            "Conflict",
            &format!(
                "There is already a secret named '{n}' that does not back a certificate; certificate and secret names share one namespace."
            ),
            None,
        )));
    }
    Ok(())
}

fn set_secret(req: &Req, vault: &mut Vault, n: &str, base: &str) -> Resp {
    let Some(body) = req.json_body() else {
        return kv_error(StatusCode::BAD_REQUEST, "BadParameter", "The request body is not valid JSON.", None);
    };
    let Some(value) = body.get("value").and_then(Value::as_str) else {
        return kv_error(StatusCode::BAD_REQUEST, "BadParameter", "Property value is required.", None);
    };
    let attrs = body.get("attributes").cloned().unwrap_or(Value::Null);
    let mut version = SecretVersion::new(value, body.get("contentType").and_then(Value::as_str).map(str::to_string));
    version.tags = body.get("tags").and_then(Value::as_object).cloned().unwrap_or_default();
    version.enabled = attrs.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    version.nbf = attrs.get("nbf").and_then(Value::as_i64);
    version.exp = attrs.get("exp").and_then(Value::as_i64);
    let name = vault.secrets.get(&n.to_ascii_lowercase()).map(|s| s.name.clone()).unwrap_or_else(|| n.to_string());
    match vault.add_secret_version(n, version) {
        Ok(v) => json_resp(StatusCode::OK, &secret_bundle(base, &name, v)),
        Err(m) => kv_error(StatusCode::CONFLICT, "Conflict", &m, None),
    }
}

fn import_certificate(req: &Req, vault: &mut Vault, n: &str, base: &str) -> Resp {
    let Some(body) = req.json_body() else {
        return kv_error(StatusCode::BAD_REQUEST, "BadParameter", "The request body is not valid JSON.", None);
    };
    let Some(value) = body.get("value").and_then(Value::as_str) else {
        return kv_error(StatusCode::BAD_REQUEST, "BadParameter", "Property value is required.", None);
    };
    if let Err(r) = not_a_plain_secret(vault, n) {
        return *r;
    }
    let imported = match parse_import(value, body.get("pwd").and_then(Value::as_str)) {
        Ok(i) => i,
        Err(e) => return kv_error(StatusCode::BAD_REQUEST, "BadParameter", &e.to_string(), None),
    };
    let info = match CertInfo::read(imported.material.leaf()) {
        Ok(i) => i,
        Err(e) => return kv_error(StatusCode::BAD_REQUEST, "BadParameter", &e.to_string(), None),
    };
    let policy_in = body.get("policy").cloned().unwrap_or(Value::Null);
    let content_type = policy_in
        .pointer("/secret_props/contentType")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| if imported.was_pem { scenario::PEM.to_string() } else { scenario::PKCS12.to_string() });
    if content_type != scenario::PEM && content_type != scenario::PKCS12 {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!("The content type '{content_type}' is not supported."),
            None,
        );
    }
    let months = u32::try_from(((info.not_after - info.not_before) / (30 * 86_400)).max(1)).unwrap_or(12);
    let policy = CertPolicy {
        spec: GenSpec {
            subject: info.subject.clone(),
            dns_names: info.dns_names.clone(),
            key_type: info.key_type,
            key_size: if info.key_size == 0 { 256 } else { info.key_size },
            validity_months: months,
        },
        content_type,
        exportable: policy_in.pointer("/key_props/exportable").and_then(Value::as_bool).unwrap_or(true),
        issuer: "Unknown".into(),
    };
    let tags: Map<String, Value> = body.get("tags").and_then(Value::as_object).cloned().unwrap_or_default();
    if let Err(m) = vault.add_certificate_version(n, policy, imported.material, tags) {
        return kv_error(StatusCode::BAD_REQUEST, "BadParameter", &m, None);
    }
    let Some(cert) = vault.certificates.get(&n.to_ascii_lowercase()) else { return cert_not_found(n, None) };
    let Some(version) = cert.versions.last() else { return cert_not_found(n, None) };
    json_resp(StatusCode::OK, &cert_bundle(base, cert, version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method};

    fn route(method: Method, path: &str) -> KvRoute {
        let uri: axum::http::Uri = path.parse().expect("uri");
        parse(&Req::new(method, &uri, HeaderMap::new(), Bytes::new()))
    }

    #[test]
    fn latest_is_addressed_with_and_without_a_trailing_slash() {
        assert_eq!(route(Method::GET, "/secrets/s/?api-version=7.4"), KvRoute::GetSecret("s".into(), None));
        assert_eq!(route(Method::GET, "/secrets/s?api-version=7.4"), KvRoute::GetSecret("s".into(), None));
        assert_eq!(route(Method::GET, "/secrets/s/versions"), KvRoute::ListSecretVersions("s".into()));
        assert_eq!(route(Method::GET, "/certificates/c/"), KvRoute::GetCertificate("c".into(), None));
        assert_eq!(route(Method::POST, "/certificates/c/import"), KvRoute::ImportCertificate("c".into()));
        assert_eq!(route(Method::DELETE, "/secrets/s"), KvRoute::Unknown);
    }

    #[test]
    fn accepts_any_7x_or_dated_api_version() {
        for ok in ["7.0", "7.4", "7.6-preview.2", "2025-07-01", "2026-04-01"] {
            assert!(api_version_ok(ok), "{ok}");
        }
        for bad in ["6.0", "2016-10-01", "x", "7."] {
            assert!(!api_version_ok(bad), "{bad}");
        }
    }

    #[test]
    fn names_follow_key_vault_rules() {
        assert!(valid_name("approuting-demo-cert"));
        assert!(!valid_name("bad_name"));
        assert!(!valid_name(""));
    }
}
