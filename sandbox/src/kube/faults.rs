//! Fault injection for tests, from Rust ([`Faults`], reachable as `KubeServer::faults()`) or over
//! HTTPS with the admin token (`GET|POST|DELETE /sandbox/faults`): close every open watch, answer
//! the next watch(es) with 410 Expired, delay every request, fail chosen verbs/resources with 500
//! or 429 (a number of times or until cleared), and pause the server (requests wait until it is
//! resumed). The router consults [`Faults::before_request`] after authentication and before
//! authorization, and watches consult the close signal and the expiry counter.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::error::ApiError;

/// One injected failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailRule {
    /// Verb to fail (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`), any if None.
    #[serde(default)]
    pub verb: Option<String>,
    /// Resource plural to fail, any if None.
    #[serde(default)]
    pub resource: Option<String>,
    /// 500 or 429.
    pub code: u16,
    /// How many requests to fail; None until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

/// The admin endpoint's body: every field optional, applied in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRequest {
    /// Close every open watch now.
    #[serde(default)]
    pub close_watches: bool,
    /// Answer this many next watches with 410 Expired.
    #[serde(default)]
    pub expire_next_watches: u32,
    /// Delay every request by this many milliseconds (0 clears).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Failures to add.
    #[serde(default)]
    pub fail: Vec<FailRule>,
    /// Pause (true) or resume (false).
    #[serde(default)]
    pub paused: Option<bool>,
}

#[derive(Debug, Default)]
struct FaultState {
    expire_next: u32,
    delay: Duration,
    rules: Vec<FailRule>,
}

/// The injected faults of one server.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<FaultState>,
    close_generation: watch::Sender<u64>,
    paused: watch::Sender<bool>,
}

impl Default for Faults {
    fn default() -> Self {
        Self { state: Mutex::default(), close_generation: watch::channel(0).0, paused: watch::channel(false).0 }
    }
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends every watch that is open now.
    pub fn close_watches(&self) {
        self.close_generation.send_modify(|g| *g += 1);
    }

    /// A receiver that changes when watches must close.
    pub fn watch_closer(&self) -> watch::Receiver<u64> {
        self.close_generation.subscribe()
    }

    /// Answers the next `n` watches with 410 Expired.
    pub fn expire_next_watches(&self, n: u32) {
        self.lock().expire_next += n;
    }

    /// Consumes one pending expiry, if any.
    pub fn take_expiry(&self) -> bool {
        let mut state = self.lock();
        if state.expire_next > 0 {
            state.expire_next -= 1;
            return true;
        }
        false
    }

    /// Delays every request.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Fails matching requests.
    pub fn fail(&self, rule: FailRule) {
        self.lock().rules.push(rule);
    }

    /// Pauses or resumes request handling.
    pub fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    /// Clears every fault (and resumes).
    pub fn clear(&self) {
        *self.lock() = FaultState::default();
        self.set_paused(false);
    }

    /// Applies an admin request.
    pub fn apply(&self, request: FaultRequest) {
        if request.close_watches {
            self.close_watches();
        }
        if request.expire_next_watches > 0 {
            self.expire_next_watches(request.expire_next_watches);
        }
        if let Some(ms) = request.delay_ms {
            self.set_delay(Duration::from_millis(ms));
        }
        for rule in request.fail {
            self.fail(rule);
        }
        if let Some(p) = request.paused {
            self.set_paused(p);
        }
    }

    /// The current faults, for `GET /sandbox/faults`.
    pub fn describe(&self) -> serde_json::Value {
        let state = self.lock();
        serde_json::json!({
            "expireNextWatches": state.expire_next,
            "delayMs": state.delay.as_millis() as u64,
            "fail": state.rules,
            "paused": *self.paused.borrow(),
        })
    }

    /// Waits out a pause and the delay, then fails the request if a rule matches.
    pub async fn before_request(&self, verb: &str, resource: &str) -> Result<(), ApiError> {
        let mut paused = self.paused.subscribe();
        // The sender lives as long as self, so this only returns once resumed.
        let _ = paused.wait_for(|p| !*p).await;
        let delay = self.lock().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut state = self.lock();
        let hit = state.rules.iter_mut().position(|r| {
            r.verb.as_deref().is_none_or(|v| v == verb)
                && r.resource.as_deref().is_none_or(|x| x == resource)
                && r.times != Some(0)
        });
        let Some(i) = hit else { return Ok(()) };
        let rule = &mut state.rules[i];
        if let Some(t) = rule.times.as_mut() {
            *t -= 1;
        }
        let code = rule.code;
        state.rules.retain(|r| r.times != Some(0));
        Err(if code == 429 {
            ApiError::too_many_requests()
        } else {
            ApiError::internal(format!("injected fault: {verb} {resource}"))
        })
    }
}
