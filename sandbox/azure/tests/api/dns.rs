//! ARM and Azure DNS: tokens, RBAC, record-set CRUD, ETags, paging and validation.

use reqwest::Method;
use routewarden_sandbox_azure::scenario::seed000;
use serde_json::{Value, json};

use crate::common::{ARM_SCOPE, Harness, VAULT_SCOPE};

const PUBLIC: &str = "2018-05-01";
const PRIVATE: &str = "2024-06-01";

fn a_body(ip: &str) -> Value {
    json!({"properties": {"metadata": {"owner": "routewarden"}, "TTL": 300, "ARecords": [{"ipv4Address": ip}]}})
}

#[tokio::test]
async fn creates_reads_updates_and_deletes_a_public_a_record() {
    let h = Harness::start().await;
    let t = h.token(ARM_SCOPE).await;
    let url = format!("{}/A/www?api-version={PUBLIC}", h.zone_path(false, seed000::ZONE));
    let (status, headers, created) =
        h.send(Method::PUT, &url, Some(&t), Some(a_body("10.0.0.1")), &[("if-none-match", "*")]).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["properties"]["ARecords"][0]["ipv4Address"], "10.0.0.1");
    assert_eq!(created["properties"]["TTL"], 300);
    assert_eq!(created["properties"]["metadata"]["owner"], "routewarden");
    assert_eq!(created["type"], "Microsoft.Network/dnszones/A");
    let etag = created["etag"].as_str().expect("etag").to_string();
    assert_eq!(headers["etag"].to_str().expect("etag header"), etag);

    let (status, _, got) = h.send(Method::GET, &url, Some(&t), None, &[]).await;
    assert_eq!((status, got["etag"].as_str()), (200, Some(etag.as_str())));

    let (status, _, updated) =
        h.send(Method::PUT, &url, Some(&t), Some(a_body("10.0.0.2")), &[("if-match", &etag)]).await;
    assert_eq!(status, 200);
    let etag2 = updated["etag"].as_str().expect("etag").to_string();
    assert_ne!(etag, etag2);

    let (status, _, patched) =
        h.send(Method::PATCH, &url, Some(&t), Some(json!({"properties": {"TTL": 60}})), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(patched["properties"]["TTL"], 60);
    assert_eq!(patched["properties"]["ARecords"][0]["ipv4Address"], "10.0.0.2");
    let etag3 = patched["etag"].as_str().expect("etag").to_string();

    let (status, _, _) = h.send(Method::DELETE, &url, Some(&t), None, &[("if-match", &etag3)]).await;
    assert_eq!(status, 200);
    let (status, _, missing) = h.send(Method::GET, &url, Some(&t), None, &[]).await;
    assert_eq!((status, missing["error"]["code"].as_str()), (404, Some("NotFound")));
    let (status, _, _) = h.send(Method::DELETE, &url, Some(&t), None, &[]).await;
    assert_eq!(status, 204, "deleting a missing set is 204");
}

#[tokio::test]
async fn the_record_set_feed_reports_each_write_that_changed_a_zone_and_nothing_else() {
    let h = Harness::start().await;
    let mut feed = h.sandbox.admin().watch_record_sets();
    let t = h.token(ARM_SCOPE).await;
    let url = format!("{}/A/www?api-version={PUBLIC}", h.zone_path(false, seed000::ZONE));
    let before = std::time::Instant::now();
    let (status, _, _) = h.send(Method::PUT, &url, Some(&t), Some(a_body("10.0.0.1")), &[]).await;
    assert_eq!(status, 201);
    let (status, _, _) =
        h.send(Method::PUT, &url, Some(&t), Some(a_body("10.0.0.2")), &[("if-match", "\"stale\"")]).await;
    assert_eq!(status, 412, "a refused write changes nothing");
    let (status, _, _) = h.send(Method::GET, &url, Some(&t), None, &[]).await;
    assert_eq!(status, 200);
    let (status, _, _) = h.send(Method::DELETE, &url, Some(&t), None, &[]).await;
    assert_eq!(status, 200);
    let (status, _, _) = h.send(Method::DELETE, &url, Some(&t), None, &[]).await;
    assert_eq!(status, 204, "deleting nothing changes nothing");

    let created = feed.try_recv().expect("the create");
    assert_eq!(
        (created.name.as_str(), created.record_type, created.values.clone()),
        ("www", "A", Some(vec!["10.0.0.1".to_owned()]))
    );
    assert!(created.zone.ends_with(&format!("/dnszones/{}", seed000::ZONE)), "{}", created.zone);
    assert!(created.at >= before);
    let deleted = feed.try_recv().expect("the delete");
    assert_eq!((deleted.name.as_str(), deleted.values), ("www", None));
    assert!(deleted.at >= created.at);
    assert!(feed.try_recv().is_err(), "nothing else changed the zone");
}

