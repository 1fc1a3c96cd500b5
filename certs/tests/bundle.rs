//! Table tests: real chains (RSA and EC) generated per test, stored in every order and in every
//! container Key Vault uses (PKCS#12 modern and legacy, PEM), come out leaf first and checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use base64::Engine;
use p12_keystore::{
    Certificate as P12Cert, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey as P12Key,
    PrivateKeyChain,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyIdMethod, KeyPair, SignatureAlgorithm, date_time_ymd,
};
use routewarden_certs::*;

const NOW: &str = "2030-06-01T00:00:00Z";

fn now() -> jiff::Timestamp {
    NOW.parse().unwrap()
}

struct Issued {
    der: Vec<u8>,
    key: KeyPair,
    params: CertificateParams,
}

impl Issued {
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

struct Spec<'a> {
    cn: &'a str,
    ca: bool,
    sans: &'a [&'a str],
    valid: (i32, i32),
    ski: Option<Vec<u8>>,
}

fn spec(cn: &str) -> Spec<'_> {
    Spec { cn, ca: false, sans: &[], valid: (2030, 2031), ski: None }
}

fn issue(s: Spec<'_>, alg: &'static SignatureAlgorithm, by: Option<&Issued>) -> Issued {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut params = CertificateParams::new(s.sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, s.cn);
    params.not_before = date_time_ymd(s.valid.0, 1, 1);
    params.not_after = date_time_ymd(s.valid.1, 1, 1);
    params.use_authority_key_identifier_extension = by.is_some();
    params.key_identifier_method = match s.ski {
        Some(ski) => KeyIdMethod::PreSpecified(ski),
        None => KeyIdMethod::Sha256,
    };
    if s.ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let cert = match by {
        Some(parent) => params.signed_by(&key, &parent.issuer()).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    Issued { der: cert.der().to_vec(), key, params }
}

/// root → intermediate → leaf for `*.contoso.com`.
struct Pki {
    root: Issued,
    inter: Issued,
    leaf: Issued,
}

fn pki(alg: &'static SignatureAlgorithm) -> Pki {
    let root = issue(Spec { ca: true, valid: (2020, 2040), ..spec("Contoso Root") }, alg, None);
    let inter = issue(Spec { ca: true, valid: (2025, 2035), ..spec("Contoso Issuing CA") }, alg, Some(&root));
    let leaf = issue(Spec { sans: &["*.contoso.com", "contoso.com"], ..spec("*.contoso.com") }, alg, Some(&inter));
    Pki { root, inter, leaf }
}

fn pem_of(key: Option<&KeyPair>, certs: &[&[u8]]) -> String {
    let mut out = key.map(|k| k.serialize_pem()).unwrap_or_default();
    for c in certs {
        out.push_str(&pem::encode(&pem::Pem::new("CERTIFICATE", c.to_vec())));
    }
    out
}

fn pfx_of(key: &KeyPair, certs: &[&[u8]], enc: EncryptionAlgorithm, mac: MacAlgorithm) -> String {
    let chain = PrivateKeyChain::new(
        vec![1u8, 2, 3],
        P12Key::from_der(&key.serialize_der()).unwrap(),
        certs.iter().map(|c| P12Cert::from_der(c).unwrap()),
    );
    let mut ks = KeyStore::new();
    ks.add_entry("cert", KeyStoreEntry::PrivateKeyChain(chain));
    let der = ks.writer("").encryption_algorithm(enc).mac_algorithm(mac).write().unwrap();
    base64::engine::general_purpose::STANDARD.encode(der)
}

fn expect(hostname: Option<&str>) -> Expectations<'_> {
    Expectations { now: now(), hostname, hostname_policy: HostnamePolicy::Refuse }
}

fn assemble_value(value: &str, content_type: Option<&str>, hostname: Option<&str>) -> Result<Bundle, CheckFailure> {
    let material = decode_secret(value, ContentType::from_key_vault(content_type, value)).expect("decodes");
    assemble(material, &expect(hostname))
}

