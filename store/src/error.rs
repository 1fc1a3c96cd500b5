//! The journal's one error type. Callers decide what to do by variant, never by message text.

use std::path::PathBuf;

/// Everything that can go wrong opening, reading or writing a journal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process holds the journal's lock file.
    #[error(
        "journal {dir} is in use by another process{} (only one process may open a journal; reach a running daemon with --admin)",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked { dir: PathBuf, pid: Option<u32> },

    /// The journal was written by a newer schema than this build understands.
    #[error(
        "journal {dir} has schema version {found}, but this build of routewarden supports schema versions up to {supported}; run a newer routewarden or move this journal aside"
    )]
    NewerSchema { dir: PathBuf, found: u32, supported: u32 },

    /// The journal's schema is older than this build's and was not migrated before use.
    #[error(
        "journal {dir} has schema version {found}, this build expects {expected}; open it through routewarden-migrations so pending migrations run"
    )]
    NotMigrated { dir: PathBuf, found: u32, expected: u32 },

    /// A stored value could not be decoded.
    #[error("failed to decode {table} entry: {detail}")]
    Decode { table: &'static str, detail: String },

    /// A value could not be encoded.
    #[error("failed to encode {table} entry: {detail}")]
    Encode { table: &'static str, detail: String },

    /// A key component contains a byte the key encoding reserves.
    #[error("invalid {what} {value:?}: {why}")]
    InvalidKey { what: &'static str, value: String, why: &'static str },

    /// A work-item lease is no longer held (the item was reclaimed, completed, or removed).
    #[error("lease on work item {id} is no longer held")]
    LeaseLost { id: u64 },

    /// No such work item.
    #[error("work item {id} not found")]
    ItemNotFound { id: u64 },

    /// A caller's transaction closure aborted.
    #[error("{0}")]
    Aborted(String),

    /// The storage engine failed (I/O, corruption).
    #[error("journal storage failed: {0}")]
    Storage(String),

    /// Filesystem work around the engine failed (directory, permissions, lock file).
    #[error("failed to {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
