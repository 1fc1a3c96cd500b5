//! Watch streams: newline-delimited `{"type","object"}` JSON over a chunked 200 response. A task
//! per watch first sends the replay the store hands it (synthetic ADDED for a watch without a
//! version, or the logged events after the requested version), then forwards live events that
//! match the kind, namespace and selectors, emits BOOKMARKs when asked, and ends the stream at
//! `timeoutSeconds`. A version older than the log window is answered with an ERROR event holding
//! a 410 Expired Status, as the real server does; a watcher that falls behind the broadcast buffer
//! has its stream closed so the client re-lists.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use futures::channel::mpsc;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::registry::ResourceInfo;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{Store, WatchEvent};

/// What a watch request asked for.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// Namespace, None for all.
    pub namespace: Option<String>,
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `resourceVersion`, parsed.
    pub from: Option<u64>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `timeoutSeconds`, or the server's default.
    pub timeout: Duration,
    /// How often to send a BOOKMARK.
    pub bookmark_interval: Duration,
    /// `sendInitialEvents=true` (streaming lists): the current objects as ADDED, then a BOOKMARK
    /// annotated `k8s.io/initial-events-end`.
    pub send_initial_events: bool,
    /// For a kind stored as another (events.k8s.io/v1 Events): the served kind and the conversion
    /// of each stored object to it.
    pub view: Option<View>,
    /// Send each object as a one-row `meta.k8s.io/v1` Table (Accept `as=Table`).
    pub table: bool,
    /// Send each object as `PartialObjectMetadata` (Accept `as=PartialObjectMetadata`).
    pub metadata: bool,
}

/// The kind a watch serves and how a stored object becomes one.
pub type View = (Arc<ResourceInfo>, fn(&Value) -> Value);

fn line(type_: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": type_, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

/// Starts a watch and returns the streaming response.
pub fn serve(
    store: Arc<Store>,
    info: Arc<ResourceInfo>,
    req: WatchRequest,
    mut closer: tokio::sync::watch::Receiver<u64>,
) -> Response {
    let (mut tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let from = if req.send_initial_events { None } else { req.from };
    let subscription = store.subscribe(&info, req.namespace.as_deref(), from);
    tokio::spawn(async move {
        let (initial, mut live, start) = match subscription {
            Ok(s) => s,
            Err(err) => {
                let _ = tx.send(Ok(line("ERROR", &err.status()))).await;
                return;
            }
        };
        // The event type this watch sees: a label change that moves an object into or out of the
        // selection is an ADDED or DELETED for it.
        let seen_as = |e: &WatchEvent| -> Option<&'static str> {
            if e.key != info.key()
                || req.namespace.as_deref().is_some_and(|n| n != e.namespace)
                || !req.fields.matches(&e.object)
            {
                return None;
            }
            let now = req.labels.matches(&e.object);
            let before = match (&e.previous_labels, e.type_) {
                (Some(labels), "MODIFIED") => req.labels.matches(&json!({"metadata": {"labels": labels}})),
                _ => now,
            };
            match (before, now) {
                (true, true) => Some(e.type_),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            }
        };
        let mut last_rv = start;
        let served = req.view.as_ref().map(|(v, _)| v.clone()).unwrap_or_else(|| info.clone());
        let convert = req.view.as_ref().map(|(_, f)| *f);
        // `kubectl get -w` asks for Tables: each event then carries a one-row Table, with the
        // column definitions only in the first, as the real server sends them.
        let mut first_table = true;
        let mut event_line = |type_: &str, obj: &Value| {
            let converted;
            let obj = match convert {
                Some(f) => {
                    converted = f(obj);
                    &converted
                }
                None => obj,
            };
            if req.metadata {
                return line(type_, &super::registry::partial_metadata(obj));
            }
            if !req.table {
                return line(type_, obj);
            }
            let rv = obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
            let mut t = super::table::table(&served, std::slice::from_ref(obj), rv, None);
            if !std::mem::take(&mut first_table) {
                t["columnDefinitions"] = json!([]);
            }
            line(type_, &t)
        };
        for e in &initial {
            if let Some(type_) = seen_as(e)
                && tx.send(Ok(event_line(type_, &e.object))).await.is_err()
            {
                return;
            }
        }
        if req.send_initial_events {
            let end = json!({"kind": served.kind, "apiVersion": served.api_version(), "metadata": {
                "resourceVersion": start.to_string(),
                "annotations": {"k8s.io/initial-events-end": "true"},
            }});
            if tx.send(Ok(line("BOOKMARK", &end))).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(req.timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(req.bookmark_interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = closer.changed() => return,
                _ = ticker.tick(), if req.bookmarks => {
                    let bookmark = json!({"kind": served.kind, "apiVersion": served.api_version(), "metadata": {"resourceVersion": last_rv.to_string()}});
                    if tx.send(Ok(line("BOOKMARK", &bookmark))).await.is_err() {
                        return;
                    }
                }
                received = live.recv() => match received {
                    Ok(e) => {
                        if e.rv <= start {
                            continue;
                        }
                        last_rv = last_rv.max(e.rv);
                        if let Some(type_) = seen_as(&e)
                            && tx.send(Ok(event_line(type_, &e.object))).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                },
            }
        }
    });
    stream_response(rx)
}

fn stream_response(rx: mpsc::Receiver<Result<Bytes, Infallible>>) -> Response {
    let mut response = Body::from_stream(rx).into_response();
    response.headers_mut().insert("content-type", axum::http::HeaderValue::from_static("application/json"));
    response.headers_mut().insert("cache-control", axum::http::HeaderValue::from_static("no-cache, private"));
    response
}

/// A watch stream that holds one ERROR event and ends (injected expiry).
pub fn serve_error(err: &super::error::ApiError) -> Response {
    let (mut tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(1);
    let event = line("ERROR", &err.status());
    // The channel has room for this one event, so try_send cannot fail for lack of space.
    let _ = tx.try_send(Ok(event));
    stream_response(rx)
}