#[tokio::test]
async fn answers_412_when_if_match_is_stale() {
    let h = Harness::start().await;
    let t = h.token(ARM_SCOPE).await;
    let url = format!("{}/A/www?api-version={PUBLIC}", h.zone_path(false, seed000::ZONE));
    let (_, _, created) = h.send(Method::PUT, &url, Some(&t), Some(a_body("10.0.0.1")), &[]).await;
    let etag = created["etag"].as_str().expect("etag").to_string();
    let (status, _, err) =
        h.send(Method::PUT, &url, Some(&t), Some(a_body("10.0.0.2")), &[("if-match", "\"stale\"")]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (412, Some("PreconditionFailed")));
    let (status, _, _) = h.send(Method::DELETE, &url, Some(&t), None, &[("if-match", "stale")]).await;
    assert_eq!(status, 412);
    // Quoted current etag matches, as the private DNS SDK sends it.
    let quoted = format!("\"{etag}\"");
    let (status, _, _) = h.send(Method::PUT, &url, Some(&t), Some(a_body("10.0.0.3")), &[("if-match", &quoted)]).await;
    assert_eq!(status, 200);
    let (status, _, _) = h
        .send(
            Method::PATCH,
            &format!("{}/A/nope?api-version={PUBLIC}", h.zone_path(false, seed000::ZONE)),
            Some(&t),
            Some(json!({"properties": {"TTL": 5}})),
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(status, 412, "If-Match: * needs the set to exist");
}

#[tokio::test]
async fn answers_412_when_if_none_match_star_and_the_set_exists() {
    let h = Harness::start().await;
    let t = h.token(ARM_SCOPE).await;
    let url = format!("{}/TXT/owner?api-version={PUBLIC}", h.zone_path(false, seed000::ZONE));
    let body = json!({"properties": {"TTL": 300, "TXTRecords": [{"value": ["heritage=routewarden"]}]}});
    assert_eq!(h.send(Method::PUT, &url, Some(&t), Some(body.clone()), &[("if-none-match", "*")]).await.0, 201);
    let (status, _, err) = h.send(Method::PUT, &url, Some(&t), Some(body), &[("if-none-match", "*")]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (412, Some("PreconditionFailed")));
}

#[tokio::test]
async fn private_zones_use_lower_camel_case() {
    let h = Harness::start().await;
    let t = h.token(ARM_SCOPE).await;
    let url = format!("{}/A/db?api-version={PRIVATE}", h.zone_path(true, seed000::PRIVATE_ZONE));
    let body = json!({"properties": {"ttl": 120, "aRecords": [{"ipv4Address": "10.1.0.4"}]}});
    let (status, _, created) = h.send(Method::PUT, &url, Some(&t), Some(body), &[("if-none-match", "*")]).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["properties"]["ttl"], 120);
    assert_eq!(created["properties"]["aRecords"][0]["ipv4Address"], "10.1.0.4");
    assert_eq!(created["properties"]["isAutoRegistered"], false);
    assert_eq!(created["properties"]["fqdn"], "db.internal.example.com.");
    assert_eq!(created["type"], "Microsoft.Network/privateDnsZones/A");
    for version in ["2018-09-01", "2020-06-01"] {
        let (status, _, _) = h.send(Method::GET, &url.replace(PRIVATE, version), Some(&t), None, &[]).await;
        assert_eq!(status, 200, "{version}");
    }
    let (status, _, err) = h.send(Method::GET, &url.replace(PRIVATE, "2018-05-01"), Some(&t), None, &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("NoRegisteredProviderFound")));
    let (status, _, all) = h
        .send(
            Method::GET,
            &format!("{}/ALL?api-version={PRIVATE}", h.zone_path(true, seed000::PRIVATE_ZONE)),
            Some(&t),
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let types: Vec<&str> = all["value"].as_array().expect("value").iter().filter_map(|v| v["type"].as_str()).collect();
    assert_eq!(
        types,
        vec!["Microsoft.Network/privateDnsZones/SOA", "Microsoft.Network/privateDnsZones/A"],
        "apex first"
    );
}

