//! Fidelity knobs (rate limits, injected faults, latency, the call counter) and the admin API.

use std::time::{Duration, Instant};

use reqwest::Method;
use routewarden_sandbox_azure::faults::Bucket;
use routewarden_sandbox_azure::scenario::seed000;
use routewarden_sandbox_azure::{FaultConfig, FaultRule, LatencyRule};
use serde_json::{Value, json};

use crate::common::{ARM_SCOPE, Harness, VAULT_SCOPE};

fn secret_url(h: &Harness) -> String {
    format!("{}/secrets/{}/?api-version=7.4", h.vault(), seed000::CERTIFICATE)
}

#[tokio::test]
async fn answers_429_with_retry_after_when_the_vault_limit_is_reached() {
    let h = Harness::start().await;
    let mut config = FaultConfig::default();
    config.rate_limits.key_vault_all = Bucket { limit: 3, period_seconds: 10.0 };
    h.sandbox.admin().set_faults(config);
    let t = h.token(VAULT_SCOPE).await;
    for _ in 0..3 {
        assert_eq!(h.send(Method::GET, &secret_url(&h), Some(&t), None, &[]).await.0, 200);
    }
    let (status, headers, err) = h.send(Method::GET, &secret_url(&h), Some(&t), None, &[]).await;
    assert_eq!(status, 429);
    assert_eq!(err["error"]["code"], "Throttled");
    let retry: u64 = headers["retry-after"].to_str().expect("header").parse().expect("seconds");
    assert!((1..=4).contains(&retry), "{retry}");
    assert_eq!(h.sandbox.calls().get("keyvault", "GetSecret", 429), 1);
}

#[tokio::test]
async fn answers_429_when_a_private_zone_write_limit_or_the_subscription_read_bucket_is_exhausted() {
    let h = Harness::start().await;
    let mut config = FaultConfig::default();
    config.rate_limits.private_zone_writes = Bucket { limit: 2, period_seconds: 60.0 };
    config.rate_limits.arm_reads = Bucket { limit: 2, period_seconds: 100.0 };
    h.sandbox.admin().set_faults(config);
    let t = h.token(ARM_SCOPE).await;
    let zone = h.zone_path(true, seed000::PRIVATE_ZONE);
    let body = json!({"properties": {"ttl": 60, "aRecords": [{"ipv4Address": "10.2.0.1"}]}});
    for i in 0..2 {
        assert_eq!(
            h.send(Method::PUT, &format!("{zone}/A/w{i}?api-version=2024-06-01"), Some(&t), Some(body.clone()), &[])
                .await
                .0,
            201
        );
    }
    let (status, headers, err) =
        h.send(Method::PUT, &format!("{zone}/A/w9?api-version=2024-06-01"), Some(&t), Some(body), &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (429, Some("TooManyRequests")));
    assert!(headers["retry-after"].to_str().expect("h").parse::<u64>().expect("n") >= 20);
    for _ in 0..2 {
        assert_eq!(
            h.send(Method::GET, &format!("{zone}/A/w0?api-version=2024-06-01"), Some(&t), None, &[]).await.0,
            200
        );
    }
    let (status, headers, _) =
        h.send(Method::GET, &format!("{zone}/A/w0?api-version=2024-06-01"), Some(&t), None, &[]).await;
    assert_eq!(status, 429);
    assert!(headers["retry-after"].to_str().expect("h").parse::<u64>().expect("n") >= 40);
}

