//! The typed journal. Reads go straight to the tables; every write goes through
//! [`Journal::commit`], which runs a closure over a [`Tx`] spanning all tables, applies it
//! atomically, and returns only once the change is durable (group commit: concurrent committers
//! share one flush). Claiming work is the one write outside a caller's closure, because it must
//! scan the due index first (the engine's transactions cannot scan).

use crate::codec::{self, join_key, split_key};
use crate::error::{Error, Result};
use crate::fs::{restrict_tree, size_of_tree};
use crate::model::*;
use crate::raw::{MigrationRecord, RawJournal, meta_keys, tables};
use crate::time::Time;
use serde::{Serialize, de::DeserializeOwned};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tuning and retention. Defaults suit a cluster with tens of thousands of records.
#[derive(Clone, Debug)]
pub struct Options {
    /// Engine page-cache size.
    pub cache_bytes: u64,
    /// A work item parks after this many failed attempts.
    pub max_attempts: u32,
    /// Event-log retention: at most this many entries (plus one prune interval) ...
    pub event_max_entries: u64,
    /// ... and none older than this once a prune has run.
    pub event_max_age: Duration,
    /// Appends between automatic prunes; also the overshoot above `event_max_entries`.
    pub prune_interval: u64,
    /// `compact` removes done work items older than this.
    pub done_item_max_age: Duration,
    /// `compact` keeps at most this many versions per certificate.
    pub cert_versions_per_object: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_bytes: 64 << 20,
            max_attempts: 10,
            event_max_entries: 100_000,
            event_max_age: Duration::from_secs(30 * 24 * 3600),
            prune_interval: 1024,
            done_item_max_age: Duration::from_secs(7 * 24 * 3600),
            cert_versions_per_object: 20,
        }
    }
}

/// Bounds on event fields, so one event is at most about 1.6 KiB and the log's size is bounded
/// by its entry count.
pub const MAX_ACTION_LEN: usize = 64;
pub const MAX_SUBJECT_LEN: usize = 512;
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Handle to an open journal; cheap to clone and share between threads.
#[derive(Clone, Debug)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    raw: RawJournal,
    trees: Vec<sled::Tree>,
    /// Commits whose transaction has been applied (tickets handed out so far).
    written: AtomicU64,
    /// Highest ticket known durable; the mutex serialises flushes.
    flushed: Mutex<u64>,
    /// The engine's log file, for `fdatasync` after each flush: on Linux sled's own flush uses
    /// `sync_file_range`, which survives a process crash but neither flushes the device's write
    /// cache nor the file size, so alone it would not survive power loss.
    log_file: std::fs::File,
    appends_since_prune: AtomicU64,
    /// Kind and key of work items by id, which never change once an item exists (ids are never
    /// reused): claims pass over another controller's due items without reading them from disk.
    idents: Mutex<HashMap<u64, Ident>>,
    /// When each unfinished item was first queued by this process, for the convergence time its
    /// completion reports and the age of the oldest item (in memory only: the stored item has no
    /// such field, so items queued before a restart fall back to their last update).
    queued_at: Mutex<HashMap<u64, Time>>,
    observer: std::sync::OnceLock<Arc<dyn Observer>>,
}

/// Told how the journal performs: how long each commit took to become durable, and how long each
/// work item took from being queued to being done. Implemented by the daemon's metrics.
pub trait Observer: Send + Sync + std::fmt::Debug {
    fn committed(&self, took: Duration);
    fn converged(&self, kind: &str, took: Duration);
}

/// Unfinished work items of one kind in one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueStat {
    pub kind: String,
    pub state: ItemState,
    pub count: u64,
    /// When the oldest of them was queued (pending, in flight) or parked.
    pub oldest: Time,
}

/// A work item's kind and key.
type Ident = (Arc<str>, Arc<str>);

/// Beyond this many cached idents the cache starts over (it only saves reads).
const MAX_IDENTS: usize = 1_000_000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// Positions of the tables in `Inner::trees` and in a transaction's views (same order as tables::ALL).
const META: usize = 0;
const DNS_DESIRED: usize = 1;
const DNS_APPLIED: usize = 2;
const CERT_BINDINGS: usize = 3;
const CERT_VERSIONS: usize = 4;
const QUEUE_ITEMS: usize = 5;
const QUEUE_KEYS: usize = 6;
const QUEUE_DUE: usize = 7;
const EVENTS: usize = 8;
const ZONE_REPORTS: usize = 9;

/// A work item handed to a worker, valid while `token` matches the stored item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    pub id: u64,
    pub token: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    pub lease: Lease,
    pub item: WorkItem,
}

/// What `enqueue` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    Created(u64),
    Updated(u64),
    /// Same payload already queued, in flight, done or parked: nothing written.
    Unchanged(u64),
}

impl Enqueued {
    pub fn id(self) -> u64 {
        match self {
            Enqueued::Created(id) | Enqueued::Updated(id) | Enqueued::Unchanged(id) => id,
        }
    }
}

/// What `retry` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retried {
    Scheduled(Time),
    Parked,
}

