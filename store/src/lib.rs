//! routewarden's journal: the durable record of what the cluster wants (desired DNS record sets,
//! certificate bindings), what was done about it (applied record sets with their etags,
//! certificate versions seen and applied), the work still to do (a leased work queue), and what
//! happened (an append-only event log).
//!
//! Data flows in one direction: planners in the daemon write desired state and enqueue work in one
//! [`Journal::commit`]; workers [`Journal::claim`] due items, call Azure or Kubernetes, and then
//! commit the outcome — complete the item, record the applied state, append an event — again in
//! one atomic, durable commit. Operators read everything back through `routewarden journal`.
//!
//! The crate hides its storage engine (sled 0.34) entirely: no engine type appears in the public
//! interface, and it imports neither Kubernetes nor Azure crates. Values use a versioned, stable
//! encoding ([`codec`]); schema changes go through `routewarden-migrations`. Guarantees are in
//! `store/ARCHITECTURE.md`.
//!
//! Work item states: `pending` → (claim) → `in-flight` → (complete) → `done`; a failed attempt goes
//! back to `pending` at a caller-given time, or to `parked` after `max_attempts`; a lease that runs
//! out makes the item due again. Re-enqueueing a key with a new payload replaces the payload.

pub mod codec;
mod error;
mod fs;
mod journal;
pub mod model;
mod raw;
mod time;

pub use error::{Error, Result};
pub use journal::{
    Claimed, CompactReport, Enqueued, EventWatch, Journal, Lease, MAX_ACTION_LEN, MAX_MESSAGE_LEN, MAX_SUBJECT_LEN,
    Observer, Options, QueueStat, Retried, Summary, Tx, TxError, TxResult,
};
pub use model::*;
pub use raw::{MigrationRecord, RawEntry, RawJournal, RawTable, SCHEMA_VERSION, is_journal, meta_keys, tables};
pub use time::Time;

/// Helpers for this crate's tests, benchmarks and crash child: a journal stamped at the current
/// schema without going through the migration steps. Production code opens journals through
/// `routewarden_migrations::open`.
#[doc(hidden)]
pub mod testing {
    use super::*;

    pub fn open_current(dir: &std::path::Path, options: Options) -> Result<Journal> {
        let raw = RawJournal::open(dir, options)?;
        if raw.schema_version()?.is_none() {
            raw.record_migration(SCHEMA_VERSION, "test-init", Time::from_millis(0))?;
        }
        raw.into_journal()
    }
}