#[tokio::test]
async fn injects_503_and_500_and_counts_calls_by_status() {
    let h = Harness::start().await;
    let t = h.token(VAULT_SCOPE).await;
    h.sandbox.calls().reset();
    h.sandbox.admin().set_faults(FaultConfig {
        faults: vec![FaultRule {
            service: Some("keyvault".into()),
            operation: Some("GetSecret".into()),
            error_503: 1.0,
            ..FaultRule::default()
        }],
        ..FaultConfig::default()
    });
    let (status, headers, err) = h.send(Method::GET, &secret_url(&h), Some(&t), None, &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (503, Some("ServiceUnavailable")));
    assert_eq!(headers["retry-after"], "1");
    h.sandbox.admin().set_faults(FaultConfig {
        faults: vec![FaultRule { service: Some("arm".into()), error_500: 1.0, ..FaultRule::default() }],
        ..FaultConfig::default()
    });
    let arm = h.token(ARM_SCOPE).await;
    let (status, _, _) = h
        .send(
            Method::GET,
            &format!("{}/A?api-version=2018-05-01", h.zone_path(false, seed000::ZONE)),
            Some(&arm),
            None,
            &[],
        )
        .await;
    assert_eq!(status, 500);
    assert_eq!(h.send(Method::GET, &secret_url(&h), Some(&t), None, &[]).await.0, 200);
    let calls = h.sandbox.calls();
    assert_eq!(calls.get("keyvault", "GetSecret", 503), 1);
    assert_eq!(calls.get("keyvault", "GetSecret", 200), 1);
    assert_eq!(calls.get("arm", "RecordSets_ListByType", 500), 1);
    assert_eq!(calls.get("entra", "Token", 200), 1);
    assert_eq!(calls.service_total("keyvault"), 2);
}

