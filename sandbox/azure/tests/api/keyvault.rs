//! Key Vault: the challenge, RBAC, secrets, certificates and their backing secrets.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use routewarden_sandbox_azure::certs::{CertAuthority, GenSpec, generate};
use routewarden_sandbox_azure::scenario::{KeyType, seed000};
use serde_json::{Value, json};

use crate::common::{ARM_SCOPE, Harness, VAULT_SCOPE};

const V: &str = "api-version=7.4";

fn cert_path(h: &Harness, rest: &str) -> String {
    format!("{}/certificates/{}{rest}", h.vault(), seed000::CERTIFICATE)
}

fn secret_path(h: &Harness, rest: &str) -> String {
    format!("{}/secrets/{}{rest}", h.vault(), seed000::CERTIFICATE)
}

#[tokio::test]
async fn challenges_requests_without_a_token() {
    let h = Harness::start().await;
    let (status, headers, body) = h.send(Method::GET, &secret_path(&h, &format!("/?{V}")), None, None, &[]).await;
    assert_eq!(status, 401);
    assert!(body.is_null(), "empty body");
    assert_eq!(
        headers["www-authenticate"].to_str().expect("header"),
        format!(
            "Bearer authorization=\"https://login.microsoftonline.com/{}\", resource=\"https://vault.azure.net\"",
            seed000::TENANT
        )
    );
    let arm = h.token(ARM_SCOPE).await;
    let (status, headers, body) = h.send(Method::GET, &secret_path(&h, &format!("/?{V}")), Some(&arm), None, &[]).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    assert!(body["error"]["message"].as_str().expect("message").contains("AKV10022"));
}

#[tokio::test]
async fn gets_the_seed_certificate_backing_secret_as_pkcs12_with_an_empty_password() {
    let h = Harness::start().await;
    let t = h.token(VAULT_SCOPE).await;
    for path in [secret_path(&h, &format!("/?{V}")), secret_path(&h, &format!("?{V}"))] {
        let (status, headers, secret) = h.send(Method::GET, &path, Some(&t), None, &[]).await;
        assert_eq!(status, 200, "{path}: {secret}");
        assert!(headers.contains_key("x-ms-request-id") && headers.contains_key("x-ms-keyvault-service-version"));
        assert_eq!(secret["contentType"], "application/x-pkcs12");
        assert_eq!(secret["managed"], true);
        assert!(secret["kid"].as_str().expect("kid").contains("/keys/approuting-demo-cert/"));
        let pfx = STANDARD.decode(secret["value"].as_str().expect("value")).expect("base64");
        let store =
            p12_keystore::KeyStore::from_pkcs12(&pfx, "", p12_keystore::Pkcs12ImportPolicy::Strict).expect("pkcs12");
        let (_, chain) = store.private_key_chain().expect("key and chain");
        assert_eq!(chain.certs().len(), 1);
        assert!(chain.certs()[0].subject().contains("*.example.com"));
    }
}

#[tokio::test]
async fn answers_403_forbidden_by_rbac_until_a_certificate_role_is_assigned() {
    let h = Harness::start().await;
    let t = h.token(VAULT_SCOPE).await;
    let (status, _, err) = h.send(Method::GET, &cert_path(&h, &format!("/?{V}")), Some(&t), None, &[]).await;
    assert_eq!(status, 403);
    assert_eq!(err["error"]["code"], "Forbidden");
    assert_eq!(err["error"]["innererror"]["code"], "ForbiddenByRbac");
    assert!(err["error"]["message"].as_str().expect("m").contains("Microsoft.KeyVault/vaults/certificates/read"));
    h.sandbox
        .admin()
        .add_role_assignment(seed000::IDENTITY, "Key Vault Certificate User", &format!("vault/{}", seed000::VAULT))
        .expect("assigned");
    let (status, _, cert) = h.send(Method::GET, &cert_path(&h, &format!("/?{V}")), Some(&t), None, &[]).await;
    assert_eq!(status, 200, "{cert}");
    let id = cert["id"].as_str().expect("id");
    let version = id.rsplit('/').next().expect("version");
    assert_eq!(version.len(), 32);
    assert_eq!(cert["kid"], format!("{}/keys/{}/{version}", h.vault(), seed000::CERTIFICATE));
    assert_eq!(cert["sid"], format!("{}/secrets/{}/{version}", h.vault(), seed000::CERTIFICATE));
    assert_eq!(cert["x5t"].as_str().map(str::len), Some(27));
    assert!(cert["attributes"]["exp"].as_i64().expect("exp") > cert["attributes"]["nbf"].as_i64().expect("nbf"));
    assert_eq!(cert["policy"]["secret_props"]["contentType"], "application/x-pkcs12");
    assert_eq!(cert["policy"]["x509_props"]["sans"]["dns_names"], json!(["*.example.com", "example.com"]));
    let der = STANDARD.decode(cert["cer"].as_str().expect("cer")).expect("der");
    assert_eq!(routewarden_sandbox_azure::certs::x5t(&der), cert["x5t"].as_str().expect("x5t"));
    let (status, _, same) = h.send(Method::GET, &cert_path(&h, &format!("/{version}?{V}")), Some(&t), None, &[]).await;
    assert_eq!((status, &same["id"]), (200, &cert["id"]));
}

