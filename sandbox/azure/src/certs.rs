//! X.509 material: the sandbox CA, generated certificates, PKCS#12 and PEM encodings, imports.
//!
//! [`CertAuthority`] wraps the CA handed to the sandbox (cert + key PEM) and issues the HTTPS
//! server certificate and CA-signed scenario certificates (rcgen). [`generate`] makes the key and
//! certificate a Key Vault policy asks for; [`Material`] is a private key (absent for a
//! non-exportable certificate's secret) plus a leaf-first chain, encoded as Key Vault serves a
//! certificate's backing secret: base64 PKCS#12 with an empty password (p12-keystore) or PEM text.
//! [`parse_import`] reads what `certificates/{name}/import` accepts (PFX or PEM, as text or
//! base64) and orders the chain leaf first; [`CertInfo`] reads subject, SANs and validity back
//! (x509-parser).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::scenario::KeyType;

/// Errors making or reading certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen failed to generate or sign.
    #[error("failed to generate a certificate")]
    Generate(#[from] rcgen::Error),
    /// PKCS#12 encoding or decoding failed.
    #[error("failed to read or write PKCS#12: {0}")]
    Pkcs12(String),
    /// The input is not a certificate Key Vault would accept; the text is Key Vault's message.
    #[error("{0}")]
    Invalid(String),
}

/// The sandbox CA: signs the server certificate and CA-issued scenario certificates.
pub struct CertAuthority {
    cert_pem: String,
    cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAuthority").finish_non_exhaustive()
    }
}

impl CertAuthority {
    /// Loads a CA from its certificate and private key (PKCS#8 PEM).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| CertError::Invalid(format!("CA certificate PEM: {e}")))?
            .to_vec();
        Ok(Self { cert_pem: cert_pem.to_string(), cert_der, issuer })
    }

    /// Generates a fresh CA (for tests and standalone use); returns it with its key PEM.
    pub fn generate(common_name: &str) -> Result<(Self, String), CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok((Self::from_pem(&cert.pem(), &key_pem)?, key_pem))
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// A server certificate for `dns_names` (wildcards allowed) and 127.0.0.1 / ::1:
    /// (certificate DER, PKCS#8 key DER).
    pub fn server_certificate(&self, dns_names: &[String]) -> Result<(Vec<u8>, Vec<u8>), CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(dns_names.to_vec())?;
        params.subject_alt_names.push(SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)));
        params.subject_alt_names.push(SanType::IpAddress(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "routewarden sandbox azure");
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.der().to_vec(), key.serialize_der()))
    }
}

/// What a certificate is generated from (a Key Vault policy, normalised).
#[derive(Debug, Clone, PartialEq)]
pub struct GenSpec {
    /// Subject, `CN=…[, O=…]`.
    pub subject: String,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// Key type.
    pub key_type: KeyType,
    /// RSA size (2048, 3072, 4096); ignored for EC.
    pub key_size: u32,
    /// Validity in months.
    pub validity_months: u32,
}

/// A private key and its chain, leaf first.
#[derive(Debug, Clone, PartialEq)]
pub struct Material {
    /// PKCS#8 DER; `None` for a non-exportable key's secret.
    pub key_pkcs8: Option<Vec<u8>>,
    /// DER certificates, leaf first.
    pub chain: Vec<Vec<u8>>,
}

impl Material {
    /// The leaf certificate.
    pub fn leaf(&self) -> &[u8] {
        self.chain.first().map(Vec::as_slice).unwrap_or_default()
    }

    /// The same chain without the private key.
    pub fn without_key(&self) -> Self {
        Self { key_pkcs8: None, chain: self.chain.clone() }
    }

