//! From a Key Vault certificate's backing secret to the contents of a `kubernetes.io/tls` Secret.
//!
//! `decode_secret` reads the secret value (base64 PKCS#12 with an empty password, or PEM, per the
//! certificate policy's content type) into a private key and a bag of certificates in whatever
//! order they were stored. `assemble` then runs an ordered chain of named checks — the first one
//! that fails names the condition reason, as cert-manager's policy chain does:
//!
//! | check | fails when |
//! |---|---|
//! | `KeyNotExportable` | the secret holds no private key (the certificate's key is not exportable) |
//! | `KeyMismatch` | no certificate in the secret carries the private key's public key |
//! | `ChainBroken` | a certificate that names the next one as issuer is not signed by it |
//! | `NotYetValid` | the leaf or an intermediate is not valid yet |
//! | `Expired` | the leaf or an intermediate has expired |
//! | `HostnameNotCovered` | the listener hostname is not among the leaf's DNS SANs (refused or warned, by policy) |
//!
//! The chain comes out leaf first, then intermediates in issuing order, rebuilt from subject /
//! issuer names and key identifiers whatever the stored order; a self-signed root is kept apart
//! and only added to `tls.crt` on request; certificates that belong to no chain are dropped.

use crate::key::{KeyError, KeyFormat, PrivateKey};
use base64::Engine;
use x509_parser::prelude::{ASN1Time, GeneralName, ParsedExtension, parse_x509_certificate};
use zeroize::Zeroizing;

/// How the secret value is encoded (the certificate policy's `contentType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    Pkcs12,
    Pem,
}

impl ContentType {
    /// From Key Vault's `contentType`; an absent or unknown one is sniffed from the value.
    pub fn from_key_vault(content_type: Option<&str>, value: &str) -> Self {
        match content_type.map(str::to_ascii_lowercase).as_deref() {
            Some("application/x-pkcs12") => ContentType::Pkcs12,
            Some("application/x-pem-file") => ContentType::Pem,
            _ if value.trim_start().starts_with("-----BEGIN") => ContentType::Pem,
            _ => ContentType::Pkcs12,
        }
    }
}

/// A secret value that could not be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("secret value is not base64: {0}")]
    Base64(String),
    #[error("secret value is not a PKCS#12 archive with an empty password: {0}")]
    Pkcs12(String),
    #[error("secret value is not PEM: {0}")]
    Pem(String),
    #[error("secret holds {0} private keys; want one")]
    MultipleKeys(usize),
    #[error("secret holds no certificate")]
    NoCertificate,
    #[error("certificate {index} in the secret is malformed: {detail}")]
    Certificate { index: usize, detail: String },
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// A decoded secret: the private key (if exportable) and the certificates as stored.
#[derive(Clone, Debug)]
pub struct Material {
    pub key: Option<PrivateKey>,
    pub certs: Vec<Cert>,
}

/// The facts routewarden needs from one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cert {
    pub der: Vec<u8>,
    pub subject: String,
    pub issuer: String,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    pub not_before: jiff::Timestamp,
    pub not_after: jiff::Timestamp,
    pub dns_names: Vec<String>,
    pub is_ca: bool,
    ski: Option<Vec<u8>>,
    aki: Option<Vec<u8>>,
    public_key_bits: Vec<u8>,
}

fn ts(t: ASN1Time) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t.timestamp()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

