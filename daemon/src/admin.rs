//! The daemon's local admin endpoint: the journal's views as JSON under `/v1/journal/…`, for
//! `routewarden journal --admin URL` (the daemon holds the journal's lock, so the CLI cannot open
//! the files while it runs). Every handler builds the same [`crate::view`] struct the CLI builds
//! from a stopped journal, on a blocking thread because the journal's calls block.
//!
//! Two answers stream NDJSON: `export`, and `events?follow=true`, which sends the selected events
//! and then each new one as it is appended, until the client goes away or the server shuts down.
//! `/v1/log-level` shows (GET) or replaces (PUT, body in `RUST_LOG` syntax) the log filter of the
//! running process. The endpoint has no authentication: it binds to loopback unless told otherwise.

use crate::view::{self, EventFilter, EventView, QueueFilter};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use routewarden_store::{Journal, Time};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// How long a follower waits for an append before checking whether it should stop.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// The JSON body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// What a request can fail at; the variant decides the status code.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    BadRequest(String),
    #[error("failed to read the journal: {0}")]
    Journal(#[from] routewarden_store::Error),
    #[error("journal task failed: {0}")]
    Task(String),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match self {
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::Journal(_) | AdminError::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!(error = %self, "admin request failed");
        }
        (status, Json(ErrorBody { error: self.to_string() })).into_response()
    }
}

#[derive(Clone, Debug)]
struct AdminState {
    journal: Journal,
    /// Turns true when the server shuts down, so streaming answers end and shutdown completes.
    stopping: watch::Receiver<bool>,
}

/// The admin routes over `journal`, for embedding or tests. Streams opened on this router end
/// only when their client goes away; [`serve`] also ends them at shutdown.
pub fn router(journal: Journal) -> Router {
    let (_, stopping) = watch::channel(false);
    routes(AdminState { journal, stopping })
}

/// Serves the admin endpoint (plus `extra` routes, e.g. `/metrics`) on `listener` until `shutdown` completes, then stops accepting,
/// ends the open streams, and returns once every connection has finished.
pub async fn serve(
    listener: TcpListener,
    journal: Journal,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopping) = watch::channel(false);
    let app = routes(AdminState { journal, stopping }).merge(extra);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await
}

fn routes(state: AdminState) -> Router {
    Router::new()
        .route("/v1/journal/summary", get(summary))
        .route("/v1/journal/records", get(records))
        .route("/v1/journal/certs", get(certs))
        .route("/v1/journal/queue", get(queue))
        .route("/v1/journal/events", get(events))
        .route("/v1/journal/stale", get(stale))
        .route("/v1/journal/export", get(export))
        .route("/v1/journal/compact", post(compact))
        .route("/v1/log-level", get(log_level).put(set_log_level))
        .with_state(state)
}

async fn blocking<T: Send + 'static>(
    state: &AdminState,
    f: impl FnOnce(&Journal) -> routewarden_store::Result<T> + Send + 'static,
) -> Result<T, AdminError> {
    let journal = state.journal.clone();
    Ok(tokio::task::spawn_blocking(move || f(&journal)).await.map_err(|e| AdminError::Task(e.to_string()))??)
}

async fn summary(State(s): State<AdminState>) -> Result<Json<view::SummaryView>, AdminError> {
    Ok(Json(blocking(&s, view::summary).await?))
}

#[derive(Debug, Deserialize)]
struct RecordsQuery {
    zone: Option<String>,
}

async fn records(
    State(s): State<AdminState>,
    Query(q): Query<RecordsQuery>,
) -> Result<Json<Vec<view::RecordView>>, AdminError> {
    Ok(Json(blocking(&s, move |j| view::records(j, q.zone.as_deref())).await?))
}

async fn certs(State(s): State<AdminState>) -> Result<Json<view::CertsView>, AdminError> {
    Ok(Json(blocking(&s, view::certs).await?))
}

async fn queue(
    State(s): State<AdminState>,
    Query(q): Query<QueueFilter>,
) -> Result<Json<Vec<view::WorkItemView>>, AdminError> {
    if let Some(state) = &q.state
        && view::parse_state(state).is_none()
    {
        return Err(AdminError::BadRequest(format!(
            "unknown state {state:?} (want pending, in-flight, done or parked)"
        )));
    }
    Ok(Json(blocking(&s, move |j| view::queue(j, &q)).await?))
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    after: Option<u64>,
    since: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    follow: bool,
}