    /// PKCS#12 with an empty password, as Key Vault's backing secret holds it (before base64).
    pub fn to_pkcs12(&self) -> Result<Vec<u8>, CertError> {
        let p12 = |e: p12_keystore::error::Error| CertError::Pkcs12(e.to_string());
        let certs = self
            .chain
            .iter()
            .map(|der| p12_keystore::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(p12)?;
        let mut store = p12_keystore::KeyStore::new();
        match &self.key_pkcs8 {
            Some(key) => {
                let key = p12_keystore::PrivateKey::from_der(key).map_err(p12)?;
                let local_key_id = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, self.leaf())
                    .as_ref()
                    .to_vec();
                store.add_entry(
                    "1",
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
                        local_key_id,
                        key,
                        certs,
                    )),
                );
            }
            None => {
                for (i, cert) in certs.into_iter().enumerate() {
                    store.add_entry(&i.to_string(), p12_keystore::KeyStoreEntry::Certificate(cert));
                }
            }
        }
        // Fewer iterations than the default keep generation fast; clients read any count.
        store.writer("").encryption_iterations(2048).mac_iterations(2048).write().map_err(p12)
    }

    /// PEM text: the PKCS#8 key (when present) followed by the chain, leaf first.
    pub fn to_pem(&self) -> String {
        let mut out = String::new();
        if let Some(key) = &self.key_pkcs8 {
            out.push_str(&pem_block("PRIVATE KEY", key));
        }
        for der in &self.chain {
            out.push_str(&pem_block("CERTIFICATE", der));
        }
        out
    }

    /// The backing secret's value for a content type: base64 PKCS#12 or PEM text.
    pub fn secret_value(&self, content_type: &str) -> Result<String, CertError> {
        if content_type.eq_ignore_ascii_case(crate::scenario::PEM) {
            Ok(self.to_pem())
        } else {
            Ok(STANDARD.encode(self.to_pkcs12()?))
        }
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Parses `CN=a, O=b` into a distinguished name (unknown attributes are ignored).
fn distinguished_name(subject: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for part in subject.split(',') {
        let Some((k, v)) = part.split_once('=') else { continue };
        let v = v.trim();
        let ty = match k.trim().to_ascii_uppercase().as_str() {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "L" => DnType::LocalityName,
            "ST" | "S" => DnType::StateOrProvinceName,
            _ => continue,
        };
        dn.push(ty, v);
    }
    dn
}

fn to_offset(ts: jiff::Timestamp) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ts.as_second()).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Generates a key and certificate per `spec`, self-signed or issued by `ca`.
pub fn generate(spec: &GenSpec, ca: Option<&CertAuthority>) -> Result<Material, CertError> {
    let key = match spec.key_type {
        KeyType::Rsa => {
            let size = match spec.key_size {
                2048 => rcgen::RsaKeySize::_2048,
                3072 => rcgen::RsaKeySize::_3072,
                4096 => rcgen::RsaKeySize::_4096,
                other => {
                    return Err(CertError::Invalid(format!("The key size {other} is not supported for key type RSA.")));
                }
            };
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size)?
        }
        KeyType::Ec => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
    };
    let mut params = CertificateParams::new(spec.dns_names.clone())?;
    params.distinguished_name = distinguished_name(&spec.subject);
    let now = jiff::Timestamp::now();
    // Key Vault backdates a little so freshly issued certificates survive clock skew.
    params.not_before = to_offset(now - jiff::SignedDuration::from_mins(5));
    let not_after = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_add(jiff::Span::new().months(i64::from(spec.validity_months.max(1))))
        .map(|z| z.timestamp())
        .unwrap_or(now);
    params.not_after = to_offset(not_after);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(uuid::Uuid::new_v4().as_bytes()));
    params.key_usages = match spec.key_type {
        KeyType::Rsa => vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment],
        KeyType::Ec => vec![KeyUsagePurpose::DigitalSignature],
    };
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let (cert, chain_rest) = match ca {
        Some(ca) => (params.signed_by(&key, &ca.issuer)?, vec![ca.cert_der.clone()]),
        None => (params.self_signed(&key)?, vec![]),
    };
    let mut chain = vec![cert.der().to_vec()];
    chain.extend(chain_rest);
    Ok(Material { key_pkcs8: Some(key.serialize_der()), chain })
}

/// What `import` was given, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// Key and chain, leaf first.
    pub material: Material,
    /// Whether the input was PEM (decides the default content type).
    pub was_pem: bool,
}

const BAD_PEM: &str = "The specified PEM X.509 certificate content is in an unexpected format. Please check if certificate is in valid PEM format.";
const BAD_PFX: &str = "The specified PKCS#12 X.509 certificate content can not be read. Please check if certificate is in valid PKCS#12 format.";

