//! Local Entra ID: the token endpoint for workload identity federation, OpenID metadata, and the
//! access tokens ARM and Key Vault accept.
//!
//! A client posts `client_credentials` with a jwt-bearer `client_assertion` (a Kubernetes
//! ServiceAccount token). [`Entra::token`] finds the managed identity by `client_id`, reads the
//! assertion's issuer, fetches that issuer's JWKS (`<issuer>/openid/v1/jwks`, over HTTPS trusting
//! the sandbox CA, cached per issuer and refetched on an unknown `kid`; or a static JWKS injected
//! by tests), checks the RS256 signature, `exp`/`nbf` (5 minutes' skew, as Entra allows) and
//! `iss`/`sub`/`aud` against the identity's federated credentials, and answers with an access
//! token signed by the sandbox's own RSA key (`tid`, `oid`, `appid`, `aud` from the scope).
//! Every refusal is an Entra-shaped body with its AADSTS code. [`Entra::verify`] is the other
//! half: ARM and Key Vault check signature, audience and expiry of bearer tokens with it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use axum::http::{Method, StatusCode};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::{Req, Resp, json as json_resp, now_unix};
use crate::state::{Identity, World};

/// Clock skew Entra tolerates on assertion `exp`/`nbf`.
const SKEW_SECONDS: i64 = 300;
/// The jwt-bearer assertion type.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Where assertion-signing keys come from.
#[derive(Debug, Clone, Default)]
pub struct JwksSource {
    /// Fixed JWKS documents by issuer URL (tests inject these).
    pub fixed: BTreeMap<String, Value>,
    /// When set, other issuers' JWKS are fetched from `<issuer>/openid/v1/jwks` over HTTPS
    /// trusting this CA (PEM).
    pub fetch_ca_pem: Option<String>,
}

impl JwksSource {
    /// One fixed issuer and its JWKS.
    pub fn fixed(issuer: &str, jwks: Value) -> Self {
        Self { fixed: BTreeMap::from([(issuer.trim_end_matches('/').to_string(), jwks)]), fetch_ca_pem: None }
    }

    /// Fetch every issuer's JWKS over HTTPS, trusting `ca_pem`.
    pub fn fetch(ca_pem: &str) -> Self {
        Self { fixed: BTreeMap::new(), fetch_ca_pem: Some(ca_pem.to_string()) }
    }
}

/// The audience family a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Azure Resource Manager.
    Arm,
    /// Key Vault data plane.
    KeyVault,
}

const ARM_AUDIENCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://management.chinacloudapi.cn",
    "https://management.core.chinacloudapi.cn",
    "https://management.usgovcloudapi.net",
    "https://management.core.usgovcloudapi.net",
];
const VAULT_AUDIENCES: &[&str] =
    &["https://vault.azure.net", "https://vault.azure.cn", "https://vault.usgovcloudapi.net"];

/// Which service an audience (or resource) names.
pub fn audience_kind(aud: &str) -> Option<Audience> {
    let a = aud.trim_end_matches('/').to_ascii_lowercase();
    if ARM_AUDIENCES.contains(&a.as_str()) {
        Some(Audience::Arm)
    } else if VAULT_AUDIENCES.contains(&a.as_str()) {
        Some(Audience::KeyVault)
    } else {
        None
    }
}

/// The claims of an access token the sandbox issues.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    /// Audience (the resource).
    pub aud: String,
    /// `https://sts.windows.net/{tid}/`.
    pub iss: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Client id.
    pub appid: String,
    /// `app`.
    pub idtyp: String,
    /// Principal (object) id.
    pub oid: String,
    /// Subject (= oid for apps).
    pub sub: String,
    /// Tenant id.
    pub tid: String,
    /// Token version.
    pub ver: String,
    /// The managed identity's resource id.
    pub xms_mirid: String,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT, or not ours.
    Invalid,
    /// Past `exp`.
    Expired,
    /// For another service.
    WrongAudience(String),
}

/// An Entra failure: status, OAuth `error`, AADSTS number and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraError {
    /// HTTP status.
    pub status: StatusCode,
    /// OAuth error (`invalid_request`, `invalid_client`, …).
    pub error: &'static str,
    /// The AADSTS number.
    pub code: u32,
    /// The description after `AADSTSnnnn: `.
    pub description: String,
}