#[tokio::test]
async fn pages_record_sets_with_top_and_next_link() {
    let h = Harness::start().await;
    let t = h.token(ARM_SCOPE).await;
    let zone = h.zone_path(false, seed000::ZONE);
    for i in 0..5 {
        let (status, _, _) = h
            .send(
                Method::PUT,
                &format!("{zone}/A/host{i}?api-version={PUBLIC}"),
                Some(&t),
                Some(a_body("10.0.0.9")),
                &[],
            )
            .await;
        assert_eq!(status, 201);
    }
    let mut url = Some(format!("{zone}/A?api-version={PUBLIC}&$top=2"));
    let mut pages = vec![];
    while let Some(u) = url {
        let (status, _, page) = h.send(Method::GET, &u, Some(&t), None, &[]).await;
        assert_eq!(status, 200);
        pages.push(page["value"].as_array().expect("value").len());
        url = page["nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(pages, vec![2, 2, 1]);
    let (_, _, all) =
        h.send(Method::GET, &format!("{zone}/recordsets?api-version={PUBLIC}"), Some(&t), None, &[]).await;
    assert_eq!(all["value"].as_array().expect("value").len(), 7, "5 A + SOA + NS");
    assert!(all["nextLink"].is_null());
    let (_, _, filtered) = h
        .send(
            Method::GET,
            &format!("{zone}/recordsets?api-version=2023-07-01-preview&$recordsetnamesuffix=st3"),
            Some(&t),
            None,
            &[],
        )
        .await;
    let names: Vec<&str> =
        filtered["value"].as_array().expect("value").iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(names, vec!["host3"]);
    let (status, _, _) =
        h.send(Method::GET, &format!("{zone}/A?api-version={PUBLIC}&$top=zero"), Some(&t), None, &[]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn refuses_cname_conflicts_apex_cnames_and_oversized_sets() {
    let h = Harness::start().await;
    let t = h.token(ARM_SCOPE).await;
    let zone = h.zone_path(false, seed000::ZONE);
    assert_eq!(
        h.send(Method::PUT, &format!("{zone}/A/app?api-version={PUBLIC}"), Some(&t), Some(a_body("10.0.0.1")), &[])
            .await
            .0,
        201
    );
    let cname = json!({"properties": {"TTL": 300, "CNAMERecord": {"cname": "target.example.net"}}});
    let (status, _, err) = h
        .send(Method::PUT, &format!("{zone}/CNAME/app?api-version={PUBLIC}"), Some(&t), Some(cname.clone()), &[])
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("Conflict")));
    assert_eq!(
        h.send(Method::PUT, &format!("{zone}/CNAME/alias?api-version={PUBLIC}"), Some(&t), Some(cname.clone()), &[])
            .await
            .0,
        201
    );
    let (status, _, _) = h
        .send(
            Method::PUT,
            &format!("{zone}/TXT/alias?api-version={PUBLIC}"),
            Some(&t),
            Some(json!({"properties": {"TTL": 1, "TXTRecords": [{"value": ["x"]}]}})),
            &[],
        )
        .await;
    assert_eq!(status, 409);
    let (status, _, _) =
        h.send(Method::PUT, &format!("{zone}/CNAME/@?api-version={PUBLIC}"), Some(&t), Some(cname), &[]).await;
    assert_eq!(status, 400);
    let many: Vec<Value> = (0..21).map(|i| json!({"ipv4Address": format!("10.0.1.{i}")})).collect();
    let (status, _, err) = h
        .send(
            Method::PUT,
            &format!("{zone}/A/big?api-version={PUBLIC}"),
            Some(&t),
            Some(json!({"properties": {"TTL": 1, "ARecords": many}})),
            &[],
        )
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("BadRequest")));
    let (status, _, _) = h
        .send(
            Method::PUT,
            &format!("{zone}/A/bad%20name?api-version={PUBLIC}"),
            Some(&t),
            Some(a_body("10.0.0.1")),
            &[],
        )
        .await;
    assert_eq!(status, 400);
    let resp = h
        .client
        .put(format!("{zone}/A/x?api-version={PUBLIC}"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let err: Value = resp.json().await.expect("json");
    assert_eq!(err["error"]["code"], "InvalidRequestFormat");
    assert_eq!(status, 400);
    let (status, _, err) = h
        .send(
            Method::PUT,
            &format!("{zone}/A/x?api-version={PUBLIC}"),
            Some(&t),
            Some(json!({"properties": {"TTL": 1, "ARecords": [{"ipv4Address": "300.1.1.1"}]}})),
            &[],
        )
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("BadRequest")));
    let (status, _, _) = h.send(Method::GET, &format!("{zone}/MX/x?api-version={PUBLIC}"), Some(&t), None, &[]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn enforces_the_configured_record_set_limit_per_zone() {
    let h = Harness::start_with(|mut c| {
        c.scenario.dns_limits.public_record_sets_per_zone = 3;
        c
    })
    .await;
    let t = h.token(ARM_SCOPE).await;
    let zone = h.zone_path(false, seed000::ZONE);
    assert_eq!(
        h.send(Method::PUT, &format!("{zone}/A/one?api-version={PUBLIC}"), Some(&t), Some(a_body("10.0.0.1")), &[])
            .await
            .0,
        201
    );
    let (status, _, err) = h
        .send(Method::PUT, &format!("{zone}/A/two?api-version={PUBLIC}"), Some(&t), Some(a_body("10.0.0.1")), &[])
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(
        h.send(Method::PUT, &format!("{zone}/A/one?api-version={PUBLIC}"), Some(&t), Some(a_body("10.0.0.2")), &[])
            .await
            .0,
        200,
        "updates still work"
    );
    let (_, _, z) = h.send(Method::GET, &format!("{zone}?api-version={PUBLIC}"), Some(&t), None, &[]).await;
    assert_eq!(z["properties"]["maxNumberOfRecordSets"], 3);
    assert_eq!(z["properties"]["numberOfRecordSets"], 3);
}

#[tokio::test]
async fn soa_and_ns_are_present_and_read_only() {
    let h = Harness::start().await;
    let t = h.token(ARM_SCOPE).await;
    let zone = h.zone_path(false, seed000::ZONE);
    let (status, _, soa) =
        h.send(Method::GET, &format!("{zone}/SOA/@?api-version={PUBLIC}"), Some(&t), None, &[]).await;
    assert_eq!(status, 200);
    assert!(soa["properties"]["SOARecord"]["email"].is_string());
    let (status, _, ns) = h.send(Method::GET, &format!("{zone}/NS/@?api-version={PUBLIC}"), Some(&t), None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(ns["properties"]["NSRecords"].as_array().map(Vec::len), Some(4));
    assert_eq!(h.send(Method::DELETE, &format!("{zone}/NS/@?api-version={PUBLIC}"), Some(&t), None, &[]).await.0, 400);
    assert_eq!(
        h.send(
            Method::PUT,
            &format!("{zone}/SOA/@?api-version={PUBLIC}"),
            Some(&t),
            Some(json!({"properties": {"TTL": 1}})),
            &[]
        )
        .await
        .0,
        400
    );
}

#[tokio::test]
async fn answers_403_authorization_failed_without_a_role_on_the_scope() {
    let h = Harness::start().await;
    let t = h.token(ARM_SCOPE).await;
    let admin = h.sandbox.admin();
    // Zone-scoped DNS Zone Contributor does not cover listing the resource group's zones.
    let list = format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/dnsZones?api-version={PUBLIC}",
        h.arm(),
        seed000::SUBSCRIPTION,
        seed000::RESOURCE_GROUP
    );
    let (status, _, err) = h.send(Method::GET, &list, Some(&t), None, &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (403, Some("AuthorizationFailed")));
    let message = err["error"]["message"].as_str().expect("message");
    assert!(
        message.contains(seed000::PRINCIPAL_ID) && message.contains("Microsoft.Network/dnsZones/read"),
        "{message}"
    );
    admin
        .add_role_assignment(seed000::IDENTITY, "Reader", &format!("resourceGroup/{}", seed000::RESOURCE_GROUP))
        .expect("assigned");
    let (status, _, zones) = h.send(Method::GET, &list, Some(&t), None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(zones["value"][0]["name"], seed000::ZONE);
    assert_eq!(zones["value"].as_array().map(Vec::len), Some(1), "only public zones");

    let zone_role =
        admin.role_assignments().into_iter().find(|a| a.role == "DNS Zone Contributor").expect("seed assignment");
    admin.remove_role_assignment(&zone_role.id).expect("removed");
    let url = format!("{}/A/www?api-version={PUBLIC}", h.zone_path(false, seed000::ZONE));
    let (status, _, err) = h.send(Method::PUT, &url, Some(&t), Some(a_body("10.0.0.1")), &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (403, Some("AuthorizationFailed")));
    // Reader still reads.
    assert_eq!(
        h.send(
            Method::GET,
            &format!("{}/A?api-version={PUBLIC}", h.zone_path(false, seed000::ZONE)),
            Some(&t),
            None,
            &[]
        )
        .await
        .0,
        200
    );
    // A zone nobody granted: 403 before 404, as ARM checks the scope first.
    let (status, _, _) = h
        .send(
            Method::PUT,
            &format!("{}/A/www?api-version={PUBLIC}", h.zone_path(false, "other.example")),
            Some(&t),
            Some(a_body("10.0.0.1")),
            &[],
        )
        .await;
    assert_eq!(status, 403);
    // Contributor on the subscription covers every zone.
    admin
        .add_role_assignment(seed000::IDENTITY, "Contributor", &format!("/subscriptions/{}", seed000::SUBSCRIPTION))
        .expect("assigned");
    assert_eq!(h.send(Method::PUT, &url, Some(&t), Some(a_body("10.0.0.1")), &[]).await.0, 201);
    let (status, _, err) = h
        .send(
            Method::PUT,
            &format!("{}/A/www?api-version={PUBLIC}", h.zone_path(false, "other.example")),
            Some(&t),
            Some(a_body("10.0.0.1")),
            &[],
        )
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (404, Some("ResourceNotFound")));
}

#[tokio::test]
async fn requires_a_valid_arm_bearer_token() {
    let h = Harness::start().await;
    let url = format!("{}/A?api-version={PUBLIC}", h.zone_path(false, seed000::ZONE));
    let (status, headers, err) = h.send(Method::GET, &url, None, None, &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (401, Some("AuthenticationFailed")));
    assert!(headers.contains_key("www-authenticate"));
    let kv = h.token(VAULT_SCOPE).await;
    let (status, _, err) = h.send(Method::GET, &url, Some(&kv), None, &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (401, Some("InvalidAuthenticationTokenAudience")));
    let expired =
        h.sandbox.admin().issue_token(seed000::CLIENT_ID, "https://management.azure.com/", -60).expect("token");
    let (status, _, err) = h.send(Method::GET, &url, Some(&expired), None, &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (401, Some("ExpiredAuthenticationToken")));
    let (status, _, err) = h.send(Method::GET, &url, Some("garbage"), None, &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (401, Some("InvalidAuthenticationToken")));
    let t = h.token(ARM_SCOPE).await;
    let (status, _, err) =
        h.send(Method::GET, &url.replace(&format!("?api-version={PUBLIC}"), ""), Some(&t), None, &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("MissingApiVersionParameter")));
    let (status, _, err) = h
        .send(
            Method::GET,
            &format!(
                "{}/subscriptions/nope/resourceGroups/rg/providers/Microsoft.Network/dnsZones/z/A?api-version={PUBLIC}",
                h.arm()
            ),
            Some(&t),
            None,
            &[],
        )
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (404, Some("SubscriptionNotFound")));
}

