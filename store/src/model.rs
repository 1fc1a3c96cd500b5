//! The typed rows of the journal's tables. These structs *are* the on-disk format (through
//! `codec`): adding, removing or reordering a field is a schema change that needs a migration
//! step and a fixture. None of them may ever hold key material.

use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::fmt;

/// DNS record types routewarden publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Txt,
}

impl RecordType {
    pub const ALL: [RecordType; 4] = [RecordType::A, RecordType::Aaaa, RecordType::Cname, RecordType::Txt];

    /// The name Azure DNS uses in record-set URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Txt => "TXT",
        }
    }
}

impl std::str::FromStr for RecordType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RecordType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown record type {s:?} (want A, AAAA, CNAME or TXT)"))
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identity of a record set: zone resource id / relative name / type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordSetKey {
    /// ARM resource id of the zone (public or private).
    pub zone: String,
    /// Name relative to the zone; `@` for the apex.
    pub name: String,
    pub record_type: RecordType,
}

impl fmt::Display for RecordSetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.zone, self.record_type, self.name)
    }
}

/// What a record set should contain, as planned from the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredRecordSet {
    pub ttl: u32,
    /// Addresses (A / AAAA), one canonical name (CNAME) or strings (TXT), sorted.
    pub targets: Vec<String>,
    /// Owner id written into the record set's Azure metadata (cluster id + DNS resource).
    pub owner: String,
    /// The Kubernetes objects this record comes from (`kind/namespace/name`), for operators.
    pub sources: Vec<String>,
    pub updated_at: Time,
}

/// What was last written to Azure for a record set, and the etag Azure answered with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedRecordSet {
    pub etag: String,
    pub owner: String,
    pub ttl: u32,
    pub targets: Vec<String>,
    pub applied_at: Time,
}

/// Identity of a TLS listener binding: namespace / gateway / listener.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CertBindingKey {
    pub namespace: String,
    pub gateway: String,
    pub listener: String,
}

impl fmt::Display for CertBindingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.gateway, self.listener)
    }
}

/// Which Key Vault certificate a listener serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertBinding {
    /// Vault URL, e.g. `https://myvault.vault.azure.net`.
    pub vault: String,
    /// Certificate object name.
    pub object: String,
    /// Set when the listener's URI names a version: rotation is not followed.
    pub pinned_version: Option<String>,
    /// `namespace/serviceaccount` whose workload identity reads the vault.
    pub identity: String,
    pub updated_at: Time,
}

/// Identity of one certificate version: vault / object / version.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CertVersionKey {
    pub vault: String,
    pub object: String,
    pub version: String,
}

/// What happened to a certificate version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CertOutcome {
    /// Seen in Key Vault metadata, not (yet) applied.
    Seen,
    /// Validated and written to the listener Secrets.
    Applied,
    /// Failed validation; the last good version stays in place.
    Rejected,
}

impl CertOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CertOutcome::Seen => "seen",
            CertOutcome::Applied => "applied",
            CertOutcome::Rejected => "rejected",
        }
    }
}

/// Metadata of a certificate version. Never the key, never the certificate body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertVersion {
    /// Base64url SHA-1 thumbprint of the leaf, as Key Vault reports it.
    pub x5t: String,
    pub not_before: Time,
    pub not_after: Time,
    pub seen_at: Time,
    pub applied_at: Option<Time>,
    pub outcome: CertOutcome,
    /// Why a version was rejected.
    pub reason: Option<String>,
}

/// States of a work item. See the crate docs for the transitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ItemState {
    Pending,
    InFlight,
    Done,
    Parked,
}

impl ItemState {
    pub const ALL: [ItemState; 4] = [ItemState::Pending, ItemState::InFlight, ItemState::Done, ItemState::Parked];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::InFlight => "in-flight",
            ItemState::Done => "done",
            ItemState::Parked => "parked",
        }
    }
}

impl fmt::Display for ItemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A durable unit of work: one per (kind, key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    pub id: u64,
    /// What the item does, e.g. `dns.record` or `tls.listener`; a short bounded set.
    pub kind: String,
    /// What it acts on; unique within its kind.
    pub key: String,
    /// Caller-encoded description of the work (never key material).
    pub payload: Vec<u8>,
    pub state: ItemState,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When the item is due (pending) or when its lease expires (in flight).
    pub next_attempt_at: Time,
    /// Bumped on every claim; a worker's lease is valid only while the token matches.
    pub lease_token: u64,
    pub last_error: Option<String>,
    /// The payload changed while in flight: run again after completion.
    pub rerun: bool,
    pub created_at: Time,
    pub updated_at: Time,
}

/// One entry of the append-only event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at: Time,
    /// What kind of change, e.g. `record.applied`, `cert.rotated`, `item.parked`.
    pub action: String,
    /// What it happened to, e.g. a record-set key or `namespace/gateway/listener`.
    pub subject: String,
    /// Why, in words for operators.
    pub message: String,
}

/// An event before the journal assigns its sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub at: Time,
    pub action: String,
    pub subject: String,
    pub message: String,
}

impl NewEvent {
    pub fn new(at: Time, action: impl Into<String>, subject: impl Into<String>, message: impl Into<String>) -> Self {
        NewEvent { at, action: action.into(), subject: subject.into(), message: message.into() }
    }
}

/// The result of the last verification of one zone: what the DNS verifier found in Azure
/// that the journal alone cannot tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneReport {
    pub verified_at: Time,
    /// Record sets in the zone, all owners.
    pub record_sets: u64,
    /// Azure's record-set limit for the zone.
    pub limit: u64,
    /// Owned by us, with no live source.
    pub stale: Vec<ReportedRecord>,
    /// Not owned by us, occupying a name we want.
    pub foreign_blocking: Vec<ReportedRecord>,
    /// Owned records whose content had drifted and were repaired.
    pub drift_repaired: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedRecord {
    pub name: String,
    pub record_type: RecordType,
    /// Owner id from the record's metadata, if any.
    pub owner: Option<String>,
    pub detail: String,
}
