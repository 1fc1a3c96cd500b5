//! Fault injection, from Rust and through the admin endpoint: failures with 500/429, forced 410 on
//! the next watch, closing open watches, delays and pauses — and kube-runtime's watcher recovering
//! from them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Error;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use routewarden_sandbox::kube::faults::FailRule;
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": "0"}})).unwrap()
}

fn code(result: Result<impl std::fmt::Debug, Error>) -> (u16, String) {
    match result {
        Err(Error::Api(s)) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn chosen_verbs_fail_with_500_or_429_a_number_of_times() {
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    server.faults().fail(FailRule {
        verb: Some("list".into()),
        resource: Some("configmaps".into()),
        code: 500,
        times: Some(2),
    });
    assert_eq!(code(api.list(&ListParams::default()).await), (500, "InternalError".into()));
    api.create(&PostParams::default(), &cm("unaffected")).await.unwrap();
    assert_eq!(code(api.list(&ListParams::default()).await).0, 500);
    assert_eq!(api.list(&ListParams::default()).await.unwrap().items.len(), 1, "the rule is spent");
    // 429 carries Retry-After: 1, which kube-rs's default retry layer honours, so two throttled
    // answers cost the client about two seconds and then it succeeds.
    server.faults().fail(FailRule { verb: None, resource: Some("configmaps".into()), code: 429, times: Some(2) });
    let t = Instant::now();
    api.get("unaffected").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(1900), "retried after Retry-After");
    server.faults().fail(FailRule { verb: Some("delete".into()), resource: None, code: 500, times: None });
    assert_eq!(code(api.delete("unaffected", &Default::default()).await).0, 500);
    server.faults().clear();
    api.get("unaffected").await.unwrap();
}

#[tokio::test]
async fn the_next_watch_can_be_forced_to_expire() {
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let rv = api.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    server.faults().expire_next_watches(1);
    let mut stream = api.watch(&WatchParams::default().timeout(5), &rv).await.unwrap().boxed();
    match stream.next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn open_watches_can_be_closed_and_kube_runtime_recovers() {
    use kube::runtime::{WatchStreamExt, watcher};
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let rv = api.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let raw = api.watch(&WatchParams::default().timeout(30), &rv).await.unwrap();
    let started = Instant::now();
    let mut objects = watcher(api.clone(), watcher::Config::default()).applied_objects().boxed();
    api.create(&PostParams::default(), &cm("one")).await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), objects.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .metadata
            .name
            .as_deref(),
        Some("one")
    );

    server.faults().close_watches();
    let leftover: Vec<_> =
        tokio::time::timeout(Duration::from_secs(5), raw.collect::<Vec<_>>()).await.expect("the raw watch ends");
    assert!(started.elapsed() < Duration::from_secs(25), "closed long before its timeout");
    assert!(leftover.iter().all(|e| !matches!(e, Ok(WatchEvent::Error(_)))));
    server.faults().expire_next_watches(1);
    api.patch("one", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "after-close"}}))).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            // The 410 surfaces as an error item; the watcher then re-lists by itself.
            let Ok(Some(obj)) = objects.try_next().await else { continue };
            if obj.data.as_ref().and_then(|d| d.get("v")).map(String::as_str) == Some("after-close") {
                return obj;
            }
        }
    })
    .await
    .expect("the watcher re-lists after a closed watch and a 410");
    assert_eq!(seen.metadata.name.as_deref(), Some("one"));
}

#[tokio::test]
async fn delays_and_pauses_hold_requests() {
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    api.list(&ListParams::default()).await.unwrap();
    server.faults().set_delay(Duration::from_millis(300));
    let t = Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    server.faults().set_delay(Duration::ZERO);

    server.faults().set_paused(true);
    let pending = tokio::spawn({
        let api = api.clone();
        async move { api.list(&ListParams::default()).await.map(|l| l.items.len()) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "a paused server holds the request");
    server.faults().set_paused(false);
    assert_eq!(tokio::time::timeout(Duration::from_secs(5), pending).await.unwrap().unwrap().unwrap(), 0);
}

#[tokio::test]
async fn the_admin_endpoint_injects_and_clears_faults() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let body = json!({"fail": [{"verb": "get", "resource": "configmaps", "code": 500, "times": 1}], "delayMs": 0});
    let post = http::Request::post("/sandbox/faults")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    let described: serde_json::Value = client.request(post).await.unwrap();
    assert_eq!(described["fail"][0]["code"], 500);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    assert_eq!(code(api.get("x").await).0, 500);
    let cleared: serde_json::Value =
        client.request(http::Request::delete("/sandbox/faults").body(Vec::new()).unwrap()).await.unwrap();
    assert_eq!(cleared["fail"], json!([]));
    api.get("x").await.unwrap();

    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), "default");
    sas.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "robot"}})).unwrap())
        .await
        .unwrap();
    let token = sas
        .create_token_request(
            "robot",
            &PostParams::default(),
            &serde_json::from_value(json!({"spec": {"audiences": []}})).unwrap(),
        )
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let robot = server.client_for_token(&token).await.unwrap();
    let denied =
        robot.request::<serde_json::Value>(http::Request::get("/sandbox/faults").body(Vec::new()).unwrap()).await;
    assert_eq!(code(denied).0, 403);
}