/// Decodes an import `value`: PEM text, base64 of PEM, or base64 PFX (with `password`).
pub fn parse_import(value: &str, password: Option<&str>) -> Result<Imported, CertError> {
    let text = value.trim();
    if text.contains("-----BEGIN") {
        return Ok(Imported { material: parse_pem(text.as_bytes())?, was_pem: true });
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = STANDARD.decode(compact.as_bytes()).map_err(|_| CertError::Invalid(BAD_PFX.to_string()))?;
    if String::from_utf8_lossy(&bytes).contains("-----BEGIN") {
        return Ok(Imported { material: parse_pem(&bytes)?, was_pem: true });
    }
    let store =
        p12_keystore::KeyStore::from_pkcs12(&bytes, password.unwrap_or(""), p12_keystore::Pkcs12ImportPolicy::Relaxed)
            .map_err(|_| CertError::Invalid(BAD_PFX.to_string()))?;
    let mut key = None;
    let mut chain = Vec::new();
    for (_, entry) in store.entries() {
        match entry {
            p12_keystore::KeyStoreEntry::PrivateKeyChain(kc) => {
                key = Some(kc.key().as_der().to_vec());
                chain.extend(kc.certs().iter().map(|c| c.as_der().to_vec()));
            }
            p12_keystore::KeyStoreEntry::Certificate(c) => chain.push(c.as_der().to_vec()),
            p12_keystore::KeyStoreEntry::Secret(_) => {}
        }
    }
    let key = key.ok_or_else(|| {
        CertError::Invalid(
            "The specified PKCS#12 X.509 certificate content does not contain a private key.".to_string(),
        )
    })?;
    dedup(&mut chain);
    Ok(Imported { material: order_chain(key, chain)?, was_pem: false })
}

fn dedup(chain: &mut Vec<Vec<u8>>) {
    let mut seen = std::collections::HashSet::new();
    chain.retain(|c| seen.insert(c.clone()));
}

fn parse_pem(bytes: &[u8]) -> Result<Material, CertError> {
    let mut chain = Vec::new();
    for cert in CertificateDer::pem_slice_iter(bytes) {
        chain.push(cert.map_err(|_| CertError::Invalid(BAD_PEM.to_string()))?.to_vec());
    }
    if chain.is_empty() {
        return Err(CertError::Invalid(BAD_PEM.to_string()));
    }
    let key = match PrivateKeyDer::from_pem_slice(bytes) {
        Ok(PrivateKeyDer::Pkcs8(k)) => k.secret_pkcs8_der().to_vec(),
        // Key Vault takes only PKCS#8 keys in PEM imports.
        Ok(_) => {
            return Err(CertError::Invalid(
                "The specified PEM X.509 certificate content has a private key that is not in PKCS#8 format."
                    .to_string(),
            ));
        }
        Err(_) => {
            return Err(CertError::Invalid(
                "The specified PEM X.509 certificate content does not contain a private key.".to_string(),
            ));
        }
    };
    dedup(&mut chain);
    order_chain(key, chain)
}

/// Puts the certificate matching the key first, then follows issuer links; the rest keep their order.
fn order_chain(key: Vec<u8>, chain: Vec<Vec<u8>>) -> Result<Material, CertError> {
    let spki = KeyPair::try_from(key.as_slice())
        .map(|k| k.subject_public_key_info())
        .map_err(|_| CertError::Invalid("The private key could not be read.".to_string()))?;
    let parsed: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = chain
        .iter()
        .map(|der| {
            x509_parser::parse_x509_certificate(der)
                .map(|(_, c)| {
                    (
                        c.tbs_certificate.subject_pki.raw.to_vec(),
                        c.subject().as_raw().to_vec(),
                        c.issuer().as_raw().to_vec(),
                    )
                })
                .map_err(|_| CertError::Invalid(BAD_PEM.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let leaf = parsed.iter().position(|(pk, _, _)| *pk == spki).ok_or_else(|| {
        CertError::Invalid("The private key does not match the certificate's public key.".to_string())
    })?;
    let mut order = vec![leaf];
    while let Some(&last) = order.last() {
        let issuer = &parsed[last].2;
        if parsed[last].1 == *issuer {
            break; // self-signed: the end of the chain
        }
        match parsed.iter().enumerate().position(|(i, (_, subject, _))| !order.contains(&i) && subject == issuer) {
            Some(next) => order.push(next),
            None => break,
        }
    }
    let rest: Vec<usize> = (0..chain.len()).filter(|i| !order.contains(i)).collect();
    order.extend(rest);
    Ok(Material { key_pkcs8: Some(key), chain: order.into_iter().map(|i| chain[i].clone()).collect() })
}

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct CertInfo {
    /// Subject, RFC 4514-ish (`CN=…`).
    pub subject: String,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// Not before, Unix seconds.
    pub not_before: i64,
    /// Not after, Unix seconds.
    pub not_after: i64,
    /// `RSA` or `EC`.
    pub key_type: KeyType,
    /// RSA modulus bits (0 for EC).
    pub key_size: u32,
}

impl CertInfo {
    /// Reads a DER certificate.
    pub fn read(der: &[u8]) -> Result<Self, CertError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|_| CertError::Invalid(BAD_PEM.to_string()))?;
        let mut dns_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(n) = name {
                    dns_names.push((*n).to_string());
                }
            }
        }
        let (key_type, key_size) = match cert.public_key().parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
                (KeyType::Rsa, u32::try_from(rsa.key_size()).unwrap_or(0))
            }
            _ => (KeyType::Ec, 0),
        };
        Ok(Self {
            subject: cert.subject().to_string(),
            dns_names,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            key_type,
            key_size,
        })
    }
}