#[tokio::test]
async fn injected_resets_and_timeouts_drop_the_connection() {
    let h = Harness::start().await;
    let t = h.token(VAULT_SCOPE).await;
    h.sandbox.admin().set_faults(FaultConfig {
        faults: vec![FaultRule { service: Some("keyvault".into()), reset: 1.0, ..FaultRule::default() }],
        ..FaultConfig::default()
    });
    let err = h.client.get(secret_url(&h)).bearer_auth(&t).send().await.expect_err("reset");
    assert!(!err.is_status(), "{err}");
    assert_eq!(h.sandbox.calls().get("keyvault", "GetSecret", 0), 1);
    h.sandbox.admin().set_faults(FaultConfig {
        faults: vec![FaultRule {
            service: Some("keyvault".into()),
            timeout: 1.0,
            timeout_ms: 5_000,
            ..FaultRule::default()
        }],
        ..FaultConfig::default()
    });
    let started = Instant::now();
    let err = h
        .client
        .get(secret_url(&h))
        .bearer_auth(&t)
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .expect_err("timeout");
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn adds_the_configured_latency_per_operation() {
    let h = Harness::start().await;
    let t = h.token(VAULT_SCOPE).await;
    h.sandbox.admin().set_faults(FaultConfig {
        latency: vec![LatencyRule {
            service: Some("keyvault".into()),
            operation: Some("GetSecret".into()),
            fixed_ms: 300,
            jitter_ms: 50,
        }],
        ..FaultConfig::default()
    });
    let started = Instant::now();
    assert_eq!(h.send(Method::GET, &secret_url(&h), Some(&t), None, &[]).await.0, 200);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn the_admin_http_endpoint_rotates_disables_assigns_lists_and_sets_faults() {
    let h = Harness::start().await;
    let admin = h.sandbox.endpoints().admin.clone();
    let (status, _, rotated) = h
        .send(
            Method::POST,
            &format!("{admin}/admin/vaults/{}/certificates/{}/rotate", seed000::VAULT, seed000::CERTIFICATE),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let version = rotated["version"].as_str().expect("version").to_string();
    let (status, _, _) = h
        .send(
            Method::POST,
            &format!(
                "{admin}/admin/vaults/{}/certificates/{}/versions/{version}/disable",
                seed000::VAULT,
                seed000::CERTIFICATE
            ),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let t = h.token(VAULT_SCOPE).await;
    assert_eq!(h.send(Method::GET, &secret_url(&h), Some(&t), None, &[]).await.0, 403);

    let (status, _, a) = h.send(Method::POST, &format!("{admin}/admin/role-assignments"), None, Some(json!({"principal": seed000::IDENTITY, "role": "Reader", "scope": format!("subscription/{}", seed000::SUBSCRIPTION)})), &[]).await;
    assert_eq!(status, 200, "{a}");
    let (_, _, all) = h.send(Method::GET, &format!("{admin}/admin/role-assignments"), None, None, &[]).await;
    assert_eq!(all.as_array().map(Vec::len), Some(5), "seed 000's four and the new one");
    let (status, _, _) = h
        .send(
            Method::DELETE,
            &format!("{admin}/admin/role-assignments/{}", a["id"].as_str().expect("id")),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = h
        .send(
            Method::POST,
            &format!("{admin}/admin/role-assignments"),
            None,
            Some(json!({"principal": "x", "role": "Nope", "scope": "subscription/x"})),
            &[],
        )
        .await;
    assert_eq!(status, 400);

    let arm = h.token(ARM_SCOPE).await;
    let body = json!({"properties": {"TTL": 300, "ARecords": [{"ipv4Address": "10.0.0.1"}]}});
    assert_eq!(
        h.send(
            Method::PUT,
            &format!("{}/A/a?api-version=2018-05-01", h.zone_path(false, seed000::ZONE)),
            Some(&arm),
            Some(body),
            &[]
        )
        .await
        .0,
        201
    );
    let (status, _, sets) =
        h.send(Method::GET, &format!("{admin}/admin/zones/{}/recordsets", seed000::ZONE), None, None, &[]).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = sets["value"].as_array().expect("value").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, vec!["@", "@", "a"]);

    let faults = json!({"faults": [{"service": "keyvault", "error500": 1.0}]});
    let (status, _, set) = h.send(Method::PUT, &format!("{admin}/admin/faults"), None, Some(faults), &[]).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(h.send(Method::GET, &secret_url(&h), Some(&t), None, &[]).await.0, 500);
    let (_, _, calls) = h.send(Method::GET, &format!("{admin}/admin/calls"), None, None, &[]).await;
    let rows = calls["value"].as_array().expect("rows");
    assert!(rows.iter().any(|r| r["service"] == "keyvault" && r["status"] == 500 && r["count"] == 1), "{calls}");
    assert_eq!(h.send(Method::DELETE, &format!("{admin}/admin/calls"), None, None, &[]).await.0, 200);
    assert_eq!(h.sandbox.calls().service_total("keyvault"), 0);

    let (status, _, _) = h
        .send(
            Method::POST,
            &format!("{admin}/admin/identities/{}/federated-credentials", seed000::IDENTITY),
            None,
            Some(json!({"name": "extra", "subject": "system:serviceaccount:x:y"})),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = h
        .send(
            Method::DELETE,
            &format!("{admin}/admin/identities/{}/federated-credentials/extra", seed000::IDENTITY),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = h.send(Method::GET, &format!("{admin}/admin/nothing"), None, None, &[]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn writes_endpoints_and_scenario_files() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    h.sandbox.write_files(dir.path()).expect("written");
    let endpoints: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("endpoints.json")).expect("read")).expect("json");
    assert_eq!(endpoints["authorityHost"], h.authority());
    assert!(endpoints["vaults"][seed000::VAULT]["localUrl"].is_string());
    let scenario: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("scenario.json")).expect("read")).expect("json");
    assert_eq!(scenario["tenantId"], seed000::TENANT);
    assert_eq!(scenario["subscriptionId"], seed000::SUBSCRIPTION);
    assert_eq!(
        scenario["vaults"][0]["certificates"][0]["uri"],
        "https://kv-demo.vault.azure.net/certificates/approuting-demo-cert"
    );
    assert_eq!(scenario["identities"][0]["principalId"], seed000::PRINCIPAL_ID);
    assert_eq!(scenario["zones"][1]["kind"], "private");
}

#[tokio::test]
async fn the_admin_client_drives_a_running_sandbox_from_another_process() {
    let h = Harness::start().await;
    let client =
        routewarden_sandbox_azure::AdminClient::new(&h.sandbox.endpoints().admin, h.sandbox.ca_pem()).expect("client");
    let version = client.rotate_certificate(seed000::VAULT, seed000::CERTIFICATE).await.expect("rotated");
    assert_eq!(version.len(), 32);
    client.set_version_enabled(seed000::VAULT, seed000::CERTIFICATE, &version, false).await.expect("disabled");
    let a = client
        .add_role_assignment(seed000::IDENTITY, "Reader", &format!("resourceGroup/{}", seed000::RESOURCE_GROUP))
        .await
        .expect("assigned");
    assert_eq!(client.role_assignments().await.expect("list").len(), 5, "seed 000's four and the new one");
    client.remove_role_assignment(&a.id).await.expect("removed");
    let refused = client.remove_role_assignment(&a.id).await.expect_err("gone");
    assert!(matches!(refused, routewarden_sandbox_azure::AdminClientError::Refused { status: 404, .. }), "{refused}");
    client
        .add_federated_credential(seed000::IDENTITY, "x", None, "system:serviceaccount:x:y", None)
        .await
        .expect("added");
    client.remove_federated_credential(seed000::IDENTITY, "x").await.expect("removed");
    assert_eq!(client.list_record_sets(seed000::ZONE).await.expect("sets").len(), 2);
    let mut faults = client.faults().await.expect("faults");
    faults.latency.push(LatencyRule { service: Some("arm".into()), operation: None, fixed_ms: 1, jitter_ms: 0 });
    assert_eq!(client.set_faults(&faults).await.expect("set").latency.len(), 1);
    assert!(client.calls().await.expect("calls").is_empty(), "admin calls are not counted");
    client.reset_calls().await.expect("reset");
    assert_eq!(client.scenario().await.expect("scenario")["tenantId"], seed000::TENANT);
}

#[tokio::test]
async fn a_port_base_gives_fixed_consecutive_ports() {
    // An ephemeral port is very likely followed by free ones; the test only needs four.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
    let base = probe.local_addr().expect("addr").port().min(60_000);
    drop(probe);
    let h = Harness::start_with(|mut c| {
        c.port_base = Some(base);
        c
    })
    .await;
    let e = h.sandbox.endpoints();
    assert_eq!(e.authority_host, format!("https://127.0.0.1:{base}"));
    assert_eq!(e.resource_manager, format!("https://127.0.0.1:{}", base + 1));
    assert_eq!(e.admin, format!("https://127.0.0.1:{}", base + 2));
    assert_eq!(e.vaults[seed000::VAULT].port, base + 3);
    assert_eq!(
        h.send(Method::GET, &format!("{}/metadata/endpoints?api-version=2022-09-01", h.arm()), None, None, &[]).await.0,
        200
    );
}

#[tokio::test]
async fn advancing_the_token_clock_expires_access_tokens_and_assertions() {
    let h = Harness::start().await;
    let arm = h.token(ARM_SCOPE).await;
    let url = format!("{}/A?api-version=2018-05-01", h.zone_path(false, seed000::ZONE));
    assert_eq!(h.send(Method::GET, &url, Some(&arm), None, &[]).await.0, 200);
    let assertion = h.seed_assertion(); // valid for an hour
    let client =
        routewarden_sandbox_azure::AdminClient::new(&h.sandbox.endpoints().admin, h.sandbox.ca_pem()).expect("client");
    client.advance_clock(2 * 3600).await.expect("advanced");
    let (status, _, err) = h.send(Method::GET, &url, Some(&arm), None, &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (401, Some("ExpiredAuthenticationToken")));
    let resp = h.token_request(seed000::TENANT, seed000::CLIENT_ID, ARM_SCOPE, &assertion).await;
    let body: Value = resp.json().await.expect("json");
    assert!(body["error_description"].as_str().expect("description").starts_with("AADSTS700024:"));
    // A fresh assertion still works: the sandbox issues tokens valid from its own clock.
    let fresh = h.sa_token("app-a", seed000::SERVICE_ACCOUNT, crate::common::EXCHANGE, 3 * 3600);
    let resp = h.token_request(seed000::TENANT, seed000::CLIENT_ID, ARM_SCOPE, &fresh).await;
    let token: Value = resp.json().await.expect("json");
    let t = token["access_token"].as_str().expect("token");
    assert_eq!(h.send(Method::GET, &url, Some(t), None, &[]).await.0, 200);
}

#[tokio::test]
async fn garbage_requests_get_azure_errors_and_never_a_5xx() {
    let h = Harness::start().await;
    let arm = h.token(ARM_SCOPE).await;
    let kv = h.token(VAULT_SCOPE).await;
    let zone = h.zone_path(false, seed000::ZONE);
    let v = h.vault();
    let a = h.authority();
    let cases: Vec<(Method, String, Option<&str>, Option<&str>)> = vec![
        (Method::POST, format!("{a}/{}/oauth2/v2.0/token", seed000::TENANT), None, Some("")),
        (Method::POST, format!("{a}/{}/oauth2/v2.0/token", seed000::TENANT), None, Some("%%%&&&==")),
        (Method::GET, format!("{a}/whatever/else"), None, None),
        (Method::PUT, format!("{zone}/A/x?api-version=2018-05-01"), Some(&arm), Some("[1,2,3]")),
        (
            Method::PUT,
            format!("{zone}/A/x?api-version=2018-05-01"),
            Some(&arm),
            Some(r#"{"properties":{"TTL":"soon","ARecords":{}}}"#),
        ),
        (
            Method::PUT,
            format!("{zone}/TXT/x?api-version=2018-05-01"),
            Some(&arm),
            Some(r#"{"properties":{"TXTRecords":[{"value":[1]}]}}"#),
        ),
        (Method::PUT, format!("{zone}/A/%F0%9F%92%A5?api-version=2018-05-01"), Some(&arm), Some("{}")),
        (Method::PUT, format!("{zone}/A/{}?api-version=2018-05-01", "a".repeat(300)), Some(&arm), Some("{}")),
        (Method::OPTIONS, format!("{zone}/A/x?api-version=2018-05-01"), Some(&arm), None),
        (
            Method::GET,
            format!("{}/subscriptions/{}/what/is/this?api-version=1", h.arm(), seed000::SUBSCRIPTION),
            Some(&arm),
            None,
        ),
        (Method::GET, format!("{zone}/A?api-version=2018-05-01&$skipToken=abc"), Some(&arm), None),
        (Method::POST, format!("{v}/certificates/x/import?api-version=7.4"), Some(&kv), Some("not json")),
        (Method::POST, format!("{v}/certificates/x/import?api-version=7.4"), Some(&kv), Some(r#"{"value": "@@@@"}"#)),
        (Method::PUT, format!("{v}/secrets/x?api-version=7.4"), Some(&kv), Some(r#"{"value": 5}"#)),
        (Method::GET, format!("{v}/secrets/x/versions?api-version=7.4&$skiptoken=zz"), Some(&kv), None),
        (Method::GET, format!("{v}/keys/x?api-version=7.4"), Some(&kv), None),
        (Method::DELETE, format!("{v}/certificates/x?api-version=7.4"), Some(&kv), None),
        (Method::GET, format!("{v}/secrets/%FF%FE?api-version=7.4"), Some(&kv), None),
    ];
    for (method, url, token, body) in cases {
        let mut rb = h.client.request(method.clone(), &url);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b.to_string());
        }
        let resp = rb.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        assert!((400..500).contains(&status), "{method} {url} -> {status} {text}");
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {url} -> {status} with a non-JSON body {text:?}"));
        assert!(json.get("error").is_some(), "{method} {url} -> {json}");
    }
}