fn fail(error: &'static str, code: u32, description: impl Into<String>) -> EntraError {
    let status = if error == "invalid_client" { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
    EntraError { status, error, code, description: description.into() }
}

impl EntraError {
    /// The body Entra sends.
    pub fn to_response(&self) -> Resp {
        let trace = uuid::Uuid::new_v4().to_string();
        let correlation = uuid::Uuid::new_v4().to_string();
        let timestamp = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%SZ").to_string();
        json_resp(
            self.status,
            &json!({
                "error": self.error,
                "error_description": format!("AADSTS{}: {} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}", self.code, self.description),
                "error_codes": [self.code],
                "timestamp": timestamp,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
            }),
        )
    }
}

/// The token service.
pub struct Entra {
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
    jwks: JwksSource,
    cache: Mutex<HashMap<String, JwkSet>>,
    http: Option<reqwest::Client>,
    token_lifetime: i64,
    /// Seconds added to the real clock for every token decision (see [`Entra::advance_clock`]).
    clock_offset: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for Entra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entra")
            .field("kid", &self.jwk.common.key_id)
            .field("token_lifetime", &self.token_lifetime)
            .finish_non_exhaustive()
    }
}

/// Errors setting up Entra.
#[derive(Debug, thiserror::Error)]
pub enum EntraSetupError {
    /// Key generation failed.
    #[error("failed to generate the token signing key")]
    Key(#[from] rcgen::Error),
    /// jsonwebtoken rejected the key.
    #[error("failed to load the token signing key")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    /// The JWKS HTTP client could not be built.
    #[error("failed to build the JWKS client")]
    Http(#[from] reqwest::Error),
}

impl Entra {
    /// A token service with a fresh RSA-2048 signing key.
    pub fn new(jwks: JwksSource, token_lifetime: i64) -> Result<Self, EntraSetupError> {
        let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?;
        let encoding = EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes())?;
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)?;
        jwk.common.key_id = Some(uuid::Uuid::new_v4().simple().to_string());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk)?;
        let http = match &jwks.fetch_ca_pem {
            Some(pem) => Some(
                reqwest::Client::builder()
                    .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes())?])
                    .timeout(std::time::Duration::from_secs(10))
                    .build()?,
            ),
            None => None,
        };
        Ok(Self {
            encoding,
            decoding,
            jwk,
            jwks,
            cache: Mutex::new(HashMap::new()),
            http,
            token_lifetime,
            clock_offset: 0.into(),
        })
    }

    /// Lifetime of the access tokens it issues, seconds.
    pub fn token_lifetime(&self) -> i64 {
        self.token_lifetime
    }

    /// Entra's notion of now, Unix seconds: the real clock plus the offset tests set.
    pub fn now(&self) -> i64 {
        now_unix() + self.clock_offset.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Moves Entra's clock (token issuance and every expiry check: assertions here, access
    /// tokens in ARM and Key Vault) forward by `seconds`, so tests see tokens expire without
    /// waiting. Certificates keep their real validity.
    pub fn advance_clock(&self, seconds: i64) {
        self.clock_offset.fetch_add(seconds, std::sync::atomic::Ordering::Relaxed);
    }

    /// The operation name of a request, for the call counter and fault rules.
    pub fn operation(req: &Req) -> &'static str {
        let s: Vec<&str> = req.segments.iter().map(String::as_str).collect();
        match (&req.method, s.as_slice()) {
            (&Method::POST, [_, "oauth2", "v2.0", "token"] | [_, "oauth2", "token"]) => "Token",
            (_, [_, "v2.0", ".well-known", "openid-configuration"] | [_, ".well-known", "openid-configuration"]) => {
                "OpenIdConfiguration"
            }
            (_, [_, "discovery", "instance"]) => "InstanceDiscovery",
            (_, [_, "discovery", "v2.0", "keys"] | [_, "discovery", "keys"]) => "Keys",
            _ => "Unknown",
        }
    }

    /// Serves one request to the authority host.
    pub async fn handle(&self, world: &Mutex<World>, req: &Req) -> Resp {
        let s: Vec<&str> = req.segments.iter().map(String::as_str).collect();
        let base = req.base_url();
        match Self::operation(req) {
            "Token" => {
                let form: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
                match self.token(world, s[0], &form).await {
                    Ok(body) => json_resp(StatusCode::OK, &body),
                    Err(e) => e.to_response(),
                }
            }
            "OpenIdConfiguration" => {
                let v2 = s.get(1) == Some(&"v2.0");
                json_resp(StatusCode::OK, &openid_configuration(&base, s[0], v2))
            }
            "InstanceDiscovery" => {
                let tenant = req
                    .query("authorization_endpoint")
                    .and_then(|a| a.split("://").nth(1))
                    .and_then(|rest| rest.split('/').nth(1))
                    .filter(|t| !t.is_empty())
                    .unwrap_or("common")
                    .to_string();
                json_resp(
                    StatusCode::OK,
                    &json!({
                        "tenant_discovery_endpoint": format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
                        "api-version": "1.1",
                        "metadata": [
                            {"preferred_network": "login.microsoftonline.com", "preferred_cache": "login.windows.net", "aliases": ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"]},
                            {"preferred_network": req.authority, "preferred_cache": req.authority, "aliases": [req.authority]},
                        ],
                    }),
                )
            }
            "Keys" => json_resp(StatusCode::OK, &self.jwks_document()),
            _ => fail(
                "invalid_request",
                900_561,
                format!("The endpoint {} {} is not served by the sandbox.", req.method, req.path),
            )
            .to_response_with(StatusCode::NOT_FOUND),
        }
    }

    /// The public keys access tokens are signed with.
    pub fn jwks_document(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// The token endpoint: checks the request and the assertion, issues an access token.
    pub async fn token(
        &self,
        world: &Mutex<World>,
        tenant: &str,
        form: &[(String, String)],
    ) -> Result<Value, EntraError> {
        let param =
            |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let missing = |name: &str| {
            fail(
                "invalid_request",
                900_144,
                format!("The request body must contain the following parameter: '{name}'."),
            )
        };
        let grant = param("grant_type").ok_or_else(|| missing("grant_type"))?;
        if grant != "client_credentials" {
            return Err(fail(
                "unsupported_grant_type",
                70_003,
                format!("The app requested an unsupported grant type '{grant}'."),
            ));
        }
        let client_id = param("client_id").ok_or_else(|| missing("client_id"))?;
        let resource = match (param("scope"), param("resource")) {
            (Some(scope), _) => {
                let scope = scope.split_whitespace().find(|s| s.ends_with("/.default")).ok_or_else(|| {
                    fail("invalid_scope", 1_002_012, format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."))
                })?;
                // `https://management.azure.com//.default` (the CLI's form) names `https://management.azure.com/`.
                scope.trim_end_matches("/.default").to_string()
            }
            (None, Some(resource)) => resource.to_string(),
            (None, None) => return Err(missing("scope")),
        };
        if audience_kind(&resource).is_none() {
            return Err(fail(
                "invalid_resource",
                500_011,
                format!(
                    "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
                ),
            ));
        }
        if param("client_secret").is_some() {
            return Err(fail(
                "invalid_client",
                7_000_215,
                "Invalid client secret provided. The sandbox accepts only federated client assertions.",
            ));
        }
        let assertion_type = param("client_assertion_type").ok_or_else(|| {
            fail(
                "invalid_client",
                7_000_216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            )
        })?;
        if assertion_type != JWT_BEARER {
            return Err(fail(
                "invalid_client",
                700_023,
                format!("Client assertion type '{assertion_type}' is not supported; use {JWT_BEARER}."),
            ));
        }
        let assertion = param("client_assertion").ok_or_else(|| {
            fail(
                "invalid_client",
                7_000_216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            )
        })?;

        let identity: Identity = {
            let world = world.lock().unwrap_or_else(PoisonError::into_inner);
            if !world.tenants.iter().any(|t| t.eq_ignore_ascii_case(tenant)) {
                return Err(fail(
                    "invalid_request",
                    90_002,
                    format!(
                        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
                    ),
                ));
            }
            world
                .identity_by_client(client_id)
                .filter(|i| i.tenant.eq_ignore_ascii_case(tenant))
                .cloned()
                .ok_or_else(|| fail("unauthorized_client", 700_016, format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.")))?
        };

        let malformed = || fail("invalid_request", 50_027, "JWT token is invalid or malformed.");
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| malformed())?;
        let unverified: Value =
            jsonwebtoken::dangerous::insecure_decode::<Value>(assertion).map_err(|_| malformed())?.claims;
        let iss = unverified.get("iss").and_then(Value::as_str).unwrap_or_default().to_string();
        let sub = unverified.get("sub").and_then(Value::as_str).unwrap_or_default().to_string();
        let auds: Vec<String> = match unverified.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => vec![],
        };
        let same_issuer = |a: &str| a.trim_end_matches('/') == iss.trim_end_matches('/');
        if !identity.federated.iter().any(|f| same_issuer(&f.issuer)) {
            return Err(fail(
                "invalid_request",
                700_211,
                format!(
                    "No matching federated identity record found for presented assertion issuer '{iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
                ),
            ));
        }
        if header.alg != Algorithm::RS256 {
            return Err(fail(
                "invalid_client",
                700_027,
                "Client assertion failed signature validation. Only RS256 assertions are accepted.",
            ));
        }
        let key = self.issuer_key(&iss, header.kid.as_deref()).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(assertion, &key, &validation)
            .map_err(|_| fail("invalid_client", 700_027, "Client assertion failed signature validation."))?;

        let now = self.now();
        let exp = unverified.get("exp").and_then(Value::as_i64);
        let nbf = unverified.get("nbf").and_then(Value::as_i64).unwrap_or(i64::MIN);
        let time = |t: Option<i64>| {
            t.and_then(|t| jiff::Timestamp::from_second(t).ok())
                .map(|t| t.to_string())
                .unwrap_or_else(|| "(none)".into())
        };
        if exp.is_none_or(|e| now > e + SKEW_SECONDS) || nbf > now + SKEW_SECONDS {
            return Err(fail(
                "invalid_client",
                700_024,
                format!(
                    "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}.",
                    time(Some(now)),
                    time(Some(nbf).filter(|n| *n != i64::MIN)),
                    time(exp)
                ),
            ));
        }
        let matched = identity
            .federated
            .iter()
            .any(|f| same_issuer(&f.issuer) && f.subject == sub && f.audiences.iter().any(|a| auds.contains(a)));
        if !matched {
            return Err(fail(
                "invalid_request",
                70_021,
                format!(
                    "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'. https://docs.microsoft.com/azure/active-directory/develop/workload-identity-federation",
                    auds.join(",")
                ),
            ));
        }
        let (token, lifetime) =
            self.issue(&identity, &resource, self.token_lifetime).map_err(|e| fail("server_error", 50_000, e))?;
        Ok(json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}))
    }

    /// Signs an access token for `identity` and `resource`, valid `lifetime` seconds (negative
    /// lifetimes make expired tokens, for tests).
    pub fn issue(&self, identity: &Identity, resource: &str, lifetime: i64) -> Result<(String, i64), String> {
        let now = self.now();
        let claims = AccessClaims {
            aud: resource.to_string(),
            iss: format!("https://sts.windows.net/{}/", identity.tenant),
            iat: now.min(now + lifetime),
            nbf: now.min(now + lifetime),
            exp: now + lifetime,
            appid: identity.client_id.clone(),
            idtyp: "app".into(),
            oid: identity.principal_id.clone(),
            sub: identity.principal_id.clone(),
            tid: identity.tenant.clone(),
            ver: "1.0".into(),
            xms_mirid: identity.resource_id(),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.jwk.common.key_id.clone();
        header.typ = Some("JWT".into());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(|e| e.to_string())?;
        Ok((token, lifetime))
    }

    /// Checks a bearer token's signature, expiry and audience family.
    pub fn verify(&self, token: &str, want: Audience) -> Result<AccessClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        if self.now() >= claims.exp {
            return Err(TokenError::Expired);
        }
        if audience_kind(&claims.aud) != Some(want) {
            return Err(TokenError::WrongAudience(claims.aud));
        }
        Ok(claims)
    }

    async fn issuer_key(&self, issuer: &str, kid: Option<&str>) -> Result<DecodingKey, EntraError> {
        let issuer = issuer.trim_end_matches('/').to_string();
        let pick = |set: &JwkSet| -> Option<DecodingKey> {
            let jwk = match kid {
                Some(kid) => set.find(kid),
                None => set.keys.first(),
            }?;
            DecodingKey::from_jwk(jwk).ok()
        };
        let unreachable =
            |why: String| fail("invalid_client", 50_166, format!("Request to External OIDC endpoint failed: {why}"));
        if let Some(doc) = self.jwks.fixed.get(&issuer) {
            let set: JwkSet = serde_json::from_value(doc.clone()).map_err(|e| unreachable(format!("bad JWKS: {e}")))?;
            return pick(&set).ok_or_else(|| {
                fail(
                    "invalid_client",
                    700_027,
                    "Client assertion failed signature validation: no key with a matching kid.",
                )
            });
        }
        if let Some(set) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&issuer)
            && let Some(key) = pick(set)
        {
            return Ok(key);
        }
        let http = self.http.as_ref().ok_or_else(|| unreachable(format!("no JWKS is known for issuer '{issuer}'")))?;
        let url = format!("{issuer}/openid/v1/jwks");
        let set: JwkSet = async {
            let resp = http.get(&url).send().await.map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("GET {url} answered {}", resp.status()));
            }
            resp.json::<JwkSet>().await.map_err(|e| e.to_string())
        }
        .await
        .map_err(unreachable)?;
        let key = pick(&set);
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).insert(issuer, set);
        key.ok_or_else(|| {
            fail("invalid_client", 700_027, "Client assertion failed signature validation: no key with a matching kid.")
        })
    }
}