/// Counts and ages for `routewarden journal summary`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub dir: PathBuf,
    pub schema_version: u32,
    pub cluster_id: Option<String>,
    pub created_at: Option<Time>,
    pub size_bytes: u64,
    pub tables: BTreeMap<&'static str, u64>,
    /// Work items by kind, then state.
    pub queue: BTreeMap<String, BTreeMap<ItemState, u64>>,
    pub oldest_pending: Option<WorkItem>,
    pub parked: u64,
    pub first_event_seq: Option<u64>,
    pub last_event_seq: Option<u64>,
    pub migrations: Vec<MigrationRecord>,
}

/// What `compact` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    pub events_pruned: u64,
    pub done_items_pruned: u64,
    pub cert_versions_pruned: u64,
    pub size_before: u64,
    pub size_after: u64,
}

/// Failure inside a transaction closure: an engine conflict (the closure is re-run) or an abort.
#[derive(Debug)]
pub struct TxError(ConflictableTransactionError<Error>);

impl TxError {
    /// Aborts the transaction; `commit` returns this error and nothing is written.
    pub fn abort(e: Error) -> Self {
        TxError(ConflictableTransactionError::Abort(e))
    }
}

impl From<sled::transaction::UnabortableTransactionError> for TxError {
    fn from(e: sled::transaction::UnabortableTransactionError) -> Self {
        TxError(e.into())
    }
}

impl From<Error> for TxError {
    fn from(e: Error) -> Self {
        TxError::abort(e)
    }
}

pub type TxResult<T> = std::result::Result<T, TxError>;

/// A transaction over every table. The closure given to `commit` may run more than once (on a
/// conflict with a concurrent commit), so it must not have side effects outside the `Tx`.
pub struct Tx<'a> {
    t: &'a [TransactionalTree],
    options: &'a Options,
    appended: std::cell::Cell<u64>,
    /// Items this transaction queued (id, when) and completed (id, kind), applied to
    /// `Inner::queued_at` once it commits.
    queued: std::cell::RefCell<Vec<(u64, Time)>>,
    completed: std::cell::RefCell<Vec<(u64, String)>>,
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

fn rs_key(k: &RecordSetKey) -> Result<Vec<u8>> {
    join_key("record set", &[&k.zone, &k.name, k.record_type.as_str()])
}

fn rs_key_from(table: &'static str, b: &[u8]) -> Result<RecordSetKey> {
    let [zone, name, ty] = split_key::<3>(table, b)?;
    let record_type = ty.parse().map_err(|detail| Error::Decode { table, detail })?;
    Ok(RecordSetKey { zone, name, record_type })
}

fn binding_key(k: &CertBindingKey) -> Result<Vec<u8>> {
    join_key("certificate binding", &[&k.namespace, &k.gateway, &k.listener])
}

fn version_key(k: &CertVersionKey) -> Result<Vec<u8>> {
    join_key("certificate version", &[&k.vault, &k.object, &k.version])
}

fn queue_key(kind: &str, key: &str) -> Result<Vec<u8>> {
    join_key("work item", &[kind, key])
}