#[tokio::test]
async fn lists_versions_with_maxresults_paging_and_disabled_versions_answer_secret_disabled() {
    let h = Harness::start().await;
    let admin = h.sandbox.admin();
    let v2 = admin.rotate_certificate(seed000::VAULT, seed000::CERTIFICATE).expect("rotated");
    let v3 = admin.rotate_certificate(seed000::VAULT, seed000::CERTIFICATE).expect("rotated");
    let t = h.token(VAULT_SCOPE).await;
    let mut url = Some(secret_path(&h, &format!("/versions?{V}&maxresults=1")));
    let mut ids = vec![];
    while let Some(u) = url {
        let (status, _, page) = h.send(Method::GET, &u, Some(&t), None, &[]).await;
        assert_eq!(status, 200, "{page}");
        for item in page["value"].as_array().expect("value") {
            assert!(item.get("value").is_none(), "items carry no value");
            ids.push(item["id"].as_str().expect("id").rsplit('/').next().expect("v").to_string());
        }
        url = page["nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[1..], [v2.clone(), v3.clone()]);
    let (status, _, latest) = h.send(Method::GET, &secret_path(&h, &format!("/?{V}")), Some(&t), None, &[]).await;
    assert_eq!(status, 200);
    assert!(latest["id"].as_str().expect("id").ends_with(&v3));

    admin.set_version_enabled(seed000::VAULT, seed000::CERTIFICATE, &v3, false).expect("disabled");
    let (status, _, err) = h.send(Method::GET, &secret_path(&h, &format!("/{v3}?{V}")), Some(&t), None, &[]).await;
    assert_eq!(status, 403);
    assert_eq!(err["error"]["innererror"]["code"], "SecretDisabled");
    let (status, _, _) = h.send(Method::GET, &secret_path(&h, &format!("/?{V}")), Some(&t), None, &[]).await;
    assert_eq!(status, 403, "latest is the disabled version");
    let (status, _, _) = h.send(Method::GET, &secret_path(&h, &format!("/{v2}?{V}")), Some(&t), None, &[]).await;
    assert_eq!(status, 200);
    let (status, _, err) =
        h.send(Method::GET, &secret_path(&h, &format!("/versions?{V}&maxresults=26")), Some(&t), None, &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("BadParameter")));
}

#[tokio::test]
async fn sets_and_gets_plain_secrets_and_answers_secret_not_found() {
    let h = Harness::start().await;
    h.sandbox
        .admin()
        .add_role_assignment(seed000::IDENTITY, "Key Vault Secrets Officer", &format!("vault/{}", seed000::VAULT))
        .expect("assigned");
    let t = h.token(VAULT_SCOPE).await;
    let url = format!("{}/secrets/app-password?api-version=2026-04-01", h.vault());
    let (status, _, set) = h
        .send(
            Method::PUT,
            &url,
            Some(&t),
            Some(json!({"value": "s3cret", "contentType": "text/plain", "tags": {"a": "b"}})),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["value"], "s3cret");
    assert!(set.get("managed").is_none());
    let (_, _, _) = h.send(Method::PUT, &url, Some(&t), Some(json!({"value": "v2"})), &[]).await;
    let (status, _, got) =
        h.send(Method::GET, &format!("{}/secrets/app-password/?api-version=7.6", h.vault()), Some(&t), None, &[]).await;
    assert_eq!((status, got["value"].as_str()), (200, Some("v2")));
    let first = set["id"].as_str().expect("id").rsplit('/').next().expect("v").to_string();
    let (_, _, old) =
        h.send(Method::GET, &format!("{}/secrets/app-password/{first}?{V}", h.vault()), Some(&t), None, &[]).await;
    assert_eq!(old["value"], "s3cret");
    let (status, headers, err) =
        h.send(Method::GET, &format!("{}/secrets/nope/?{V}", h.vault()), Some(&t), None, &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (404, Some("SecretNotFound")));
    assert_eq!(headers["x-ms-error-code"], "SecretNotFound");
    let (status, _, _) = h.send(Method::PUT, &url, Some(&t), Some(json!({"contentType": "x"})), &[]).await;
    assert_eq!(status, 400, "value is required");
    let (status, _, _) = h
        .send(
            Method::PUT,
            &format!("{}/secrets/{}?{V}", h.vault(), seed000::CERTIFICATE),
            Some(&t),
            Some(json!({"value": "x"})),
            &[],
        )
        .await;
    assert_eq!(status, 409, "a certificate's secret cannot be set");
    let (status, _, err) =
        h.send(Method::GET, &format!("{}/secrets/app-password?api-version=6.0", h.vault()), Some(&t), None, &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("BadParameter")));
    let (status, _, _) = h.send(Method::GET, &format!("{}/secrets/bad_name?{V}", h.vault()), Some(&t), None, &[]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn creates_certificates_from_a_policy_in_pem_and_pkcs12() {
    let h = Harness::start().await;
    h.sandbox
        .admin()
        .add_role_assignment(seed000::IDENTITY, "Key Vault Administrator", &format!("vault/{}", seed000::VAULT))
        .expect("assigned");
    let t = h.token(VAULT_SCOPE).await;
    for (name, kty, content_type) in
        [("ec-pem", "EC", "application/x-pem-file"), ("rsa-p12", "RSA", "application/x-pkcs12")]
    {
        let policy = json!({
            "key_props": {"exportable": true, "kty": kty, "key_size": if kty == "RSA" { 2048 } else { 256 }, "crv": "P-256", "reuse_key": false},
            "secret_props": {"contentType": content_type},
            "x509_props": {"subject": "CN=app.example.com", "sans": {"dns_names": ["app.example.com"]}, "validity_months": 3},
            "issuer": {"name": "Self"},
        });
        let (status, headers, op) = h
            .send(
                Method::POST,
                &format!("{}/certificates/{name}/create?{V}", h.vault()),
                Some(&t),
                Some(json!({"policy": policy})),
                &[],
            )
            .await;
        assert_eq!(status, 202, "{op}");
        assert_eq!(op["status"], "inProgress");
        assert!(headers.contains_key("location"));
        let (status, _, pending) =
            h.send(Method::GET, &format!("{}/certificates/{name}/pending?{V}", h.vault()), Some(&t), None, &[]).await;
        assert_eq!((status, pending["status"].as_str()), (200, Some("completed")));
        let (status, _, secret) =
            h.send(Method::GET, &format!("{}/secrets/{name}/?{V}", h.vault()), Some(&t), None, &[]).await;
        assert_eq!(status, 200);
        assert_eq!(secret["contentType"], content_type);
        let value = secret["value"].as_str().expect("value");
        if content_type == "application/x-pem-file" {
            assert!(value.starts_with("-----BEGIN PRIVATE KEY-----") && value.contains("-----BEGIN CERTIFICATE-----"));
        } else {
            assert!(
                p12_keystore::KeyStore::from_pkcs12(
                    &STANDARD.decode(value).expect("b64"),
                    "",
                    p12_keystore::Pkcs12ImportPolicy::Strict
                )
                .is_ok()
            );
        }
        let (_, _, cert) =
            h.send(Method::GET, &format!("{}/certificates/{name}?{V}", h.vault()), Some(&t), None, &[]).await;
        assert_eq!(cert["policy"]["key_props"]["kty"], kty);
        let days = (cert["attributes"]["exp"].as_i64().expect("exp")
            - cert["attributes"]["nbf"].as_i64().expect("nbf"))
            / 86_400;
        assert!((88..=95).contains(&days), "{days}");
    }
    let (status, _, err) = h
        .send(Method::POST, &format!("{}/certificates/nopolicy/create?{V}", h.vault()), Some(&t), Some(json!({})), &[])
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("BadParameter")));
    let bad = json!({"policy": {"key_props": {"kty": "RSA", "key_size": 1024}, "x509_props": {"subject": "CN=x"}}});
    assert_eq!(
        h.send(Method::POST, &format!("{}/certificates/weak/create?{V}", h.vault()), Some(&t), Some(bad), &[]).await.0,
        400
    );
}

