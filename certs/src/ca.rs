//! An Istio plug-in CA as Key Vault holds it: four PEM objects (`root-cert`, `ca-cert`, `ca-key`,
//! `cert-chain`) that istiod reads from the `cacerts` Secret. [`validate`] decides whether a set
//! of the four may be written, running an ordered chain of named checks — the first that fails
//! names the condition reason and the object it is about:
//!
//! | check | fails when |
//! |---|---|
//! | `Undecodable` | an object is not PEM, holds no certificate (no key for `ca-key`), or `ca-cert` holds more than one |
//! | `NotCA` | a root in `root-cert`, `ca-cert` or a certificate of `cert-chain` lacks basicConstraints CA=true |
//! | `NotYetValid` / `Expired` | any of those certificates is outside its validity window |
//! | `KeyMismatch` | `ca-key` is not the key of `ca-cert` |
//! | `ChainBroken` | `cert-chain` does not run `ca-cert` → intermediates → a root of `root-cert`, each link signed by the next |
//!
//! The objects are updated in Key Vault one at a time, so a set read between two updates is
//! inconsistent: `KeyMismatch` and `ChainBroken` are what such a set looks like
//! ([`CaError::explained_by_partial_update`]); the caller waits before it calls them final.
//! Nothing here keeps or prints key material: errors name objects and certificate subjects only.

use crate::bundle::{Cert, ContentType, decode_secret};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One of the four objects, named as the `cacerts` key it becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CaObject {
    RootCert,
    CaCert,
    CaKey,
    CertChain,
}

impl CaObject {
    pub const ALL: [CaObject; 4] = [CaObject::RootCert, CaObject::CaCert, CaObject::CaKey, CaObject::CertChain];

    /// The key in the `cacerts` Secret.
    pub fn file(self) -> &'static str {
        match self {
            CaObject::RootCert => "root-cert.pem",
            CaObject::CaCert => "ca-cert.pem",
            CaObject::CaKey => "ca-key.pem",
            CaObject::CertChain => "cert-chain.pem",
        }
    }

    /// The Key Vault secret name the AKS add-on documents (and the default).
    pub fn default_name(self) -> &'static str {
        self.file().trim_end_matches(".pem")
    }
}

impl fmt::Display for CaObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.default_name())
    }
}

/// The checks, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaCheck {
    Undecodable,
    NotCa,
    NotYetValid,
    Expired,
    KeyMismatch,
    ChainBroken,
}

impl CaCheck {
    pub const ALL: [CaCheck; 6] = [
        CaCheck::Undecodable,
        CaCheck::NotCa,
        CaCheck::NotYetValid,
        CaCheck::Expired,
        CaCheck::KeyMismatch,
        CaCheck::ChainBroken,
    ];

    /// The condition reason (and metric label).
    pub fn reason(self) -> &'static str {
        match self {
            CaCheck::Undecodable => "Undecodable",
            CaCheck::NotCa => "NotCA",
            CaCheck::NotYetValid => "NotYetValid",
            CaCheck::Expired => "Expired",
            CaCheck::KeyMismatch => "KeyMismatch",
            CaCheck::ChainBroken => "ChainBroken",
        }
    }
}

/// A failed check: which, about which object, and why (subjects, never key material).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {message}")]
pub struct CaError {
    pub check: CaCheck,
    pub object: CaObject,
    pub message: String,
}

impl CaError {
    /// Whether a set caught between two of Key Vault's one-at-a-time updates fails like this: a
    /// key from one generation with a certificate from another, or a chain that does not meet.
    pub fn explained_by_partial_update(&self) -> bool {
        matches!(self.check, CaCheck::KeyMismatch | CaCheck::ChainBroken)
    }
}

fn fail(check: CaCheck, object: CaObject, message: impl Into<String>) -> CaError {
    CaError { check, object, message: message.into() }
}

/// The four objects' PEM text.
#[derive(Clone, Copy)]
pub struct CaPems<'a> {
    pub root_cert: &'a str,
    pub ca_cert: &'a str,
    pub ca_key: &'a str,
    pub cert_chain: &'a str,
}

impl fmt::Debug for CaPems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaPems").finish_non_exhaustive()
    }
}