async fn events(State(s): State<AdminState>, Query(q): Query<EventsQuery>) -> Result<Response, AdminError> {
    let since = q
        .since
        .as_deref()
        .map(|v| view::parse_since(v, Time::now().to_timestamp()))
        .transpose()
        .map_err(AdminError::BadRequest)?;
    let filter = EventFilter { after: q.after, since, limit: q.limit };
    if !q.follow {
        let f = filter.clone();
        return Ok(Json(blocking(&s, move |j| view::events(j, &f).map(|(e, _)| e)).await?).into_response());
    }
    // The watch starts before the backlog is read, so an append in between still wakes the follower.
    let f = filter.clone();
    let (mut watch, backlog, cursor) = blocking(&s, move |j| {
        let watch = j.watch_events();
        let (backlog, cursor) = view::events(j, &f)?;
        Ok((watch, backlog, cursor))
    })
    .await?;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let journal = s.journal.clone();
    let stopping = s.stopping.clone();
    tokio::task::spawn_blocking(move || {
        let send = |e: &EventView| {
            let mut line = serde_json::to_vec(e).unwrap_or_default();
            line.push(b'\n');
            send_unless_stopping(&tx, &stopping, Bytes::from(line))
        };
        if !backlog.iter().all(send) {
            return;
        }
        let mut cursor = cursor;
        while !*stopping.borrow() && !tx.is_closed() {
            match journal.events_after(cursor, 256) {
                Ok(page) if page.is_empty() => {
                    let _ = watch.next_timeout(FOLLOW_POLL);
                }
                Ok(page) => {
                    for e in page {
                        cursor = e.seq;
                        if filter.since.is_none_or(|since| e.at.to_timestamp() >= since) && !send(&e.into()) {
                            return;
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "event follower stopped: failed to read the journal");
                    return;
                }
            }
        }
    });
    Ok(ndjson(rx))
}

async fn stale(State(s): State<AdminState>) -> Result<Json<view::StaleView>, AdminError> {
    Ok(Json(blocking(&s, view::stale).await?))
}

async fn export(State(s): State<AdminState>) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let journal = s.journal.clone();
    let stopping = s.stopping.clone();
    tokio::task::spawn_blocking(move || {
        let result = view::export(&journal, Time::now(), |line| {
            let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
            bytes.push(b'\n');
            send_unless_stopping(&tx, &stopping, Bytes::from(bytes))
        });
        if let Err(error) = result {
            tracing::warn!(%error, "export failed part-way");
            // The status line is gone already: the last line tells the reader the export is incomplete.
            let mut bytes =
                serde_json::to_vec(&ErrorBody { error: format!("export incomplete: {error}") }).unwrap_or_default();
            bytes.push(b'\n');
            let _ = send_unless_stopping(&tx, &stopping, Bytes::from(bytes));
        }
    });
    ndjson(rx)
}

async fn compact(State(s): State<AdminState>) -> Result<Json<view::CompactView>, AdminError> {
    Ok(Json(blocking(&s, |j| view::compact(j, Time::now())).await?))
}

/// The log filter in force (`{"filter":"info,routewarden::dns=debug"}`).
async fn log_level() -> Result<Json<LogLevel>, AdminError> {
    let control = crate::telemetry::log_control()
        .ok_or_else(|| AdminError::BadRequest("this process's logging is not managed by routewarden".into()))?;
    Ok(Json(LogLevel { filter: control.current() }))
}

/// Replaces the log filter: the body is `RUST_LOG` syntax (`debug`, `info,routewarden::dns=trace`).
async fn set_log_level(body: String) -> Result<Json<LogLevel>, AdminError> {
    let control = crate::telemetry::log_control()
        .ok_or_else(|| AdminError::BadRequest("this process's logging is not managed by routewarden".into()))?;
    control.set(&body).map_err(AdminError::BadRequest)?;
    Ok(Json(LogLevel { filter: control.current() }))
}

/// The log filter, as directives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLevel {
    pub filter: String,
}

/// Sends one line to a streaming answer. A client that stops reading without disconnecting
/// must not keep the follower (and with it the server's shutdown) waiting forever, so a full
/// channel is retried only until the server stops. `false`: stop sending.
fn send_unless_stopping(tx: &mpsc::Sender<Bytes>, stopping: &watch::Receiver<bool>, mut line: Bytes) -> bool {
    loop {
        match tx.try_send(line) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
            Err(mpsc::error::TrySendError::Full(back)) => {
                if *stopping.borrow() {
                    return false;
                }
                line = back;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A streaming NDJSON answer fed line by line through `rx`; it ends when the sender is dropped.
fn ndjson(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx)) });
    ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response()
}
