//! Private keys: what kind they are, their public half (to match a certificate), and the PEM
//! forms a `kubernetes.io/tls` Secret may carry (PKCS#8 by default, PKCS#1 for RSA or SEC1 for
//! EC on request). Key bytes are wiped on drop and never printed.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::{self, KeyPair};
use der::{Decode, Encode, asn1::ObjectIdentifier};
use std::fmt;
use zeroize::Zeroizing;

const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// Key algorithms Key Vault certificates use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
}

/// The `tls.key` encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyFormat {
    /// `-----BEGIN PRIVATE KEY-----` (any algorithm).
    #[default]
    Pkcs8,
    /// `-----BEGIN RSA PRIVATE KEY-----` for RSA and `-----BEGIN EC PRIVATE KEY-----` for EC keys.
    Traditional,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("private key is not valid PKCS#8: {0}")]
    Malformed(String),
    #[error("private key algorithm {0} is not supported (want RSA, EC P-256 or EC P-384)")]
    Unsupported(String),
}

/// A PKCS#8 private key.
#[derive(Clone)]
pub struct PrivateKey {
    der: Zeroizing<Vec<u8>>,
    kind: KeyKind,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Reads a PKCS#8 DER key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfoRef::from_der(der).map_err(|e| KeyError::Malformed(e.to_string()))?;
        let kind = match info.algorithm.oid {
            RSA => KeyKind::Rsa,
            EC => {
                let curve = info
                    .algorithm
                    .parameters
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                    .ok_or_else(|| KeyError::Malformed("EC key without a named curve".into()))?;
                match curve {
                    P256 => KeyKind::EcP256,
                    P384 => KeyKind::EcP384,
                    other => return Err(KeyError::Unsupported(format!("EC curve {other}"))),
                }
            }
            other => return Err(KeyError::Unsupported(other.to_string())),
        };
        Ok(PrivateKey { der: Zeroizing::new(der.to_vec()), kind })
    }

    /// Reads a PEM key: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
    pub fn from_pem_block(block: &pem::Pem) -> Result<Self, KeyError> {
        match block.tag() {
            "PRIVATE KEY" => Self::from_pkcs8_der(block.contents()),
            "RSA PRIVATE KEY" => {
                let pair = signature::RsaKeyPair::from_der(block.contents())
                    .map_err(|e| KeyError::Malformed(format!("RSA PRIVATE KEY: {e}")))?;
                let der: Pkcs8V1Der<'static> =
                    pair.as_der().map_err(|e| KeyError::Malformed(format!("RSA PRIVATE KEY: {e}")))?;
                Self::from_pkcs8_der(der.as_ref())
            }
            "EC PRIVATE KEY" => {
                let ec = sec1::EcPrivateKey::from_der(block.contents())
                    .map_err(|e| KeyError::Malformed(format!("EC PRIVATE KEY: {e}")))?;
                let alg = match ec.parameters.and_then(|p| p.named_curve()) {
                    Some(P256) => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    Some(P384) => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                    _ => return Err(KeyError::Unsupported("EC PRIVATE KEY without a P-256 or P-384 curve".into())),
                };
                let pair = signature::EcdsaKeyPair::from_private_key_der(alg, block.contents())
                    .map_err(|e| KeyError::Malformed(format!("EC PRIVATE KEY: {e}")))?;
                let der = pair.to_pkcs8v1().map_err(|e| KeyError::Malformed(format!("EC PRIVATE KEY: {e}")))?;
                Self::from_pkcs8_der(der.as_ref())
            }
            other => Err(KeyError::Malformed(format!("PEM block {other:?} is not a private key"))),
        }
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The public key as it appears in a certificate's SubjectPublicKeyInfo bit string
    /// (PKCS#1 RSAPublicKey for RSA, the uncompressed point for EC).
    pub fn public_key_bits(&self) -> Result<Vec<u8>, KeyError> {
        let bad = |e: aws_lc_rs::error::KeyRejected| KeyError::Malformed(e.to_string());
        Ok(match self.kind {
            KeyKind::Rsa => signature::RsaKeyPair::from_pkcs8(&self.der).map_err(bad)?.public_key().as_ref().to_vec(),
            KeyKind::EcP256 => {
                signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &self.der)
                    .map_err(bad)?
                    .public_key()
                    .as_ref()
                    .to_vec()
            }
            KeyKind::EcP384 => {
                signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, &self.der)
                    .map_err(bad)?
                    .public_key()
                    .as_ref()
                    .to_vec()
            }
        })
    }

    /// PEM text for `tls.key`.
    pub fn to_pem(&self, format: KeyFormat) -> Result<Zeroizing<String>, KeyError> {
        let (tag, der) = match (format, self.kind) {
            (KeyFormat::Pkcs8, _) => ("PRIVATE KEY", self.der.clone()),
            (KeyFormat::Traditional, KeyKind::Rsa) => ("RSA PRIVATE KEY", Zeroizing::new(self.inner()?.to_vec())),
            (KeyFormat::Traditional, KeyKind::EcP256 | KeyKind::EcP384) => ("EC PRIVATE KEY", self.sec1()?),
        };
        Ok(Zeroizing::new(pem::encode(&pem::Pem::new(tag, der.to_vec()))))
    }

    /// The algorithm-specific key inside the PKCS#8 wrapper.
    fn inner(&self) -> Result<&[u8], KeyError> {
        let info = pkcs8::PrivateKeyInfoRef::from_der(&self.der).map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(info.private_key.as_bytes())
    }

    /// SEC1 with the named curve filled in: inside PKCS#8 the curve lives in the algorithm
    /// identifier and is often omitted from the inner key, but a standalone SEC1 key needs it.
    fn sec1(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let curve = match self.kind {
            KeyKind::EcP256 => P256,
            KeyKind::EcP384 => P384,
            KeyKind::Rsa => return Err(KeyError::Unsupported("SEC1 for an RSA key".into())),
        };
        let mut ec = sec1::EcPrivateKey::from_der(self.inner()?).map_err(|e| KeyError::Malformed(e.to_string()))?;
        ec.parameters = Some(sec1::EcParameters::NamedCurve(curve));
        Ok(Zeroizing::new(ec.to_der().map_err(|e| KeyError::Malformed(e.to_string()))?))
    }
}