impl Cert {
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let (rest, c) = parse_x509_certificate(der).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!("{} trailing bytes", rest.len()));
        }
        let mut dns_names = Vec::new();
        let (mut ski, mut aki) = (None, None);
        for ext in c.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        if let GeneralName::DNSName(n) = name {
                            dns_names.push(n.to_ascii_lowercase());
                        }
                    }
                }
                ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(a) => aki = a.key_identifier.as_ref().map(|k| k.0.to_vec()),
                _ => {}
            }
        }
        Ok(Cert {
            der: der.to_vec(),
            subject: c.subject().to_string(),
            issuer: c.issuer().to_string(),
            subject_raw: c.subject().as_raw().to_vec(),
            issuer_raw: c.issuer().as_raw().to_vec(),
            not_before: ts(c.validity().not_before),
            not_after: ts(c.validity().not_after),
            dns_names,
            is_ca: c.is_ca(),
            ski,
            aki,
            public_key_bits: c.public_key().subject_public_key.data.to_vec(),
        })
    }

    /// The SubjectPublicKeyInfo bit string (what a matching private key's public half equals).
    pub fn public_key_bits(&self) -> &[u8] {
        &self.public_key_bits
    }

    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.ski.as_deref()
    }

    /// Key Vault's `x5t`: base64url (no padding) of the SHA-1 of the DER certificate.
    pub fn x5t(&self) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.der);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    /// Whether `issuer` is named as this certificate's issuer (and key identifiers agree).
    pub(crate) fn names_as_issuer(&self, issuer: &Cert) -> bool {
        self.issuer_raw == issuer.subject_raw
            && match (&self.aki, &issuer.ski) {
                (Some(a), Some(s)) => a == s,
                _ => true,
            }
    }

    /// Whether `issuer`'s key signed this certificate.
    pub(crate) fn is_signed_by(&self, issuer: &Cert) -> bool {
        let (Ok((_, child)), Ok((_, parent))) =
            (parse_x509_certificate(&self.der), parse_x509_certificate(&issuer.der))
        else {
            return false;
        };
        child.verify_signature(Some(parent.public_key())).is_ok()
    }

    fn is_self_signed(&self) -> bool {
        self.names_as_issuer(self) && self.is_signed_by(self)
    }

    pub(crate) fn pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.der.clone()))
    }
}

fn parse_certs(ders: impl IntoIterator<Item = Vec<u8>>) -> Result<Vec<Cert>, DecodeError> {
    let mut out: Vec<Cert> = Vec::new();
    for (index, der) in ders.into_iter().enumerate() {
        let cert = Cert::from_der(&der).map_err(|detail| DecodeError::Certificate { index, detail })?;
        if !out.iter().any(|c| c.der == cert.der) {
            out.push(cert);
        }
    }
    if out.is_empty() {
        return Err(DecodeError::NoCertificate);
    }
    Ok(out)
}

/// Reads a Key Vault secret value.
pub fn decode_secret(value: &str, content_type: ContentType) -> Result<Material, DecodeError> {
    match content_type {
        ContentType::Pkcs12 => {
            let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let der = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .map_err(|e| DecodeError::Base64(e.to_string()))?,
            );
            let archive =
                p12_keystore::Pkcs12Archive::from_pkcs12(&der, "").map_err(|e| DecodeError::Pkcs12(e.to_string()))?;
            if archive.keys.len() > 1 {
                return Err(DecodeError::MultipleKeys(archive.keys.len()));
            }
            let key = archive.keys.first().map(|k| PrivateKey::from_pkcs8_der(k.key.as_der())).transpose()?;
            let certs = parse_certs(archive.certs.into_iter().map(|b| b.cert.as_der().to_vec()))?;
            Ok(Material { key, certs })
        }
        ContentType::Pem => {
            let blocks = pem::parse_many(value).map_err(|e| DecodeError::Pem(e.to_string()))?;
            let mut keys = Vec::new();
            let mut ders = Vec::new();
            for block in &blocks {
                match block.tag() {
                    "CERTIFICATE" => ders.push(block.contents().to_vec()),
                    t if t.ends_with("PRIVATE KEY") => keys.push(PrivateKey::from_pem_block(block)?),
                    _ => {}
                }
            }
            if keys.len() > 1 {
                return Err(DecodeError::MultipleKeys(keys.len()));
            }
            Ok(Material { key: keys.pop(), certs: parse_certs(ders)? })
        }
    }
}

/// The named checks, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    KeyNotExportable,
    KeyMismatch,
    ChainBroken,
    NotYetValid,
    Expired,
    HostnameNotCovered,
}

impl Check {
    /// The condition / Event reason.
    pub fn reason(self) -> &'static str {
        match self {
            Check::KeyNotExportable => "KeyNotExportable",
            Check::KeyMismatch => "KeyMismatch",
            Check::ChainBroken => "ChainBroken",
            Check::NotYetValid => "NotYetValid",
            Check::Expired => "Expired",
            Check::HostnameNotCovered => "HostnameNotCovered",
        }
    }
}

/// A failed check, with words for operators.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", check.reason())]
pub struct CheckFailure {
    pub check: Check,
    pub message: String,
}

fn fail(check: Check, message: impl Into<String>) -> CheckFailure {
    CheckFailure { check, message: message.into() }
}

/// What to do when the listener hostname is not covered by the certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostnamePolicy {
    #[default]
    Refuse,
    Warn,
}