impl EntraError {
    fn to_response_with(&self, status: StatusCode) -> Resp {
        let mut r = self.to_response();
        *r.status_mut() = status;
        r
    }
}

/// The OpenID configuration MSAL reads (`token_endpoint`, `authorization_endpoint`, `issuer`).
pub fn openid_configuration(base: &str, tenant: &str, v2: bool) -> Value {
    let (oauth, issuer) = if v2 {
        ("oauth2/v2.0", format!("{base}/{tenant}/v2.0"))
    } else {
        ("oauth2", format!("https://sts.windows.net/{tenant}/"))
    };
    json!({
        "token_endpoint": format!("{base}/{tenant}/{oauth}/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tenant}/discovery/{}keys", if v2 { "v2.0/" } else { "" }),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/{tenant}/{oauth}/authorize"),
        "device_authorization_endpoint": format!("{base}/{tenant}/{oauth}/devicecode"),
        "end_session_endpoint": format!("{base}/{tenant}/{oauth}/logout"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_map_to_services_with_or_without_a_trailing_slash() {
        assert_eq!(audience_kind("https://management.azure.com/"), Some(Audience::Arm));
        assert_eq!(audience_kind("https://management.core.windows.net/"), Some(Audience::Arm));
        assert_eq!(audience_kind("https://vault.azure.net"), Some(Audience::KeyVault));
        assert_eq!(audience_kind("api://AzureADTokenExchange"), None);
    }

    #[test]
    fn issued_tokens_verify_only_for_their_audience_and_until_expiry() {
        let entra = Entra::new(JwksSource::default(), 3600).expect("entra");
        let id = Identity {
            name: "i".into(),
            tenant: "t".into(),
            subscription: "s".into(),
            resource_group: "rg".into(),
            client_id: "c".into(),
            principal_id: "p".into(),
            federated: vec![],
        };
        let (token, _) = entra.issue(&id, "https://management.azure.com/", 3600).expect("token");
        let claims = entra.verify(&token, Audience::Arm).expect("valid");
        assert_eq!((claims.oid.as_str(), claims.tid.as_str(), claims.appid.as_str()), ("p", "t", "c"));
        assert_eq!(
            entra.verify(&token, Audience::KeyVault),
            Err(TokenError::WrongAudience("https://management.azure.com/".into()))
        );
        let (expired, _) = entra.issue(&id, "https://vault.azure.net", -10).expect("token");
        assert_eq!(entra.verify(&expired, Audience::KeyVault), Err(TokenError::Expired));
        assert_eq!(entra.verify("not-a-jwt", Audience::Arm), Err(TokenError::Invalid));
    }
}