#[tokio::test]
async fn serves_subscriptions_cloud_metadata_and_the_real_management_host() {
    let h = Harness::start().await;
    let t = h.token("https://management.azure.com//.default").await;
    let (status, _, subs) =
        h.send(Method::GET, &format!("{}/subscriptions?api-version=2022-12-01", h.arm()), Some(&t), None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(subs["value"][0]["subscriptionId"], seed000::SUBSCRIPTION);
    assert_eq!(subs["value"][0]["tenantId"], seed000::TENANT);
    assert_eq!(subs["value"][0]["state"], "Enabled");
    let (status, _, meta) =
        h.send(Method::GET, &format!("{}/metadata/endpoints?api-version=2022-09-01", h.arm()), None, None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(meta["authentication"]["loginEndpoint"], format!("{}/", h.authority()));
    assert!(meta["authentication"]["audiences"][0].is_string() && meta["suffixes"]["keyVaultDns"].is_string());
    let port =
        h.sandbox.endpoints().host_overrides.iter().find(|o| o.host == "management.azure.com").expect("override").port;
    let real = format!(
        "https://management.azure.com:{port}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/dnszones/{}?api-version={PUBLIC}",
        seed000::SUBSCRIPTION,
        seed000::RESOURCE_GROUP,
        seed000::ZONE
    );
    let (status, _, zone) = h.send(Method::GET, &real, Some(&t), None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(zone["properties"]["nameServers"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        zone["id"],
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/dnszones/{}",
            seed000::SUBSCRIPTION,
            seed000::RESOURCE_GROUP,
            seed000::ZONE
        )
    );
}

#[tokio::test]
async fn lists_zones_by_subscription_with_reader_and_answers_resource_group_not_found() {
    let h = Harness::start().await;
    let t = h.token(ARM_SCOPE).await;
    let list = format!(
        "{}/subscriptions/{}/providers/Microsoft.Network/privateDnsZones?api-version={PRIVATE}",
        h.arm(),
        seed000::SUBSCRIPTION
    );
    assert_eq!(h.send(Method::GET, &list, Some(&t), None, &[]).await.0, 403);
    h.sandbox
        .admin()
        .add_role_assignment(seed000::IDENTITY, "Reader", &format!("subscription/{}", seed000::SUBSCRIPTION))
        .expect("assigned");
    let (status, _, zones) = h.send(Method::GET, &list, Some(&t), None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(zones["value"][0]["name"], seed000::PRIVATE_ZONE);
    assert_eq!(zones["value"][0]["type"], "Microsoft.Network/privateDnsZones");
    assert_eq!(h.sandbox.calls().get("arm", "PrivateZones_List", 200), 1);
    let missing_rg = format!(
        "{}/subscriptions/{}/resourceGroups/nope/providers/Microsoft.Network/dnsZones/{}/A?api-version={PUBLIC}",
        h.arm(),
        seed000::SUBSCRIPTION,
        seed000::ZONE
    );
    let (status, _, err) = h.send(Method::GET, &missing_rg, Some(&t), None, &[]).await;
    assert_eq!((status, err["error"]["code"].as_str()), (404, Some("ResourceGroupNotFound")));
    let (status, _, err) = h
        .send(
            Method::GET,
            &format!("{}?api-version={PUBLIC}", h.zone_path(false, "missing.example")),
            Some(&t),
            None,
            &[],
        )
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (404, Some("ResourceNotFound")));
}