#[test]
fn orders_the_chain_leaf_first_whatever_the_stored_order_and_container() {
    let algs: &[(&str, &'static SignatureAlgorithm)] = &[
        ("RSA 2048", &rcgen::PKCS_RSA_SHA256),
        ("EC P-256", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("EC P-384", &rcgen::PKCS_ECDSA_P384_SHA384),
    ];
    for (alg_name, alg) in algs {
        let p = pki(alg);
        let (l, i, r) = (p.leaf.der.as_slice(), p.inter.der.as_slice(), p.root.der.as_slice());
        let orders: &[(&str, Vec<&[u8]>)] = &[
            ("leaf first", vec![l, i, r]),
            ("root first", vec![r, i, l]),
            ("intermediate first", vec![i, l, r]),
            ("root, leaf, intermediate", vec![r, l, i]),
            ("no root", vec![i, l]),
        ];
        for (order, certs) in orders {
            let containers: Vec<(&str, String, &str)> = vec![
                ("PEM", pem_of(Some(&p.leaf.key), certs), "application/x-pem-file"),
                (
                    "PKCS#12 modern (PBES2 AES-256, SHA-256 MAC)",
                    pfx_of(
                        &p.leaf.key,
                        certs,
                        EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
                        MacAlgorithm::HmacSha256,
                    ),
                    "application/x-pkcs12",
                ),
                (
                    "PKCS#12 legacy (3DES, SHA-1 MAC)",
                    pfx_of(
                        &p.leaf.key,
                        certs,
                        EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
                        MacAlgorithm::HmacSha1,
                    ),
                    "application/x-pkcs12",
                ),
                (
                    "PKCS#12 legacy (RC2-40, SHA-1 MAC)",
                    pfx_of(&p.leaf.key, certs, EncryptionAlgorithm::PbeWithShaAnd40BitRc4Cbc, MacAlgorithm::HmacSha1),
                    "application/x-pkcs12",
                ),
            ];
            for (container, value, ct) in containers {
                let what = format!("{alg_name}, {order}, {container}");
                let b =
                    assemble_value(&value, Some(ct), Some("www.contoso.com")).unwrap_or_else(|e| panic!("{what}: {e}"));
                let subjects: Vec<&str> = b.chain.iter().map(|c| c.subject.as_str()).collect();
                assert_eq!(subjects, ["CN=*.contoso.com", "CN=Contoso Issuing CA"], "{what}");
                assert_eq!(b.root.is_some(), certs.contains(&r), "{what}: the root is kept apart");
                let crt = pem::parse_many(b.tls_crt(false)).unwrap();
                assert_eq!(crt.len(), 2, "{what}: tls.crt leaves the root out");
                assert_eq!(crt[0].contents(), l, "{what}: leaf first");
                assert_eq!(crt[1].contents(), i, "{what}");
                let with_root = pem::parse_many(b.tls_crt(true)).unwrap();
                assert_eq!(with_root.len(), 2 + usize::from(b.root.is_some()), "{what}: root on request");
                let key =
                    PrivateKey::from_pem_block(&pem::parse(b.tls_key(KeyFormat::Pkcs8).unwrap().as_bytes()).unwrap())
                        .unwrap();
                assert_eq!(
                    key.public_key_bits().unwrap(),
                    routewarden_certs::Cert::from_der(l).unwrap_or_else(|e| panic!("{e}")).public_key_bits().to_vec(),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn drops_certificates_that_belong_to_no_chain() {
    let p = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
    let stranger = issue(Spec { ca: true, ..spec("Unrelated CA") }, &rcgen::PKCS_ECDSA_P256_SHA256, None);
    let value = pem_of(Some(&p.leaf.key), &[&stranger.der, &p.inter.der, &p.leaf.der]);
    let b = assemble_value(&value, None, None).unwrap();
    assert_eq!((b.chain.len(), b.dropped), (2, 1));
}

#[test]
fn writes_the_key_in_the_requested_format() {
    let cases: &[(&str, &'static SignatureAlgorithm, &str)] = &[
        ("RSA", &rcgen::PKCS_RSA_SHA256, "RSA PRIVATE KEY"),
        ("EC P-256", &rcgen::PKCS_ECDSA_P256_SHA256, "EC PRIVATE KEY"),
        ("EC P-384", &rcgen::PKCS_ECDSA_P384_SHA384, "EC PRIVATE KEY"),
    ];
    for (what, alg, traditional) in cases {
        let p = pki(alg);
        let b = assemble_value(&pem_of(Some(&p.leaf.key), &[&p.leaf.der, &p.inter.der]), None, None).unwrap();
        let pkcs8 = b.tls_key(KeyFormat::Pkcs8).unwrap();
        let trad = b.tls_key(KeyFormat::Traditional).unwrap();
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"), "{what}");
        assert!(trad.starts_with(&format!("-----BEGIN {traditional}-----")), "{what}: {}", &trad[..40]);
        // Both forms read back to the same key.
        let a = PrivateKey::from_pem_block(&pem::parse(pkcs8.as_bytes()).unwrap()).unwrap();
        let t = PrivateKey::from_pem_block(&pem::parse(trad.as_bytes()).unwrap()).unwrap();
        assert_eq!(a.public_key_bits().unwrap(), t.public_key_bits().unwrap(), "{what}");
        assert_eq!(a.kind(), t.kind(), "{what}");
    }
}

#[test]
fn each_bad_bundle_fails_its_own_check() {
    let p = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
    let other = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
    let alg = &rcgen::PKCS_ECDSA_P256_SHA256;
    // An impostor intermediate: same name and key identifier as the real one, different key.
    let real_ski = {
        let c = routewarden_certs::Cert::from_der(&p.inter.der).unwrap();
        c.subject_key_id().unwrap().to_vec()
    };
    let impostor = issue(
        Spec { ca: true, ski: Some(real_ski), valid: (2025, 2035), ..spec("Contoso Issuing CA") },
        alg,
        Some(&p.root),
    );
    let expired_leaf =
        issue(Spec { sans: &["*.contoso.com"], valid: (2029, 2030), ..spec("expired") }, alg, Some(&p.inter));
    let future_leaf =
        issue(Spec { sans: &["*.contoso.com"], valid: (2031, 2032), ..spec("future") }, alg, Some(&p.inter));
    let expired_inter = issue(Spec { ca: true, valid: (2020, 2029), ..spec("Old Issuing CA") }, alg, Some(&p.root));
    let leaf_of_expired = issue(Spec { sans: &["*.contoso.com"], ..spec("leaf") }, alg, Some(&expired_inter));
    let cases: Vec<(&str, String, Option<&str>, Check)> = vec![
        ("no private key (not exportable)", pem_of(None, &[&p.leaf.der, &p.inter.der]), None, Check::KeyNotExportable),
        (
            "key of another certificate",
            pem_of(Some(&other.leaf.key), &[&p.leaf.der, &p.inter.der]),
            None,
            Check::KeyMismatch,
        ),
        (
            "intermediate that did not sign the leaf",
            pem_of(Some(&p.leaf.key), &[&p.leaf.der, &impostor.der]),
            None,
            Check::ChainBroken,
        ),
        ("expired leaf", pem_of(Some(&expired_leaf.key), &[&expired_leaf.der, &p.inter.der]), None, Check::Expired),
        (
            "leaf not valid yet",
            pem_of(Some(&future_leaf.key), &[&future_leaf.der, &p.inter.der]),
            None,
            Check::NotYetValid,
        ),
        (
            "expired intermediate",
            pem_of(Some(&leaf_of_expired.key), &[&leaf_of_expired.der, &expired_inter.der]),
            None,
            Check::Expired,
        ),
        (
            "hostname outside the SANs",
            pem_of(Some(&p.leaf.key), &[&p.leaf.der]),
            Some("www.fabrikam.com"),
            Check::HostnameNotCovered,
        ),
        (
            "hostname two labels below a wildcard",
            pem_of(Some(&p.leaf.key), &[&p.leaf.der]),
            Some("a.b.contoso.com"),
            Check::HostnameNotCovered,
        ),
    ];
    for (what, value, host, check) in cases {
        let err = assemble_value(&value, None, host).expect_err(what);
        assert_eq!(err.check, check, "{what}: {err}");
        assert!(err.to_string().starts_with(check.reason()), "{what}: {err}");
    }
}

#[test]
fn a_hostname_mismatch_only_warns_under_the_warn_policy() {
    let p = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
    let value = pem_of(Some(&p.leaf.key), &[&p.leaf.der, &p.inter.der]);
    let material = decode_secret(&value, ContentType::Pem).unwrap();
    let warn = Expectations { now: now(), hostname: Some("www.fabrikam.com"), hostname_policy: HostnamePolicy::Warn };
    let b = assemble(material, &warn).unwrap();
    assert_eq!(b.warnings.iter().map(|w| w.check).collect::<Vec<_>>(), [Check::HostnameNotCovered]);
}

#[test]
fn matches_wildcard_sans_like_browsers() {
    let cases = [
        ("*.contoso.com", "www.contoso.com", true),
        ("*.contoso.com", "WWW.Contoso.com.", true),
        ("*.contoso.com", "contoso.com", false),
        ("*.contoso.com", "a.b.contoso.com", false),
        ("*.contoso.com", "*.contoso.com", true),
        ("*.contoso.com", "www.contoso.com.evil.org", false),
        ("contoso.com", "contoso.com", true),
        ("www.contoso.com", "api.contoso.com", false),
    ];
    for (pattern, host, covered) in cases {
        assert_eq!(san_covers(pattern, host), covered, "{pattern} vs {host}");
    }
}

#[test]
fn unreadable_secrets_get_a_clear_error() {
    let p = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
    let two_keys = format!("{}{}", pem_of(Some(&p.leaf.key), &[&p.leaf.der]), p.inter.key.serialize_pem());
    let der = base64::engine::general_purpose::STANDARD
        .decode(pfx_of(
            &p.leaf.key,
            &[&p.leaf.der],
            EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
            MacAlgorithm::HmacSha256,
        ))
        .unwrap();
    let mut with_password = KeyStore::new();
    with_password.add_entry(
        "c",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
            vec![1u8],
            P12Key::from_der(&p.leaf.key.serialize_der()).unwrap(),
            [P12Cert::from_der(&p.leaf.der).unwrap()],
        )),
    );
    let locked = base64::engine::general_purpose::STANDARD.encode(with_password.writer("secret").write().unwrap());
    let cases: Vec<(&str, String, ContentType, &str)> = vec![
        ("not base64", "%%%".into(), ContentType::Pkcs12, "not base64"),
        (
            "base64 of garbage",
            base64::engine::general_purpose::STANDARD.encode(b"hello"),
            ContentType::Pkcs12,
            "not a PKCS#12",
        ),
        (
            "truncated archive",
            base64::engine::general_purpose::STANDARD.encode(&der[..der.len() / 2]),
            ContentType::Pkcs12,
            "not a PKCS#12",
        ),
        ("password-protected archive", locked, ContentType::Pkcs12, "not a PKCS#12"),
        ("PEM without certificates", p.leaf.key.serialize_pem(), ContentType::Pem, "no certificate"),
        ("PEM with two keys", two_keys, ContentType::Pem, "2 private keys"),
    ];
    for (what, value, ct, msg) in cases {
        let err = decode_secret(&value, ct).expect_err(what);
        assert!(err.to_string().contains(msg), "{what}: {err}");
    }
}

#[test]
fn key_material_never_shows_in_debug_output() {
    let p = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
    let b = assemble_value(&pem_of(Some(&p.leaf.key), &[&p.leaf.der, &p.inter.der]), None, None).unwrap();
    let debug = format!("{b:?}");
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(p.leaf.key.serialize_der());
    assert!(!debug.contains(&key_b64[..32]), "the private key leaked into Debug output");
    assert!(debug.contains("PrivateKey"));
}

#[test]
fn x5t_is_the_base64url_sha1_thumbprint() {
    let p = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
    let leaf = routewarden_certs::Cert::from_der(&p.leaf.der).unwrap();
    let inter = routewarden_certs::Cert::from_der(&p.inter.der).unwrap();
    assert_eq!(leaf.x5t().len(), 27, "20 bytes, base64url without padding");
    assert!(!leaf.x5t().contains(['+', '/', '=']));
    assert_ne!(leaf.x5t(), inter.x5t());
}