/// What `assemble` checks against.
#[derive(Clone, Debug)]
pub struct Expectations<'a> {
    pub now: jiff::Timestamp,
    /// The listener's hostname, if it has one (may be a wildcard).
    pub hostname: Option<&'a str>,
    pub hostname_policy: HostnamePolicy,
}

/// A validated bundle, ready to become `tls.crt` and `tls.key`.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub key: PrivateKey,
    /// Leaf first, then intermediates in issuing order.
    pub chain: Vec<Cert>,
    /// The self-signed root, when the secret carried one.
    pub root: Option<Cert>,
    /// Certificates in the secret that belong to no chain.
    pub dropped: usize,
    /// Checks that failed under a warn policy.
    pub warnings: Vec<CheckFailure>,
}

impl Bundle {
    pub fn leaf(&self) -> &Cert {
        &self.chain[0]
    }

    /// `tls.crt`: the chain as PEM, leaf first; the root only when asked for.
    pub fn tls_crt(&self, include_root: bool) -> String {
        let root = self.root.iter().filter(|_| include_root);
        self.chain.iter().chain(root).map(Cert::pem).collect()
    }

    /// `tls.key`.
    pub fn tls_key(&self, format: KeyFormat) -> Result<Zeroizing<String>, KeyError> {
        self.key.to_pem(format)
    }
}

/// Whether DNS SAN `pattern` covers `host` (one-label wildcards only, as browsers match).
pub fn san_covers(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (pattern.to_ascii_lowercase(), host.trim_end_matches('.').to_ascii_lowercase());
    if pattern == host {
        return true;
    }
    match (pattern.strip_prefix("*."), host.split_once('.')) {
        (Some(base), Some((label, rest))) => !label.is_empty() && label != "*" && rest == base,
        _ => false,
    }
}

/// Orders and checks decoded material. See the module docs for the checks.
pub fn assemble(material: Material, expect: &Expectations<'_>) -> Result<Bundle, CheckFailure> {
    let Material { key, mut certs } = material;
    let key = key.ok_or_else(|| {
        fail(Check::KeyNotExportable, "the secret holds no private key; create the certificate with an exportable key")
    })?;
    let public = key.public_key_bits().map_err(|e| fail(Check::KeyMismatch, e.to_string()))?;
    // The leaf is the certificate carrying the key; among renewals with the same key, the newest.
    let leaf_index = certs
        .iter()
        .enumerate()
        .filter(|(_, c)| c.public_key_bits == public)
        .max_by_key(|(_, c)| (!c.is_ca, c.not_before))
        .map(|(i, _)| i)
        .ok_or_else(|| {
            let subjects: Vec<&str> = certs.iter().map(|c| c.subject.as_str()).collect();
            fail(
                Check::KeyMismatch,
                format!("no certificate matches the private key (certificates: {})", subjects.join("; ")),
            )
        })?;
    let mut chain = vec![certs.remove(leaf_index)];
    let mut root = None;
    loop {
        let current = chain.last().expect("chain starts with the leaf");
        if current.is_self_signed() {
            if chain.len() > 1 {
                root = chain.pop();
            }
            break;
        }
        let Some(pos) = certs.iter().position(|c| current.names_as_issuer(c)) else { break };
        if !current.is_signed_by(&certs[pos]) {
            return Err(fail(
                Check::ChainBroken,
                format!("{:?} names {:?} as its issuer but is not signed by it", current.subject, certs[pos].subject),
            ));
        }
        chain.push(certs.remove(pos));
    }
    for c in chain.iter().chain(root.iter()) {
        if c.not_before > expect.now {
            return Err(fail(Check::NotYetValid, format!("{:?} is not valid before {}", c.subject, c.not_before)));
        }
        if c.not_after <= expect.now {
            return Err(fail(Check::Expired, format!("{:?} expired at {}", c.subject, c.not_after)));
        }
    }
    let mut warnings = Vec::new();
    if let Some(host) = expect.hostname {
        let leaf = &chain[0];
        if !leaf.dns_names.iter().any(|p| san_covers(p, host)) {
            let f = fail(
                Check::HostnameNotCovered,
                format!(
                    "listener hostname {host:?} is not covered by the certificate's DNS names {:?}",
                    leaf.dns_names
                ),
            );
            match expect.hostname_policy {
                HostnamePolicy::Refuse => return Err(f),
                HostnamePolicy::Warn => warnings.push(f),
            }
        }
    }
    Ok(Bundle { key, chain, root, dropped: certs.len(), warnings })
}
