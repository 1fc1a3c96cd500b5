//! Per-sandbox certificate authority and the HTTPS serving loop shared by every sandbox server.
//!
//! [`SandboxCa::generate`] makes a fresh CA and a server certificate for `127.0.0.1` / `localhost`
//! (rcgen); [`serve_https`] accepts TCP connections, completes the TLS handshake per connection
//! in its own task, and hands the stream to hyper, which drives the axum router (HTTP/1.1 or h2).
//! When the shutdown signal fires, the accept loop stops and every open connection is aborted.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::Router;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Errors while creating the CA or the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen could not generate a key or certificate.
    #[error("failed to generate the sandbox certificates")]
    Generate(#[from] rcgen::Error),
    /// rustls rejected the certificate or key.
    #[error("failed to build the TLS server configuration")]
    Config(#[from] rustls::Error),
}

/// Errors loading or keeping sandbox keys on disk.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading or writing a file failed.
    #[error("failed to read or write the sandbox's keys")]
    Io(#[from] std::io::Error),
    /// A stored key or certificate is unusable.
    #[error("a stored key or certificate is invalid")]
    Tls(#[from] TlsError),
    /// A stored PEM file does not parse.
    #[error("a stored PEM file is invalid: {0}")]
    Pem(String),
}

fn ca_params() -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "routewarden sandbox CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    Ok(params)
}

/// A CA generated for one sandbox and a server certificate it signed.
#[derive(Debug, Clone)]
pub struct SandboxCa {
    /// The CA certificate, PEM: what clients trust (`ca.crt`, `certificate-authority-data`).
    pub ca_pem: String,
    /// The server certificate (SANs `127.0.0.1`, `::1`, `localhost`), DER.
    pub server_cert_der: Vec<u8>,
    /// The server key, PKCS#8 DER.
    pub server_key_der: Vec<u8>,
    ca_der: Vec<u8>,
    ca_key_pem: String,
}

impl SandboxCa {
    /// Generates a CA and a server certificate valid for the loopback addresses and `localhost`.
    pub fn generate() -> Result<Self, TlsError> {
        let ca_key = KeyPair::generate()?;
        let ca_params = ca_params()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_key_pem = ca_key.serialize_pem();
        let issuer = Issuer::new(ca_params, ca_key);
        Self::with_issuer(&issuer, ca_cert.pem(), ca_cert.der().to_vec(), ca_key_pem)
    }

    /// Loads the CA kept in `dir` (`ca.crt`, `ca.key`), or generates one and keeps it there, so a
    /// restarted sandbox is trusted by the same kubeconfig.
    pub fn load_or_generate(dir: &std::path::Path) -> Result<Self, PersistError> {
        let (cert_path, key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
        if cert_path.exists() && key_path.exists() {
            let ca_pem = std::fs::read_to_string(&cert_path)?;
            let ca_key_pem = std::fs::read_to_string(&key_path)?;
            let key = KeyPair::from_pem(&ca_key_pem).map_err(TlsError::from)?;
            // The issuer needs only the CA's subject and key, both fixed by `ca_params` and the
            // stored key, so no certificate parsing is needed.
            let issuer = Issuer::new(ca_params()?, key);
            let der = rustls::pki_types::pem::PemObject::from_pem_slice(ca_pem.as_bytes())
                .map(|c: CertificateDer<'static>| c.to_vec())
                .map_err(|e| PersistError::Pem(e.to_string()))?;
            return Ok(Self::with_issuer(&issuer, ca_pem, der, ca_key_pem)?);
        }
        let ca = Self::generate()?;
        std::fs::create_dir_all(dir)?;
        std::fs::write(&cert_path, &ca.ca_pem)?;
        std::fs::write(&key_path, &ca.ca_key_pem)?;
        Ok(ca)
    }

    fn with_issuer(
        issuer: &Issuer<'_, KeyPair>,
        ca_pem: String,
        ca_der: Vec<u8>,
        ca_key_pem: String,
    ) -> Result<Self, TlsError> {
        let server_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.subject_alt_names.push(SanType::IpAddress(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "routewarden sandbox");
        params.distinguished_name = dn;
        let server_cert = params.signed_by(&server_key, issuer)?;
        Ok(Self {
            ca_pem,
            ca_der,
            server_cert_der: server_cert.der().to_vec(),
            server_key_der: server_key.serialize_der(),
            ca_key_pem,
        })
    }

    /// The CA certificate, DER (what kube's `Config::root_cert` wants).
    /// The CA's private key (PKCS#8 PEM), so local Azure can issue its server certificate from
    /// the same CA and one `ca.crt` serves every sandbox endpoint.
    pub fn key_pem(&self) -> &str {
        &self.ca_key_pem
    }

    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// A rustls server configuration presenting the server certificate, offering h2 and HTTP/1.1.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let chain = vec![CertificateDer::from(self.server_cert_der.clone()), CertificateDer::from(self.ca_der.clone())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` turns true (or its sender is dropped).
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: watch::Receiver<bool>,
) {
    routewarden_sandbox_azure::server::serve_tls(listener, tls, TowerToHyperService::new(app), shutdown).await;
}