/// `x5t`: base64url (no padding) SHA-1 of the DER certificate.
pub fn x5t(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(key_type: KeyType) -> GenSpec {
        GenSpec {
            subject: "CN=*.example.com".into(),
            dns_names: vec!["*.example.com".into(), "example.com".into()],
            key_type,
            key_size: 2048,
            validity_months: 12,
        }
    }

    #[test]
    fn generates_rsa_and_ec_certificates_with_the_policy_sans() {
        for kt in [KeyType::Rsa, KeyType::Ec] {
            let m = generate(&spec(kt), None).expect("generated");
            let info = CertInfo::read(m.leaf()).expect("reads");
            assert_eq!(info.dns_names, vec!["*.example.com", "example.com"]);
            assert_eq!(info.subject, "CN=*.example.com");
            assert_eq!(info.key_type, kt);
            let days = (info.not_after - info.not_before) / 86_400;
            assert!((360..=372).contains(&days), "{days}");
        }
    }

    #[test]
    fn pkcs12_round_trips_with_an_empty_password_leaf_first() {
        let (ca, _) = CertAuthority::generate("test CA").expect("ca");
        let m = generate(&spec(KeyType::Rsa), Some(&ca)).expect("generated");
        assert_eq!(m.chain.len(), 2);
        let p12 = STANDARD.encode(m.to_pkcs12().expect("p12"));
        let back = parse_import(&p12, None).expect("imports");
        assert_eq!(back.material, m);
        assert!(!back.was_pem);
    }

    #[test]
    fn pem_imports_in_any_order_come_back_leaf_first() {
        let (ca, _) = CertAuthority::generate("test CA").expect("ca");
        let m = generate(&spec(KeyType::Ec), Some(&ca)).expect("generated");
        let reversed = Material { key_pkcs8: m.key_pkcs8.clone(), chain: m.chain.iter().rev().cloned().collect() };
        let pem = reversed.to_pem();
        assert_eq!(parse_import(&pem, None).expect("text").material, m);
        assert_eq!(parse_import(&STANDARD.encode(pem.as_bytes()), None).expect("base64").material, m);
    }

    #[test]
    fn rejects_pem_without_a_key_and_garbage() {
        let m = generate(&spec(KeyType::Ec), None).expect("generated");
        assert!(matches!(parse_import(&m.without_key().to_pem(), None), Err(CertError::Invalid(_))));
        assert!(matches!(parse_import("not a certificate", None), Err(CertError::Invalid(_))));
    }

    #[test]
    fn x5t_is_27_characters() {
        let m = generate(&spec(KeyType::Ec), None).expect("generated");
        assert_eq!(x5t(m.leaf()).len(), 27);
    }
}
