//! ServiceAccount identity: the sandbox's RSA signing key, TokenRequest (`serviceaccounts/token`,
//! JSON or kubectl's protobuf body) issuing RS256 JWTs with the claims a real cluster puts in them,
//! verification of those tokens when they come back as bearer tokens, and the OIDC discovery
//! documents (`/.well-known/openid-configuration`, `/openid/v1/jwks`) an external verifier such as
//! local Entra uses. The protobuf body is decoded with prost-derived messages mirroring
//! `runtime.Unknown` and `authentication.k8s.io/v1 TokenRequest` (field numbers from the upstream
//! generated.proto), because only those few fields are needed.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::Jwk};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{ApiError, Cause};
use super::store::now;

/// Errors creating the signing key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// rcgen could not generate the RSA key.
    #[error("failed to generate the service account signing key")]
    Generate(#[from] rcgen::Error),
    /// jsonwebtoken rejected the key.
    #[error("failed to load the service account signing key")]
    Load(#[from] jsonwebtoken::errors::Error),
    /// The key file could not be written.
    #[error("failed to keep the service account signing key")]
    Io(#[source] std::io::Error),
}

/// The claims of a ServiceAccount token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Issuer: the sandbox URL.
    pub iss: String,
    /// Token id.
    pub jti: String,
    /// `system:serviceaccount:NS:NAME`.
    pub sub: String,
    /// The `kubernetes.io` private claims.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: Value,
}

/// Signs and verifies ServiceAccount tokens.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
    kid: String,
    issuer: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer").field("kid", &self.kid).field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The admin token: bypasses authorization.
    Admin,
    /// A ServiceAccount token.
    ServiceAccount {
        /// Namespace of the ServiceAccount.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Any other user, reached by the admin impersonating it (`kubectl --as=jane --as-group=…`).
    User {
        /// User name.
        name: String,
        /// Groups (plus `system:authenticated`).
        groups: Vec<String>,
    },
}

impl Identity {
    /// The user name and groups RBAC matches subjects against; None for the admin.
    pub fn user_and_groups(&self) -> Option<(String, Vec<String>)> {
        match self {
            Self::Admin => None,
            Self::ServiceAccount { namespace, name } => Some((
                format!("system:serviceaccount:{namespace}:{name}"),
                vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{namespace}"),
                    "system:authenticated".into(),
                ],
            )),
            Self::User { name, groups } => {
                let mut groups = groups.clone();
                if !groups.iter().any(|g| g == "system:authenticated") {
                    groups.push("system:authenticated".into());
                }
                Some((name.clone(), groups))
            }
        }
    }

    /// The identity the admin gets with `Impersonate-User` (and `Impersonate-Group`) headers.
    pub fn impersonated(user: &str, groups: Vec<String>) -> Self {
        match user.strip_prefix("system:serviceaccount:").and_then(|rest| rest.split_once(':')) {
            Some((namespace, name)) if groups.is_empty() => {
                Self::ServiceAccount { namespace: namespace.into(), name: name.into() }
            }
            _ => Self::User { name: user.into(), groups },
        }
    }
}

impl TokenIssuer {
    /// Generates a fresh RSA-2048 key; tokens name `issuer` as `iss`.
    pub fn generate(issuer: &str) -> Result<Self, KeyError> {
        let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?;
        Self::from_pem(issuer, &key.serialize_pem())
    }

    /// Loads the signing key kept at `path`, or generates one and keeps it there, so tokens
    /// issued before a restart stay valid.
    pub fn load_or_generate(issuer: &str, path: &std::path::Path) -> Result<Self, KeyError> {
        if let Ok(pem) = std::fs::read_to_string(path) {
            return Self::from_pem(issuer, &pem);
        }
        let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?;
        let pem = key.serialize_pem();
        std::fs::write(path, &pem).map_err(KeyError::Io)?;
        Self::from_pem(issuer, &pem)
    }