/// What a valid set holds, for status, metrics and the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaBundle {
    /// SHA-256 fingerprints (lower-case hex) of the roots in `root-cert`: the trust bundle.
    pub root_fingerprints: BTreeSet<String>,
    pub ca_subject: String,
    pub ca_not_after: jiff::Timestamp,
    /// The first certificate of each certificate object (no entry for `ca-key`).
    pub objects: BTreeMap<CaObject, CertFacts>,
}

/// Public facts of an object's first certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFacts {
    /// Key Vault-style thumbprint (base64url SHA-1), as the certificate journal shows it.
    pub x5t: String,
    pub not_before: jiff::Timestamp,
    pub not_after: jiff::Timestamp,
}

/// SHA-256 of the DER certificate, lower-case hex.
pub fn fingerprint(cert: &Cert) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert.der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn certificates(object: CaObject, pem: &str) -> Result<Vec<Cert>, CaError> {
    decode_secret(pem, ContentType::Pem)
        .map(|m| m.certs)
        .map_err(|e| fail(CaCheck::Undecodable, object, format!("not a PEM certificate list: {e}")))
}

/// The trust bundle of a `root-cert.pem`: its certificates' fingerprints.
pub fn root_fingerprints(root_cert: &str) -> Result<BTreeSet<String>, CaError> {
    Ok(certificates(CaObject::RootCert, root_cert)?.iter().map(fingerprint).collect())
}

/// Runs the checks of the module docs over one set of the four objects.
pub fn validate(pems: &CaPems<'_>, now: jiff::Timestamp) -> Result<CaBundle, CaError> {
    let roots = certificates(CaObject::RootCert, pems.root_cert)?;
    let mut ca = certificates(CaObject::CaCert, pems.ca_cert)?;
    if ca.len() > 1 {
        return Err(fail(
            CaCheck::Undecodable,
            CaObject::CaCert,
            format!("holds {} certificates; it must hold only the signing certificate", ca.len()),
        ));
    }
    let ca = ca.remove(0);
    let key =
        key_only(pems.ca_key)?.ok_or_else(|| fail(CaCheck::Undecodable, CaObject::CaKey, "holds no private key"))?;
    let chain = certificates(CaObject::CertChain, pems.cert_chain)?;

    let all = || {
        roots
            .iter()
            .map(|c| (CaObject::RootCert, c))
            .chain([(CaObject::CaCert, &ca)])
            .chain(chain.iter().map(|c| (CaObject::CertChain, c)))
    };
    for (object, c) in all() {
        if !c.is_ca {
            return Err(fail(
                CaCheck::NotCa,
                object,
                format!("{:?} is not a CA certificate (basicConstraints CA=true is missing)", c.subject),
            ));
        }
    }
    for (object, c) in all() {
        if c.not_before > now {
            return Err(fail(
                CaCheck::NotYetValid,
                object,
                format!("{:?} is not valid before {}", c.subject, c.not_before),
            ));
        }
        if c.not_after <= now {
            return Err(fail(CaCheck::Expired, object, format!("{:?} expired at {}", c.subject, c.not_after)));
        }
    }
    let public = key.public_key_bits().map_err(|e| fail(CaCheck::Undecodable, CaObject::CaKey, e.to_string()))?;
    if public != ca.public_key_bits() {
        return Err(fail(CaCheck::KeyMismatch, CaObject::CaKey, format!("is not the key of ca-cert {:?}", ca.subject)));
    }
    check_chain(&roots, &ca, &chain)?;

    let facts = |c: &Cert| CertFacts { x5t: c.x5t(), not_before: c.not_before, not_after: c.not_after };
    let mut objects = BTreeMap::from([(CaObject::CaCert, facts(&ca))]);
    if let Some(r) = roots.first() {
        objects.insert(CaObject::RootCert, facts(r));
    }
    if let Some(c) = chain.first() {
        objects.insert(CaObject::CertChain, facts(c));
    }
    Ok(CaBundle {
        root_fingerprints: roots.iter().map(fingerprint).collect(),
        ca_subject: ca.subject.clone(),
        ca_not_after: ca.not_after,
        objects,
    })
}