#[tokio::test]
async fn imports_pem_text_base64_pem_and_pfx_and_serves_the_chain_leaf_first() {
    let h = Harness::start().await;
    h.sandbox
        .admin()
        .add_role_assignment(seed000::IDENTITY, "Key Vault Certificates Officer", &format!("vault/{}", seed000::VAULT))
        .expect("assigned");
    let t = h.token(VAULT_SCOPE).await;
    let (issuer, _) = CertAuthority::generate("Import Test CA").expect("ca");
    let spec = GenSpec {
        subject: "CN=imported.example.com".into(),
        dns_names: vec!["imported.example.com".into()],
        key_type: KeyType::Rsa,
        key_size: 2048,
        validity_months: 6,
    };
    let material = generate(&spec, Some(&issuer)).expect("material");
    let reversed = routewarden_sandbox_azure::certs::Material {
        key_pkcs8: material.key_pkcs8.clone(),
        chain: material.chain.iter().rev().cloned().collect(),
    };
    let pem = reversed.to_pem();
    let pfx = STANDARD.encode(material.to_pkcs12().expect("pfx"));
    for (name, value, expected_type) in [
        ("pem-text", pem.clone(), "application/x-pem-file"),
        ("pem-b64", STANDARD.encode(pem.as_bytes()), "application/x-pem-file"),
        ("pfx", pfx, "application/x-pkcs12"),
    ] {
        let (status, _, cert) = h
            .send(
                Method::POST,
                &format!("{}/certificates/{name}/import?{V}", h.vault()),
                Some(&t),
                Some(json!({"value": value})),
                &[],
            )
            .await;
        assert_eq!(status, 200, "{name}: {cert}");
        assert_eq!(cert["policy"]["secret_props"]["contentType"], expected_type);
        assert_eq!(STANDARD.decode(cert["cer"].as_str().expect("cer")).expect("der"), material.chain[0]);
        let (_, _, secret) =
            h.send(Method::GET, &format!("{}/secrets/{name}?{V}", h.vault()), Some(&t), None, &[]).await;
        let value = secret["value"].as_str().expect("value");
        let back = routewarden_sandbox_azure::certs::parse_import(value, None).expect("parses");
        assert_eq!(back.material.chain, material.chain, "leaf first");
    }
    let (status, _, err) = h
        .send(
            Method::POST,
            &format!("{}/certificates/junk/import?{V}", h.vault()),
            Some(&t),
            Some(json!({"value": "bm90IGEgY2VydA=="})),
            &[],
        )
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("BadParameter")));
    let (status, _, _) = h
        .send(
            Method::POST,
            &format!("{}/certificates/nokey/import?{V}", h.vault()),
            Some(&t),
            Some(json!({"value": material.without_key().to_pem()})),
            &[],
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn non_exportable_certificates_keep_the_key_in_the_vault() {
    let h = Harness::start().await;
    h.sandbox
        .admin()
        .add_role_assignment(seed000::IDENTITY, "Key Vault Administrator", &format!("vault/{}", seed000::VAULT))
        .expect("assigned");
    let t = h.token(VAULT_SCOPE).await;
    let policy = json!({"key_props": {"exportable": false, "kty": "RSA", "key_size": 2048}, "secret_props": {"contentType": "application/x-pem-file"}, "x509_props": {"subject": "CN=locked.example.com"}, "issuer": {"name": "Self"}});
    assert_eq!(
        h.send(
            Method::POST,
            &format!("{}/certificates/locked/create?{V}", h.vault()),
            Some(&t),
            Some(json!({"policy": policy})),
            &[]
        )
        .await
        .0,
        202
    );
    let (_, _, secret) = h.send(Method::GET, &format!("{}/secrets/locked?{V}", h.vault()), Some(&t), None, &[]).await;
    let value = secret["value"].as_str().expect("value");
    assert!(value.contains("BEGIN CERTIFICATE") && !value.contains("PRIVATE KEY"));
}

#[tokio::test]
async fn serves_the_real_vault_host_name_and_refuses_unknown_vaults() {
    let h = Harness::start().await;
    let t = h.token(VAULT_SCOPE).await;
    let port = h.sandbox.endpoints().vaults[seed000::VAULT].port;
    let url = format!("https://{}.vault.azure.net:{port}/secrets/{}/?{V}", seed000::VAULT, seed000::CERTIFICATE);
    let (status, _, secret) = h.send(Method::GET, &url, Some(&t), None, &[]).await;
    assert_eq!(status, 200);
    assert!(
        secret["id"]
            .as_str()
            .expect("id")
            .starts_with(&format!("https://{}.vault.azure.net:{port}/secrets/", seed000::VAULT))
    );
    let arm_port =
        h.sandbox.endpoints().host_overrides.iter().find(|o| o.host == "management.azure.com").expect("arm").port;
    let via_other_port =
        format!("https://{}.vault.azure.net:{arm_port}/secrets/{}/?{V}", seed000::VAULT, seed000::CERTIFICATE);
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(h.sandbox.ca_pem().as_bytes()).expect("ca")])
        .resolve(&format!("{}.vault.azure.net", seed000::VAULT), std::net::SocketAddr::from(([127, 0, 0, 1], arm_port)))
        .build()
        .expect("client");
    let resp = client.get(&via_other_port).bearer_auth(&t).send().await.expect("send");
    assert_eq!(resp.status(), 200, "any listener routes by Host");
    let value: Value = resp.json().await.expect("json");
    assert_eq!(value["managed"], true);
}