fn due_key(at: Time, id: u64) -> Vec<u8> {
    let mut k = at.key_bytes().to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn id_from_due(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(8..16)?.try_into().ok()?))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Tx<'_> {
    fn get<T: DeserializeOwned>(&self, t: usize, key: &[u8]) -> TxResult<Option<T>> {
        match self.t[t].get(key)? {
            Some(v) => Ok(Some(codec::decode(tables::ALL[t], &v)?)),
            None => Ok(None),
        }
    }

    fn put<T: Serialize>(&self, t: usize, key: &[u8], value: &T) -> TxResult<()> {
        self.t[t].insert(key, codec::encode(tables::ALL[t], value)?)?;
        Ok(())
    }

    fn del(&self, t: usize, key: &[u8]) -> TxResult<bool> {
        Ok(self.t[t].remove(key)?.is_some())
    }

    fn next_counter(&self, name: &str) -> TxResult<u64> {
        let next: u64 = self.get(META, name.as_bytes())?.unwrap_or(1);
        self.put(META, name.as_bytes(), &(next + 1))?;
        Ok(next)
    }

    pub fn desired_record(&self, key: &RecordSetKey) -> TxResult<Option<DesiredRecordSet>> {
        self.get(DNS_DESIRED, &rs_key(key)?)
    }

    pub fn put_desired_record(&self, key: &RecordSetKey, value: &DesiredRecordSet) -> TxResult<()> {
        self.put(DNS_DESIRED, &rs_key(key)?, value)
    }

    pub fn delete_desired_record(&self, key: &RecordSetKey) -> TxResult<bool> {
        self.del(DNS_DESIRED, &rs_key(key)?)
    }

    pub fn applied_record(&self, key: &RecordSetKey) -> TxResult<Option<AppliedRecordSet>> {
        self.get(DNS_APPLIED, &rs_key(key)?)
    }

    pub fn put_applied_record(&self, key: &RecordSetKey, value: &AppliedRecordSet) -> TxResult<()> {
        self.put(DNS_APPLIED, &rs_key(key)?, value)
    }

    pub fn delete_applied_record(&self, key: &RecordSetKey) -> TxResult<bool> {
        self.del(DNS_APPLIED, &rs_key(key)?)
    }

    pub fn cert_binding(&self, key: &CertBindingKey) -> TxResult<Option<CertBinding>> {
        self.get(CERT_BINDINGS, &binding_key(key)?)
    }

    pub fn put_cert_binding(&self, key: &CertBindingKey, value: &CertBinding) -> TxResult<()> {
        self.put(CERT_BINDINGS, &binding_key(key)?, value)
    }

    pub fn delete_cert_binding(&self, key: &CertBindingKey) -> TxResult<bool> {
        self.del(CERT_BINDINGS, &binding_key(key)?)
    }

    pub fn cert_version(&self, key: &CertVersionKey) -> TxResult<Option<CertVersion>> {
        self.get(CERT_VERSIONS, &version_key(key)?)
    }

    pub fn put_cert_version(&self, key: &CertVersionKey, value: &CertVersion) -> TxResult<()> {
        self.put(CERT_VERSIONS, &version_key(key)?, value)
    }

    pub fn put_zone_report(&self, zone: &str, report: &ZoneReport) -> TxResult<()> {
        self.put(ZONE_REPORTS, &join_key("zone", &[zone])?, report)
    }

    /// Appends to the event log and returns the entry's sequence number (gap-free, monotonic).
    pub fn append_event(&self, event: NewEvent) -> TxResult<u64> {
        let seq = self.next_counter(meta_keys::NEXT_EVENT_SEQ)?;
        let stored = Event {
            seq,
            at: event.at,
            action: truncate(&event.action, MAX_ACTION_LEN),
            subject: truncate(&event.subject, MAX_SUBJECT_LEN),
            message: truncate(&event.message, MAX_MESSAGE_LEN),
        };
        self.put(EVENTS, &seq.to_be_bytes(), &stored)?;
        self.appended.set(self.appended.get() + 1);
        Ok(seq)
    }

    pub fn work_item(&self, id: u64) -> TxResult<Option<WorkItem>> {
        self.get(QUEUE_ITEMS, &id.to_be_bytes())
    }

    pub fn work_item_by_key(&self, kind: &str, key: &str) -> TxResult<Option<WorkItem>> {
        match self.get::<u64>(QUEUE_KEYS, &queue_key(kind, key)?)? {
            Some(id) => self.work_item(id),
            None => Ok(None),
        }
    }

    fn store_item(&self, item: &WorkItem) -> TxResult<()> {
        self.put(QUEUE_ITEMS, &item.id.to_be_bytes(), item)
    }

    fn schedule(&self, item: &mut WorkItem, state: ItemState, at: Time) -> TxResult<()> {
        if matches!(item.state, ItemState::Pending | ItemState::InFlight) {
            self.del(QUEUE_DUE, &due_key(item.next_attempt_at, item.id))?;
        }
        item.state = state;
        item.next_attempt_at = at;
        if matches!(state, ItemState::Pending | ItemState::InFlight) {
            self.t[QUEUE_DUE].insert(due_key(at, item.id), &[][..])?;
        }
        Ok(())
    }

    /// Queues work for (kind, key), due now. See [`Tx::enqueue_at`].
    pub fn enqueue(&self, kind: &str, key: &str, payload: &[u8], now: Time) -> TxResult<Enqueued> {
        self.enqueue_at(kind, key, payload, now, now)
    }

    /// Queues work for (kind, key), due at `due` (e.g. a deletion held down for a while). One item
    /// per key: a new payload replaces the old one (newest wins), resets the attempt count and
    /// takes the new due time; the same payload again changes nothing. An item in flight gets the
    /// new payload and runs again once its worker completes it.
    pub fn enqueue_at(&self, kind: &str, key: &str, payload: &[u8], due: Time, now: Time) -> TxResult<Enqueued> {
        let index_key = queue_key(kind, key)?;
        let Some(mut item) = self.work_item_by_key(kind, key)? else {
            let id = self.next_counter(meta_keys::NEXT_ITEM_ID)?;
            let mut item = WorkItem {
                id,
                kind: kind.to_owned(),
                key: key.to_owned(),
                payload: payload.to_vec(),
                state: ItemState::Done,
                attempts: 0,
                next_attempt_at: due,
                lease_token: 0,
                last_error: None,
                rerun: false,
                created_at: now,
                updated_at: now,
            };
            self.schedule(&mut item, ItemState::Pending, due)?;
            self.store_item(&item)?;
            self.put(QUEUE_KEYS, &index_key, &id)?;
            self.queued.borrow_mut().push((id, now));
            return Ok(Enqueued::Created(id));
        };
        if item.payload == payload {
            return Ok(Enqueued::Unchanged(item.id));
        }
        item.payload = payload.to_vec();
        item.updated_at = now;
        self.queued.borrow_mut().push((item.id, now));
        if item.state == ItemState::InFlight {
            item.rerun = true;
        } else {
            item.attempts = 0;
            item.last_error = None;
            self.schedule(&mut item, ItemState::Pending, due)?;
        }
        self.store_item(&item)?;
        Ok(Enqueued::Updated(item.id))
    }

    fn leased(&self, lease: Lease) -> TxResult<WorkItem> {
        match self.work_item(lease.id)? {
            Some(item) if item.state == ItemState::InFlight && item.lease_token == lease.token => Ok(item),
            Some(_) => Err(TxError::abort(Error::LeaseLost { id: lease.id })),
            None => Err(TxError::abort(Error::ItemNotFound { id: lease.id })),
        }
    }

    /// The work succeeded. Done, unless the payload changed meanwhile (then pending again).
    pub fn complete(&self, lease: Lease, now: Time) -> TxResult<ItemState> {
        let mut item = self.leased(lease)?;
        item.updated_at = now;
        item.last_error = None;
        if item.rerun {
            item.rerun = false;
            item.attempts = 0;
            self.schedule(&mut item, ItemState::Pending, now)?;
        } else {
            self.schedule(&mut item, ItemState::Done, now)?;
            self.completed.borrow_mut().push((item.id, item.kind.clone()));
        }
        self.store_item(&item)?;
        Ok(item.state)
    }

    /// The work failed transiently: try again at `next_attempt_at`, or park once the item has
    /// failed `max_attempts` times (an `item.parked` event records why).
    pub fn retry(&self, lease: Lease, next_attempt_at: Time, error: &str, now: Time) -> TxResult<Retried> {
        let mut item = self.leased(lease)?;
        item.attempts += 1;
        item.updated_at = now;
        item.last_error = Some(truncate(error, MAX_MESSAGE_LEN));
        if item.rerun {
            // A newer payload arrived while this attempt ran; it gets a fresh start.
            item.rerun = false;
            item.attempts = 0;
            self.schedule(&mut item, ItemState::Pending, now)?;
            self.store_item(&item)?;
            return Ok(Retried::Scheduled(now));
        }
        if item.attempts >= self.options.max_attempts {
            self.park_item(&mut item, now)?;
            return Ok(Retried::Parked);
        }
        self.schedule(&mut item, ItemState::Pending, next_attempt_at)?;
        self.store_item(&item)?;
        Ok(Retried::Scheduled(next_attempt_at))
    }

    /// The work failed for good until its input changes: park it now.
    pub fn park(&self, lease: Lease, error: &str, now: Time) -> TxResult<()> {
        let mut item = self.leased(lease)?;
        item.attempts += 1;
        item.updated_at = now;
        item.last_error = Some(truncate(error, MAX_MESSAGE_LEN));
        self.park_item(&mut item, now)
    }

    fn park_item(&self, item: &mut WorkItem, now: Time) -> TxResult<()> {
        item.rerun = false;
        self.schedule(item, ItemState::Parked, now)?;
        self.store_item(item)?;
        self.append_event(NewEvent::new(
            now,
            "item.parked",
            format!("{}/{}", item.kind, item.key),
            format!("after {} attempts: {}", item.attempts, item.last_error.as_deref().unwrap_or("no error recorded")),
        ))?;
        Ok(())
    }

    /// The work could not start yet (a rate limit's bucket is empty): try again at `at` without
    /// counting an attempt, so waiting for capacity never parks an item.
    pub fn defer(&self, lease: Lease, at: Time, now: Time) -> TxResult<()> {
        let mut item = self.leased(lease)?;
        item.updated_at = now;
        let due = if item.rerun { now } else { at };
        item.rerun = false;
        self.schedule(&mut item, ItemState::Pending, due)?;
        self.store_item(&item)
    }

    /// A process that opens the journal holds its lock, so an item in flight then was leased by
    /// a process that is gone (killed mid-item): make it due at `now` instead of when its lease
    /// would run out. Claiming it counts the failed attempt, as an expired lease does.
    pub fn release_lease(&self, id: u64, now: Time) -> TxResult<bool> {
        let Some(mut item) = self.work_item(id)? else { return Ok(false) };
        if item.state != ItemState::InFlight || item.next_attempt_at <= now {
            return Ok(false);
        }
        self.schedule(&mut item, ItemState::InFlight, now)?;
        self.store_item(&item)?;
        Ok(true)
    }

    /// Makes a parked (or done) item due now with a fresh attempt count.
    pub fn requeue(&self, id: u64, now: Time) -> TxResult<()> {
        let mut item = self.work_item(id)?.ok_or_else(|| TxError::abort(Error::ItemNotFound { id }))?;
        if item.state == ItemState::InFlight {
            item.rerun = true;
        } else {
            item.attempts = 0;
            self.schedule(&mut item, ItemState::Pending, now)?;
        }
        item.updated_at = now;
        self.queued.borrow_mut().push((item.id, now));
        self.store_item(&item)
    }

    /// Removes the item for (kind, key) whatever its state; a worker holding it loses its lease.
    pub fn forget(&self, kind: &str, key: &str) -> TxResult<bool> {
        let Some(mut item) = self.work_item_by_key(kind, key)? else { return Ok(false) };
        let at = item.next_attempt_at;
        self.schedule(&mut item, ItemState::Done, at)?;
        // Forgotten, not converged: dropped from the queue times without a report.
        self.completed.borrow_mut().push((item.id, String::new()));
        self.del(QUEUE_ITEMS, &item.id.to_be_bytes())?;
        self.del(QUEUE_KEYS, &queue_key(kind, key)?)?;
        Ok(true)
    }

    /// Claims one item if it is due at `now`; used by `Journal::claim`.
    fn claim_one(&self, id: u64, now: Time, lease_for: Duration) -> TxResult<Option<Claimed>> {
        let Some(mut item) = self.work_item(id)? else { return Ok(None) };
        let due = item.next_attempt_at <= now;
        match item.state {
            ItemState::Pending if due => {}
            ItemState::InFlight if due => {
                // The worker holding it stopped before finishing: that counts as a failed attempt.
                item.attempts += 1;
                item.last_error = Some("lease expired before the worker finished".into());
                if item.attempts >= self.options.max_attempts {
                    self.park_item(&mut item, now)?;
                    return Ok(None);
                }
            }
            _ => return Ok(None),
        }
        item.lease_token += 1;
        item.updated_at = now;
        self.schedule(&mut item, ItemState::InFlight, now.plus(lease_for))?;
        self.store_item(&item)?;
        Ok(Some(Claimed { lease: Lease { id, token: item.lease_token }, item }))
    }
}

