//! Key Vault certificates for Gateway listeners, without Kubernetes or Azure: parse the listener's
//! Key Vault URI ([`uri`]), read the certificate's backing secret (PKCS#12 or PEM) and turn it
//! into a checked `tls.crt` / `tls.key` pair ([`bundle`], [`key`]). Everything here is a pure
//! function of its input, so it is table-tested and fuzzed on its own; the daemon fetches and
//! writes, this crate decides. [`ca`] does the same for an Istio plug-in CA's four PEM objects.

pub mod bundle;
pub mod ca;
pub mod key;
pub mod uri;

pub use bundle::{
    Bundle, Cert, Check, CheckFailure, ContentType, DecodeError, Expectations, HostnamePolicy, Material, assemble,
    decode_secret, san_covers,
};
pub use key::{KeyError, KeyFormat, KeyKind, PrivateKey};
pub use uri::{CertificateUri, UriError, VaultUrl, parse_certificate_uri, parse_vault_url};
