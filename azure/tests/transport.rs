//! The transport reaches `https://<vault>.vault.azure.net/...` (no port in the URL) on a loopback
//! port when told to, trusting an extra CA — and refuses the same server without that CA.
#![allow(clippy::unwrap_used)]
use routewarden_azure::transport::{TransportConfig, build_client};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn tls_server() -> (String, std::net::SocketAddr) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(vec!["*.vault.azure.net".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = [0u8; 4096];
                let n = tls.read(&mut buf).await.unwrap_or(0);
                let host = String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .find_map(|l| l.strip_prefix("host: ").or_else(|| l.strip_prefix("Host: ")).map(str::to_owned))
                    .unwrap_or_default();
                let body = format!("host={host}");
                let resp =
                    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (ca.pem(), addr)
}

#[tokio::test]
async fn reaches_a_vault_host_on_a_loopback_port_through_the_extra_ca() {
    let (ca, addr) = tls_server().await;
    let overrides = vec![format!("*.vault.azure.net={addr}").parse().unwrap()];
    let client = build_client(&TransportConfig {
        extra_ca: Some(("test CA".into(), ca.into_bytes())),
        overrides: overrides.clone(),
        timeout: Some(std::time::Duration::from_secs(10)),
    })
    .unwrap();
    let body =
        client.get("https://kv-demo.vault.azure.net/certificates/wildcard").send().await.unwrap().text().await.unwrap();
    assert_eq!(body, "host=kv-demo.vault.azure.net", "the URL stays as the user wrote it");

    let untrusting =
        build_client(&TransportConfig { extra_ca: None, overrides, timeout: Some(std::time::Duration::from_secs(10)) })
            .unwrap();
    let err = untrusting.get("https://kv-demo.vault.azure.net/").send().await.unwrap_err();
    assert!(
        err.is_connect() || err.to_string().contains("certificate") || format!("{err:?}").contains("UnknownIssuer"),
        "{err:?}"
    );
}

#[test]
fn a_bad_extra_ca_is_named() {
    let err = build_client(&TransportConfig {
        extra_ca: Some(("/etc/ca.pem".into(), b"nonsense".to_vec())),
        ..TransportConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("/etc/ca.pem"), "{err}");
}