impl Journal {
    pub(crate) fn from_raw(raw: RawJournal) -> Result<Self> {
        let trees = tables::ALL.iter().map(|t| raw.db.open_tree(t)).collect::<Result<Vec<_>, _>>()?;
        let log_path = raw.dir.join(crate::raw::ENGINE_DIR).join("db");
        let log_file = std::fs::File::open(&log_path).map_err(|e| Error::io("open engine log", &log_path, e))?;
        Ok(Journal {
            inner: Arc::new(Inner {
                raw,
                trees,
                written: AtomicU64::new(0),
                flushed: Mutex::new(0),
                log_file,
                appends_since_prune: AtomicU64::new(0),
                idents: Mutex::new(HashMap::new()),
                queued_at: Mutex::new(HashMap::new()),
                observer: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.raw.dir
    }

    /// Reports commit and convergence times to `observer` from now on (the first one set stays).
    pub fn set_observer(&self, observer: Arc<dyn Observer>) {
        let _ = self.inner.observer.set(observer);
    }

    fn track_queue_times(&self, queued: Vec<(u64, Time)>, completed: Vec<(u64, String)>) {
        if queued.is_empty() && completed.is_empty() {
            return;
        }
        let now = Time::now();
        let mut converged = Vec::new();
        {
            let mut times = lock(&self.inner.queued_at);
            for (id, at) in queued {
                // A newer payload for an unfinished item: it has been unconverged since the first.
                times.entry(id).or_insert(at);
            }
            for (id, kind) in completed {
                if let Some(at) = times.remove(&id)
                    && !kind.is_empty()
                {
                    converged.push((kind, at.age(now)));
                }
            }
        }
        if let Some(o) = self.inner.observer.get() {
            for (kind, took) in converged {
                o.converged(&kind, took);
            }
        }
    }

    /// Releases the leases of every item in flight ([`Tx::release_lease`]): for a process that
    /// has just opened the journal, whose previous holder died. Returns how many were released.
    pub fn release_leases(&self, now: Time) -> Result<u64> {
        let in_flight: Vec<u64> =
            self.work_items()?.into_iter().filter(|i| i.state == ItemState::InFlight).map(|i| i.id).collect();
        if in_flight.is_empty() {
            return Ok(0);
        }
        self.commit(|tx| {
            let mut released = 0;
            for id in &in_flight {
                released += u64::from(tx.release_lease(*id, now)?);
            }
            Ok(released)
        })
    }

    /// Unfinished items (pending, in flight, parked) counted by kind and state, with the oldest
    /// of each. Reads every item: meant for a metrics scrape, not a hot path.
    pub fn queue_stats(&self) -> Result<Vec<QueueStat>> {
        let times = lock(&self.inner.queued_at).clone();
        let mut stats: BTreeMap<(String, ItemState), (u64, Time)> = BTreeMap::new();
        for item in self.work_items()? {
            if item.state == ItemState::Done {
                continue;
            }
            let since = match item.state {
                ItemState::Parked => item.updated_at,
                _ => times.get(&item.id).copied().unwrap_or(item.updated_at),
            };
            let entry = stats.entry((item.kind, item.state)).or_insert((0, since));
            entry.0 += 1;
            entry.1 = entry.1.min(since);
        }
        Ok(stats.into_iter().map(|((kind, state), (count, oldest))| QueueStat { kind, state, count, oldest }).collect())
    }

    pub fn options(&self) -> &Options {
        &self.inner.raw.options
    }

    /// Applies `f` atomically across all tables and returns once the change is durable.
    pub fn commit<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T> {
        let started = std::time::Instant::now();
        let options = &self.inner.raw.options;
        let appended = std::cell::Cell::new(0);
        let queued = std::cell::RefCell::new(Vec::new());
        let completed = std::cell::RefCell::new(Vec::new());
        let trees: &[sled::Tree] = &self.inner.trees;
        let result = trees.transaction(|views: &Vec<TransactionalTree>| {
            let tx = Tx {
                t: views,
                options,
                appended: std::cell::Cell::new(0),
                queued: std::cell::RefCell::new(Vec::new()),
                completed: std::cell::RefCell::new(Vec::new()),
            };
            let out = f(&tx).map_err(|e| e.0)?;
            appended.set(tx.appended.get());
            queued.replace(tx.queued.take());
            completed.replace(tx.completed.take());
            Ok(out)
        });
        let value = match result {
            Ok(v) => v,
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(e.into()),
        };
        let ticket = self.inner.written.fetch_add(1, Ordering::SeqCst) + 1;
        self.make_durable(ticket)?;
        self.track_queue_times(queued.into_inner(), completed.into_inner());
        if let Some(o) = self.inner.observer.get() {
            o.committed(started.elapsed());
        }
        let appended = appended.get();
        if appended > 0 {
            let since = self.inner.appends_since_prune.fetch_add(appended, Ordering::Relaxed) + appended;
            if since >= options.prune_interval {
                self.inner.appends_since_prune.store(0, Ordering::Relaxed);
                let newest = self.last_event()?.map(|e| e.at).unwrap_or_default();
                self.prune_events(newest)?;
            }
        }
        Ok(value)
    }

    /// Group commit: whoever takes the flush lock flushes everything applied so far; a committer
    /// whose ticket is already covered by someone else's flush returns without flushing.
    fn make_durable(&self, ticket: u64) -> Result<()> {
        let mut flushed = self.inner.flushed.lock().unwrap_or_else(|p| p.into_inner());
        if *flushed >= ticket {
            return Ok(());
        }
        let covered = self.inner.written.load(Ordering::SeqCst);
        self.inner.raw.db.flush()?;
        self.inner
            .log_file
            .sync_data()
            .map_err(|e| Error::io("sync", self.dir().join(crate::raw::ENGINE_DIR).join("db"), e))?;
        *flushed = covered;
        Ok(())
    }

    /// Claims up to `max` due items in due order, leasing each for `lease_for`. An item whose
    /// lease runs out becomes due again (counted as a failed attempt).
    pub fn claim(&self, now: Time, max: usize, lease_for: Duration) -> Result<Vec<Claimed>> {
        self.claim_kinds(now, max, lease_for, "")
    }

    /// [`Journal::claim`], for items whose kind starts with `kind_prefix` only: each controller's
    /// workers drain their own kinds (`tls.`, `dns.`) from the one queue.
    pub fn claim_kinds(&self, now: Time, max: usize, lease_for: Duration, kind_prefix: &str) -> Result<Vec<Claimed>> {
        self.claim_where(now, max, lease_for, kind_prefix, |_| true)
    }

    /// [`Journal::claim_kinds`], skipping due items `wanted` refuses: e.g. the DNS workers pass by
    /// the items of a zone whose rate limit is spent and take the next zone's instead.
    pub fn claim_where(
        &self,
        now: Time,
        max: usize,
        lease_for: Duration,
        kind_prefix: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Vec<Claimed>> {
        let mut upper = now.key_bytes().to_vec();
        upper.extend_from_slice(&u64::MAX.to_be_bytes());
        let mut ids: Vec<u64> = Vec::new();
        for key in self.inner.trees[QUEUE_DUE].range(..=upper).keys() {
            if ids.len() >= max {
                break;
            }
            let Some(id) = id_from_due(&key?) else { continue };
            if self.ident(id)?.is_some_and(|(kind, key)| kind.starts_with(kind_prefix) && wanted(&key)) {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.commit(|tx| {
            let mut out = Vec::with_capacity(ids.len());
            for &id in &ids {
                if let Some(c) = tx.claim_one(id, now, lease_for)? {
                    out.push(c);
                }
            }
            Ok(out)
        })
    }

    /// The kind and key of item `id`, from the cache or the queue table.
    fn ident(&self, id: u64) -> Result<Option<Ident>> {
        if let Some(found) = lock(&self.inner.idents).get(&id) {
            return Ok(Some(found.clone()));
        }
        let Some(item) = self.work_item(id)? else { return Ok(None) };
        let ident: Ident = (item.kind.into(), item.key.into());
        let mut idents = lock(&self.inner.idents);
        if idents.len() >= MAX_IDENTS {
            idents.clear();
        }
        idents.insert(id, ident.clone());
        Ok(Some(ident))
    }

    fn read<T: DeserializeOwned>(&self, t: usize, key: &[u8]) -> Result<Option<T>> {
        self.inner.trees[t].get(key)?.map(|v| codec::decode(tables::ALL[t], &v)).transpose()
    }

    fn scan<K, T: DeserializeOwned>(
        &self,
        t: usize,
        prefix: &[u8],
        key: impl Fn(&[u8]) -> Result<K>,
    ) -> Result<Vec<(K, T)>> {
        self.inner.trees[t]
            .scan_prefix(prefix)
            .map(|r| {
                let (k, v) = r?;
                Ok((key(&k)?, codec::decode(tables::ALL[t], &v)?))
            })
            .collect()
    }

    pub fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.read(META, key.as_bytes())
    }

    pub fn cluster_id(&self) -> Result<Option<String>> {
        self.meta(meta_keys::CLUSTER_ID)
    }

    pub fn desired_record(&self, key: &RecordSetKey) -> Result<Option<DesiredRecordSet>> {
        self.read(DNS_DESIRED, &rs_key(key)?)
    }

    pub fn applied_record(&self, key: &RecordSetKey) -> Result<Option<AppliedRecordSet>> {
        self.read(DNS_APPLIED, &rs_key(key)?)
    }

    /// Desired record sets, all or in one zone.
    pub fn desired_records(&self, zone: Option<&str>) -> Result<Vec<(RecordSetKey, DesiredRecordSet)>> {
        let prefix = zone.map(|z| join_key("zone", &[z, ""])).transpose()?.unwrap_or_default();
        self.scan(DNS_DESIRED, &prefix, |k| rs_key_from(tables::DNS_DESIRED, k))
    }

    pub fn applied_records(&self, zone: Option<&str>) -> Result<Vec<(RecordSetKey, AppliedRecordSet)>> {
        let prefix = zone.map(|z| join_key("zone", &[z, ""])).transpose()?.unwrap_or_default();
        self.scan(DNS_APPLIED, &prefix, |k| rs_key_from(tables::DNS_APPLIED, k))
    }

    pub fn cert_bindings(&self) -> Result<Vec<(CertBindingKey, CertBinding)>> {
        self.scan(CERT_BINDINGS, b"", |k| {
            let [namespace, gateway, listener] = split_key(tables::CERT_BINDINGS, k)?;
            Ok(CertBindingKey { namespace, gateway, listener })
        })
    }

    pub fn cert_versions(&self) -> Result<Vec<(CertVersionKey, CertVersion)>> {
        self.scan(CERT_VERSIONS, b"", |k| {
            let [vault, object, version] = split_key(tables::CERT_VERSIONS, k)?;
            Ok(CertVersionKey { vault, object, version })
        })
    }

    pub fn zone_reports(&self) -> Result<Vec<(String, ZoneReport)>> {
        self.scan(ZONE_REPORTS, b"", |k| Ok(split_key::<1>(tables::ZONE_REPORTS, k)?[0].clone()))
    }

    pub fn work_item(&self, id: u64) -> Result<Option<WorkItem>> {
        self.read(QUEUE_ITEMS, &id.to_be_bytes())
    }

    pub fn work_item_by_key(&self, kind: &str, key: &str) -> Result<Option<WorkItem>> {
        match self.read::<u64>(QUEUE_KEYS, &queue_key(kind, key)?)? {
            Some(id) => self.work_item(id),
            None => Ok(None),
        }
    }

    /// All work items, in id order.
    pub fn work_items(&self) -> Result<Vec<WorkItem>> {
        Ok(self.scan(QUEUE_ITEMS, b"", |_| Ok(()))?.into_iter().map(|((), v)| v).collect())
    }

    /// How many items are pending or in flight: the size of the due index, without reading the
    /// items themselves (cheap enough for every metrics scrape, unlike [`Journal::summary`]).
    pub fn queue_depth(&self) -> u64 {
        self.inner.trees[QUEUE_DUE].len() as u64
    }

    /// The pending or in-flight item due soonest.
    pub fn next_due(&self) -> Result<Option<WorkItem>> {
        self.next_due_kinds("")
    }

    /// The pending or in-flight item due soonest whose kind starts with `kind_prefix`.
    pub fn next_due_kinds(&self, kind_prefix: &str) -> Result<Option<WorkItem>> {
        for key in self.inner.trees[QUEUE_DUE].iter().keys() {
            let id =
                id_from_due(&key?).ok_or(Error::Decode { table: tables::QUEUE_DUE, detail: "short key".into() })?;
            if !self.ident(id)?.is_some_and(|(kind, _)| kind.starts_with(kind_prefix)) {
                continue;
            }
            if let Some(item) = self.work_item(id)? {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    /// Events with `seq > after`, oldest first, at most `limit`.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>> {
        let start = after.saturating_add(1).to_be_bytes();
        self.inner.trees[EVENTS].range(start..).take(limit).map(|r| codec::decode(tables::EVENTS, &r?.1)).collect()
    }

    pub fn first_event(&self) -> Result<Option<Event>> {
        self.inner.trees[EVENTS].first()?.map(|(_, v)| codec::decode(tables::EVENTS, &v)).transpose()
    }

    pub fn last_event(&self) -> Result<Option<Event>> {
        self.inner.trees[EVENTS].last()?.map(|(_, v)| codec::decode(tables::EVENTS, &v)).transpose()
    }

    /// Blocks up to `timeout` for the next event appended after this call began.
    pub fn watch_events(&self) -> EventWatch {
        EventWatch(self.inner.trees[EVENTS].watch_prefix(b""))
    }

    /// Drops events older than `max_age` before `now`, then the oldest beyond `max_entries`.
    pub fn prune_events(&self, now: Time) -> Result<u64> {
        let events = &self.inner.trees[EVENTS];
        let options = self.options();
        let cutoff = now.minus(options.event_max_age);
        let excess = (events.len() as u64).saturating_sub(options.event_max_entries);
        let mut batch = sled::Batch::default();
        let mut pruned = 0u64;
        for r in events.iter() {
            let (k, v) = r?;
            let e: Event = codec::decode(tables::EVENTS, &v)?;
            if pruned >= excess && e.at >= cutoff {
                break;
            }
            batch.remove(k);
            pruned += 1;
        }
        if pruned > 0 {
            events.apply_batch(batch)?;
            self.inner.raw.db.flush()?;
        }
        Ok(pruned)
    }

    pub fn size_on_disk(&self) -> u64 {
        size_of_tree(self.dir())
    }

    pub fn summary(&self) -> Result<Summary> {
        let mut counts = BTreeMap::new();
        for (i, name) in tables::ALL.iter().enumerate() {
            counts.insert(*name, self.inner.trees[i].len() as u64);
        }
        let mut queue: BTreeMap<String, BTreeMap<ItemState, u64>> = BTreeMap::new();
        let mut oldest_pending: Option<WorkItem> = None;
        let mut parked = 0;
        for item in self.work_items()? {
            *queue.entry(item.kind.clone()).or_default().entry(item.state).or_default() += 1;
            match item.state {
                ItemState::Parked => parked += 1,
                ItemState::Pending | ItemState::InFlight => {
                    if oldest_pending.as_ref().is_none_or(|o| item.updated_at < o.updated_at) {
                        oldest_pending = Some(item);
                    }
                }
                ItemState::Done => {}
            }
        }
        Ok(Summary {
            dir: self.dir().to_path_buf(),
            schema_version: self.meta(meta_keys::SCHEMA_VERSION)?.unwrap_or(0),
            cluster_id: self.cluster_id()?,
            created_at: self.meta(meta_keys::CREATED_AT)?,
            size_bytes: self.size_on_disk(),
            tables: counts,
            queue,
            oldest_pending,
            parked,
            first_event_seq: self.first_event()?.map(|e| e.seq),
            last_event_seq: self.last_event()?.map(|e| e.seq),
            migrations: self.meta(meta_keys::MIGRATIONS)?.unwrap_or_default(),
        })
    }

    /// Applies retention: events (age and count), done work items older than their retention,
    /// and certificate versions beyond the per-certificate bound; then flushes.
    pub fn compact(&self, now: Time) -> Result<CompactReport> {
        let size_before = self.size_on_disk();
        let events_pruned = self.prune_events(now)?;
        let options = self.options().clone();
        let done_cutoff = now.minus(options.done_item_max_age);
        let old_done: Vec<WorkItem> = self
            .work_items()?
            .into_iter()
            .filter(|i| i.state == ItemState::Done && i.updated_at < done_cutoff)
            .collect();
        let mut by_object: BTreeMap<(String, String), Vec<(CertVersionKey, Time)>> = BTreeMap::new();
        for (k, v) in self.cert_versions()? {
            by_object.entry((k.vault.clone(), k.object.clone())).or_default().push((k, v.seen_at));
        }
        let mut old_versions = Vec::new();
        for (_, mut versions) in by_object {
            versions.sort_by_key(|(_, seen)| std::cmp::Reverse(*seen));
            old_versions.extend(versions.into_iter().skip(options.cert_versions_per_object).map(|(k, _)| k));
        }
        self.commit(|tx| {
            for item in &old_done {
                // Re-checked inside the transaction: the item may have been re-enqueued meanwhile.
                if tx.work_item(item.id)?.is_some_and(|i| i.state == ItemState::Done && i.updated_at < done_cutoff) {
                    tx.forget(&item.kind, &item.key)?;
                }
            }
            for k in &old_versions {
                tx.del(CERT_VERSIONS, &version_key(k)?)?;
            }
            Ok(())
        })?;
        restrict_tree(self.dir())?;
        Ok(CompactReport {
            events_pruned,
            done_items_pruned: old_done.len() as u64,
            cert_versions_pruned: old_versions.len() as u64,
            size_before,
            size_after: self.size_on_disk(),
        })
    }

    /// Flushes and closes. Dropping the last handle does the same, minus error reporting.
    pub fn close(self) -> Result<()> {
        self.inner.raw.db.flush()?;
        restrict_tree(self.dir())?;
        Ok(())
    }

    /// Every entry as bytes (for fixtures and offline rewrites).
    pub fn dump(&self) -> Result<Vec<crate::raw::RawEntry>> {
        self.inner.raw.dump()
    }
}

/// New events as they are appended.
pub struct EventWatch(sled::Subscriber);

impl std::fmt::Debug for EventWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventWatch").finish_non_exhaustive()
    }
}

impl EventWatch {
    /// The next appended event, or `None` if none arrives within `timeout`.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<Event>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.0.next_timeout(left) {
                Ok(sled::Event::Insert { value, .. }) => return Some(codec::decode(tables::EVENTS, &value)),
                Ok(sled::Event::Remove { .. }) => continue,
                Err(_) => return None,
            }
        }
    }
}