fn key_only(pem: &str) -> Result<Option<crate::key::PrivateKey>, CaError> {
    let blocks = pem::parse_many(pem)
        .map_err(|e| fail(CaCheck::Undecodable, CaObject::CaKey, format!("not a PEM private key: {e}")))?;
    let mut keys = blocks.iter().filter(|b| b.tag().ends_with("PRIVATE KEY"));
    let key = keys
        .next()
        .map(crate::key::PrivateKey::from_pem_block)
        .transpose()
        .map_err(|e| fail(CaCheck::Undecodable, CaObject::CaKey, format!("not a usable private key: {e}")))?;
    if keys.next().is_some() {
        return Err(fail(CaCheck::Undecodable, CaObject::CaKey, "holds more than one private key"));
    }
    Ok(key)
}

/// `cert-chain` must start with `ca-cert`, each certificate signed by the next, and end at a
/// root of `root-cert` (included or not).
fn check_chain(roots: &[Cert], ca: &Cert, chain: &[Cert]) -> Result<(), CaError> {
    let broken = |object, message: String| Err(fail(CaCheck::ChainBroken, object, message));
    let Some(first) = chain.first() else { return broken(CaObject::CertChain, "holds no certificate".into()) };
    if first.der != ca.der {
        return broken(
            CaObject::CertChain,
            format!("starts with {:?}, not with ca-cert {:?}", first.subject, ca.subject),
        );
    }
    for pair in chain.windows(2) {
        let (child, parent) = (&pair[0], &pair[1]);
        if !(child.names_as_issuer(parent) && child.is_signed_by(parent)) {
            return broken(
                CaObject::CertChain,
                format!("{:?} is not signed by the next certificate {:?}", child.subject, parent.subject),
            );
        }
    }
    let last = chain.last().unwrap_or(first);
    let anchored = roots.iter().any(|r| r.der == last.der || (last.names_as_issuer(r) && last.is_signed_by(r)));
    if anchored {
        return Ok(());
    }
    if chain.len() == 1 {
        broken(CaObject::CaCert, format!("{:?} is not issued by any root in root-cert", ca.subject))
    } else {
        broken(
            CaObject::CertChain,
            format!("ends with {:?}, which is neither a root in root-cert nor issued by one", last.subject),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};

    /// A CA certificate and its key, PEM.
    struct Ca {
        pem: String,
        key: KeyPair,
        params: CertificateParams,
    }

    fn params(cn: &str, ca: bool, expired: bool) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        if ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        if expired {
            p.not_before = date_time_ymd(2020, 1, 1);
            p.not_after = date_time_ymd(2021, 1, 1);
        }
        p
    }

    fn root(cn: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let params = params(cn, true, false);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { pem, key, params }
    }

    fn issue(parent: &Ca, cn: &str, ca: bool, expired: bool) -> Ca {
        let key = KeyPair::generate().unwrap();
        let params = params(cn, ca, expired);
        let issuer = Issuer::from_params(&parent.params, &parent.key);
        let pem = params.signed_by(&key, &issuer).unwrap().pem();
        Ca { pem, key, params }
    }

    /// The four objects for `ca` under `roots` (cert-chain = ca-cert + the issuing root).
    fn set(roots: &[&Ca], ca: &Ca, issuing_root: &Ca) -> [String; 4] {
        [
            roots.iter().map(|r| r.pem.as_str()).collect(),
            ca.pem.clone(),
            ca.key.serialize_pem(),
            format!("{}{}", ca.pem, issuing_root.pem),
        ]
    }

    fn check(s: &[String; 4]) -> Result<CaBundle, CaError> {
        validate(&CaPems { root_cert: &s[0], ca_cert: &s[1], ca_key: &s[2], cert_chain: &s[3] }, jiff::Timestamp::now())
    }

    #[test]
    fn a_consistent_set_is_valid_and_names_its_trust_bundle() {
        let r = root("Root A");
        let ca = issue(&r, "Intermediate A1", true, false);
        let bundle = check(&set(&[&r], &ca, &r)).unwrap();
        assert_eq!(bundle.root_fingerprints, root_fingerprints(&r.pem).unwrap());
        assert_eq!(bundle.root_fingerprints.len(), 1);
        assert_eq!(bundle.ca_subject, "CN=Intermediate A1");
        assert!(bundle.objects.contains_key(&CaObject::CaCert) && !bundle.objects.contains_key(&CaObject::CaKey));
    }

    #[test]
    fn both_roots_of_a_rotation_are_trusted_and_either_may_issue() {
        let (a, b) = (root("Root A"), root("Root B"));
        let ca_b = issue(&b, "Intermediate B1", true, false);
        let bundle = check(&set(&[&a, &b], &ca_b, &b)).unwrap();
        assert_eq!(bundle.root_fingerprints.len(), 2);
        // cert-chain without the root: the last link is issued by a root of root-cert.
        let mut s = set(&[&a, &b], &ca_b, &b);
        s[3] = ca_b.pem.clone();
        check(&s).unwrap();
    }

    #[test]
    fn a_multi_level_chain_is_followed_link_by_link() {
        let r = root("Root A");
        let mid = issue(&r, "Regional CA", true, false);
        let ca = issue(&mid, "Cluster CA", true, false);
        let mut s = set(&[&r], &ca, &r);
        s[3] = format!("{}{}{}", ca.pem, mid.pem, r.pem);
        check(&s).unwrap();
        // Skipping the middle link breaks the chain at ca-cert.
        s[3] = format!("{}{}", ca.pem, r.pem);
        let e = check(&s).unwrap_err();
        assert_eq!((e.check, e.object), (CaCheck::ChainBroken, CaObject::CertChain), "{e}");
    }

    #[test]
    fn each_bad_set_fails_with_its_check_and_object() {
        let (a, b) = (root("Root A"), root("Root B"));
        let a1 = issue(&a, "Intermediate A1", true, false);
        let a2 = issue(&a, "Intermediate A2", true, false);
        let b1 = issue(&b, "Intermediate B1", true, false);
        let leafish = issue(&a, "Not a CA", false, false);
        let expired = issue(&a, "Expired Intermediate", true, true);
        let good = set(&[&a], &a1, &a);
        let with = |i: usize, v: String| {
            let mut s = good.clone();
            s[i] = v;
            s
        };
        let cases: Vec<(&str, [String; 4], CaCheck, CaObject, &str)> = vec![
            ("root-cert not PEM", with(0, "hello".into()), CaCheck::Undecodable, CaObject::RootCert, ""),
            ("ca-key holds no key", with(2, a1.pem.clone()), CaCheck::Undecodable, CaObject::CaKey, "no private key"),
            (
                "ca-cert holds two",
                with(1, format!("{}{}", a1.pem, a2.pem)),
                CaCheck::Undecodable,
                CaObject::CaCert,
                "2 certificates",
            ),
            ("root not a CA", with(0, leafish.pem.clone()), CaCheck::NotCa, CaObject::RootCert, "Not a CA"),
            ("ca-cert not a CA", set(&[&a], &leafish, &a), CaCheck::NotCa, CaObject::CaCert, "Not a CA"),
            (
                "expired intermediate",
                set(&[&a], &expired, &a),
                CaCheck::Expired,
                CaObject::CaCert,
                "Expired Intermediate",
            ),
            ("key of another CA", with(2, a2.key.serialize_pem()), CaCheck::KeyMismatch, CaObject::CaKey, "A1"),
            (
                "chain of the previous intermediate",
                with(3, format!("{}{}", a2.pem, a.pem)),
                CaCheck::ChainBroken,
                CaObject::CertChain,
                "not with ca-cert",
            ),
            ("ca-cert under another root", set(&[&a], &b1, &b), CaCheck::ChainBroken, CaObject::CertChain, "Root B"),
            (
                "ca-cert under another root, chain without root",
                [a.pem.clone(), b1.pem.clone(), b1.key.serialize_pem(), b1.pem.clone()],
                CaCheck::ChainBroken,
                CaObject::CaCert,
                "not issued by any root",
            ),
        ];
        for (what, s, check_, object, says) in cases {
            let e = check(&s).expect_err(what);
            assert_eq!((e.check, e.object), (check_, object), "{what}: {e}");
            assert!(e.to_string().contains(says), "{what}: {e}");
            assert!(!e.to_string().contains("PRIVATE KEY"), "{what}: {e}");
        }
    }

    #[test]
    fn only_key_and_chain_mismatches_look_like_a_set_caught_mid_update() {
        let partial: Vec<&str> = CaCheck::ALL
            .iter()
            .filter(|c| fail(**c, CaObject::CaCert, "").explained_by_partial_update())
            .map(|c| c.reason())
            .collect();
        assert_eq!(partial, ["KeyMismatch", "ChainBroken"]);
    }
}