#[tokio::test]
async fn challenges_with_the_authority_and_resource_of_the_vault_hosts_cloud() {
    let h = Harness::start().await;
    let port = h.sandbox.endpoints().vaults[seed000::VAULT].port;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(h.sandbox.ca_pem().as_bytes()).expect("ca")])
        .resolve("kv-demo.vault.azure.cn", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .resolve("kv-demo.vault.usgovcloudapi.net", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .resolve("nope.vault.azure.net", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .expect("client");
    for (host, authority, resource) in [
        ("kv-demo.vault.azure.cn", "https://login.chinacloudapi.cn", "https://vault.azure.cn"),
        ("kv-demo.vault.usgovcloudapi.net", "https://login.microsoftonline.us", "https://vault.usgovcloudapi.net"),
    ] {
        let resp = client.get(format!("https://{host}:{port}/secrets/x?{V}")).send().await.expect("send");
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.headers()["www-authenticate"].to_str().expect("h"),
            format!("Bearer authorization=\"{authority}/{}\", resource=\"{resource}\"", seed000::TENANT)
        );
    }
    let resp = client.get(format!("https://nope.vault.azure.net:{port}/secrets/x?{V}")).send().await.expect("send");
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_secret_set_through_the_admin_api_is_a_new_current_version_like_az_keyvault_secret_set() {
    let h = Harness::start().await;
    let admin = h.sandbox.admin();
    let v1 = admin.set_secret(seed000::VAULT, "root-cert", "first").expect("set");
    let v2 = admin.set_secret(seed000::VAULT, "root-cert", "second").expect("set");
    assert_ne!(v1, v2);
    assert!(admin.set_secret("no-such-vault", "root-cert", "x").is_err());
    assert!(admin.set_secret(seed000::VAULT, seed000::CERTIFICATE, "x").is_err(), "a certificate's secret is refused");
    let t = h.token(VAULT_SCOPE).await;
    let (status, _, latest) =
        h.send(Method::GET, &format!("{}/secrets/root-cert/?{V}", h.vault()), Some(&t), None, &[]).await;
    assert_eq!((status, latest["value"].as_str()), (200, Some("second")));
    assert!(latest["id"].as_str().expect("id").ends_with(&v2));
    let (_, _, list) =
        h.send(Method::GET, &format!("{}/secrets/root-cert/versions?{V}", h.vault()), Some(&t), None, &[]).await;
    let ids: Vec<&str> = list["value"].as_array().expect("items").iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(list["value"][0].get("value").is_none(), "version items carry no value");
}