    /// Uses an RSA private key (PKCS#8 PEM).
    pub fn from_pem(issuer: &str, pem: &str) -> Result<Self, KeyError> {
        use base64::Engine;
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)?;
        // A stable key id derived from the public key, as kube-apiserver derives its own.
        let modulus = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) => rsa.n.clone(),
            _ => String::new(),
        };
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, modulus.as_bytes());
        let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk)?;
        Ok(Self { encoding, decoding, jwk, kid, issuer: issuer.to_string() })
    }

    /// The `iss` of issued tokens (also their default audience).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Issues a token for a ServiceAccount.
    pub fn issue(
        &self,
        namespace: &str,
        name: &str,
        sa_uid: &str,
        audiences: &[String],
        expiration_seconds: i64,
        bound: Option<&Value>,
    ) -> Result<(String, i64), ApiError> {
        let iat = jiff::Timestamp::now().as_second();
        let exp = iat + expiration_seconds;
        let mut kubernetes = json!({"namespace": namespace, "serviceaccount": {"name": name, "uid": sa_uid}});
        if let Some(bound) = bound
            && let (Some(kind), Some(bname)) =
                (bound.get("kind").and_then(Value::as_str), bound.get("name").and_then(Value::as_str))
        {
            kubernetes[kind.to_ascii_lowercase()] =
                json!({"name": bname, "uid": bound.get("uid").cloned().unwrap_or(json!(""))});
        }
        let claims = Claims {
            aud: audiences.to_vec(),
            exp,
            iat,
            nbf: iat,
            iss: self.issuer.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            sub: format!("system:serviceaccount:{namespace}:{name}"),
            kubernetes,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| ApiError::internal(format!("failed to sign token: {e}")))?;
        Ok((token, exp))
    }

    /// Verifies a bearer token meant for this API server; returns the ServiceAccount it names.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[self.issuer.as_str()]);
        validation.set_issuer(&[self.issuer.as_str()]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok().map(|d| d.claims)
    }

    /// `/.well-known/openid-configuration`.
    pub fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/openid/v1/jwks", self.issuer),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct UnknownPb {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMetaPb>,
    #[prost(bytes = "vec", optional, tag = "2")]
    raw: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TypeMetaPb {
    #[prost(string, optional, tag = "1")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TokenRequestPb {
    #[prost(bytes = "vec", optional, tag = "1")]
    metadata: Option<Vec<u8>>,
    #[prost(message, optional, tag = "2")]
    spec: Option<TokenRequestSpecPb>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TokenRequestSpecPb {
    #[prost(string, repeated, tag = "1")]
    audiences: Vec<String>,
    #[prost(message, optional, tag = "3")]
    bound_object_ref: Option<BoundObjectRefPb>,
    #[prost(int64, optional, tag = "4")]
    expiration_seconds: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct BoundObjectRefPb {
    #[prost(string, optional, tag = "1")]
    kind: Option<String>,
    #[prost(string, optional, tag = "2")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
    #[prost(string, optional, tag = "4")]
    uid: Option<String>,
}

const PROTOBUF_MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf TokenRequest body (`k8s\0` + runtime.Unknown) into its JSON `spec`.
pub fn decode_protobuf_token_request(body: &[u8]) -> Result<Value, ApiError> {
    use prost::Message;
    let bad = |what: &str| ApiError::bad_request(format!("failed to decode protobuf TokenRequest: {what}"));
    let rest = body.strip_prefix(PROTOBUF_MAGIC).ok_or_else(|| bad("missing the k8s protobuf prefix"))?;
    let unknown = UnknownPb::decode(rest).map_err(|e| bad(&e.to_string()))?;
    let kind = unknown.type_meta.as_ref().and_then(|t| t.kind.clone()).unwrap_or_default();
    if kind != "TokenRequest" {
        return Err(bad(&format!("unexpected kind {kind:?}")));
    }
    let request =
        TokenRequestPb::decode(unknown.raw.unwrap_or_default().as_slice()).map_err(|e| bad(&e.to_string()))?;
    let spec = request.spec.unwrap_or_default();
    let mut out = json!({"audiences": spec.audiences});
    if let Some(seconds) = spec.expiration_seconds {
        out["expirationSeconds"] = json!(seconds);
    }
    if let Some(b) = spec.bound_object_ref {
        out["boundObjectRef"] = json!({"kind": b.kind, "apiVersion": b.api_version, "name": b.name, "uid": b.uid});
    }
    Ok(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": out}))
}

/// Serves `POST …/serviceaccounts/NAME/token` for an existing ServiceAccount object.
pub fn token_request(issuer: &TokenIssuer, sa: &Value, request: &Value) -> Result<Value, ApiError> {
    let namespace = sa.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let name = sa.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let uid = sa.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
    let spec = request.get("spec").cloned().unwrap_or(json!({}));
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences.push(issuer.issuer().to_string());
    }
    let seconds = spec.get("expirationSeconds").and_then(Value::as_i64).unwrap_or(3600);
    if seconds < 600 {
        return Err(ApiError::invalid(
            "TokenRequest",
            "authentication.k8s.io",
            name,
            vec![Cause::invalid(
                "spec.expirationSeconds",
                &json!(seconds),
                "may not specify a duration less than 10 minutes",
            )],
        ));
    }
    if seconds > 1 << 32 {
        return Err(ApiError::invalid(
            "TokenRequest",
            "authentication.k8s.io",
            name,
            vec![Cause::invalid(
                "spec.expirationSeconds",
                &json!(seconds),
                "may not specify a duration larger than 2^32 seconds",
            )],
        ));
    }
    let bound = spec.get("boundObjectRef").filter(|b| !b.is_null());
    let (token, exp) = issuer.issue(namespace, name, uid, &audiences, seconds, bound)?;
    let expiration = jiff::Timestamp::from_second(exp)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| now());
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": null},
        "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": bound.cloned()},
        "status": {"token": token, "expirationTimestamp": expiration},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn kubectl_protobuf_token_request_decodes() {
        let raw = TokenRequestPb {
            metadata: Some(Vec::new()),
            spec: Some(TokenRequestSpecPb {
                audiences: vec!["api://AzureADTokenExchange".into()],
                bound_object_ref: None,
                expiration_seconds: Some(7200),
            }),
        }
        .encode_to_vec();
        let unknown = UnknownPb {
            type_meta: Some(TypeMetaPb {
                api_version: Some("authentication.k8s.io/v1".into()),
                kind: Some("TokenRequest".into()),
            }),
            raw: Some(raw),
        };
        let mut body = PROTOBUF_MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        let decoded = decode_protobuf_token_request(&body).expect("decodes");
        assert_eq!(decoded["spec"]["audiences"], json!(["api://AzureADTokenExchange"]));
        assert_eq!(decoded["spec"]["expirationSeconds"], json!(7200));
    }

    #[test]
    fn issued_tokens_verify_and_carry_kubernetes_claims() {
        let issuer = TokenIssuer::generate("https://127.0.0.1:1").expect("key");
        let (token, _) =
            issuer.issue("app-a", "sa", "u1", &["https://127.0.0.1:1".to_string()], 3600, None).expect("issued");
        let claims = issuer.verify(&token).expect("verifies");
        assert_eq!(claims.sub, "system:serviceaccount:app-a:sa");
        assert_eq!(claims.kubernetes["serviceaccount"]["name"], "sa");
        let (other_aud, _) =
            issuer.issue("app-a", "sa", "u1", &["api://AzureADTokenExchange".to_string()], 3600, None).expect("issued");
        assert!(issuer.verify(&other_aud).is_none(), "a token for another audience is not an API credential");
    }
}
