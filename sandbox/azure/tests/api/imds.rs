//! IMDS: the managed-identity token endpoint, its IMDS-shaped refusals, and its tokens at ARM.

use base64::Engine as _;
use reqwest::Method;
use routewarden_sandbox_azure::scenario::seed000;
use serde_json::{Value, json};

use crate::common::Harness;

const ARM: &str = "https://management.azure.com/";

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json")
}

/// GET the token endpoint with `query` pairs (api-version added unless given), with or without
/// `Metadata: true`: (status, body).
async fn imds(h: &Harness, query: &[(&str, &str)], metadata: bool) -> (u16, Value) {
    let mut pairs: Vec<(&str, &str)> = query.to_vec();
    if !pairs.iter().any(|(k, _)| *k == "api-version") {
        pairs.push(("api-version", "2018-02-01"));
    }
    let url = reqwest::Url::parse_with_params(&h.sandbox.endpoints().managed_identity_endpoint, &pairs).expect("url");
    let mut rb = h.client.get(url);
    if metadata {
        rb = rb.header("Metadata", "true");
    }
    let resp = rb.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn a_body(ip: &str) -> Value {
    json!({"properties": {"TTL": 300, "ARecords": [{"ipv4Address": ip}]}})
}

#[tokio::test]
async fn issues_a_node_identity_token_that_arm_accepts_within_its_roles() {
    let h = Harness::start().await;
    let (status, body) = imds(&h, &[("resource", ARM), ("client_id", seed000::NODE_CLIENT_ID)], true).await;
    assert_eq!(status, 200, "{body}");
    for field in ["expires_in", "expires_on", "not_before"] {
        assert!(
            body[field].as_str().is_some_and(|s| s.parse::<i64>().is_ok()),
            "IMDS sends {field} as a string: {body}"
        );
    }
    let expires_on: i64 = body["expires_on"].as_str().unwrap_or_default().parse().unwrap_or_default();
    let now = jiff::Timestamp::now().as_second();
    assert!((now + 3000..=now + 3700).contains(&expires_on), "{body}");
    assert_eq!((body["resource"].as_str(), body["token_type"].as_str()), (Some(ARM), Some("Bearer")));
    let token = body["access_token"].as_str().expect("access_token").to_string();
    let claims = payload(&token);
    assert_eq!(
        (claims["oid"].as_str(), claims["appid"].as_str()),
        (Some(seed000::NODE_PRINCIPAL_ID), Some(seed000::NODE_CLIENT_ID))
    );
    assert_eq!(h.sandbox.calls().get("imds", "Token", 200), 1);
    assert_eq!(h.sandbox.calls().service_total("entra"), 0, "no Entra call: IMDS answers itself");

    // DNS Zone Contributor on the public zone: writes there succeed...
    let url = format!("{}/A/mi?api-version=2018-05-01", h.zone_path(false, seed000::ZONE));
    let (status, _, created) = h.send(Method::PUT, &url, Some(&token), Some(a_body("10.0.0.5")), &[]).await;
    assert_eq!(status, 201, "{created}");
    // ...and nowhere else.
    let private = format!("{}/A/mi?api-version=2024-06-01", h.zone_path(true, seed000::PRIVATE_ZONE));
    let body = json!({"properties": {"ttl": 300, "aRecords": [{"ipv4Address": "10.0.0.5"}]}});
    let (status, _, refused) = h.send(Method::PUT, &private, Some(&token), Some(body), &[]).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("AuthorizationFailed")), "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap_or_default().contains(seed000::NODE_PRINCIPAL_ID), "{refused}");
}

#[tokio::test]
async fn refuses_a_request_without_the_metadata_header() {
    let h = Harness::start().await;
    let (status, body) = imds(&h, &[("resource", ARM), ("client_id", seed000::NODE_CLIENT_ID)], false).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "Required metadata header not specified"})
    );
    assert_eq!(h.sandbox.calls().get("imds", "Token", 400), 1, "counted under imds");
}

#[tokio::test]
async fn refuses_an_identity_the_nodes_do_not_have_as_imds_does() {
    let h = Harness::start().await;
    let not_found = json!({"error": "invalid_request", "error_description": "Identity not found"});
    for client_id in ["11111111-2222-3333-4444-555555555555", seed000::CLIENT_ID] {
        let (status, body) = imds(&h, &[("resource", ARM), ("client_id", client_id)], true).await;
        assert_eq!((status, &body), (400, &not_found), "{client_id}: a workload identity is not on the nodes");
    }
    let (status, body) = imds(&h, &[("resource", ARM), ("object_id", seed000::NODE_PRINCIPAL_ID)], true).await;
    assert_eq!(status, 200, "picked by principal id too: {body}");
    let (status, body) = imds(&h, &[("resource", ARM)], true).await;
    assert_eq!(
        (status, payload(body["access_token"].as_str().unwrap_or("x.e30.x"))["appid"].as_str()),
        (200, Some(seed000::NODE_CLIENT_ID)),
        "the nodes' only identity by default"
    );
}

#[tokio::test]
async fn refuses_a_missing_or_unknown_resource() {
    let h = Harness::start().await;
    let id = ("client_id", seed000::NODE_CLIENT_ID);
    let (status, body) = imds(&h, &[id], true).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, body) = imds(&h, &[id, ("resource", "https://storage.azure.com/")], true).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_resource")), "{body}");
    let (status, body) = imds(&h, &[id, ("resource", ARM), ("api-version", "")], true).await;
    assert_eq!(status, 400, "{body}");
}
