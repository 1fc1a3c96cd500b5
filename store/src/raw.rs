//! Byte-level access to a journal, for schema migrations and fixtures. A `RawJournal` is the
//! journal opened (locked, permissions fixed) before its schema is known; migration steps read
//! and rewrite tables here, then `into_journal` checks the schema and hands out the typed API.

use crate::codec;
use crate::error::{Error, Result};
use crate::fs::{DirLock, ensure_private_dir, restrict_tree};
use crate::journal::{Journal, Options};
use crate::time::Time;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Table names. The typed API uses exactly these; migrations may add or drop others.
pub mod tables {
    pub const META: &str = "meta";
    pub const DNS_DESIRED: &str = "dns_desired";
    pub const DNS_APPLIED: &str = "dns_applied";
    pub const CERT_BINDINGS: &str = "cert_bindings";
    pub const CERT_VERSIONS: &str = "cert_versions";
    pub const QUEUE_ITEMS: &str = "queue_items";
    pub const QUEUE_KEYS: &str = "queue_keys";
    pub const QUEUE_DUE: &str = "queue_due";
    pub const EVENTS: &str = "events";
    pub const ZONE_REPORTS: &str = "zone_reports";

    /// Every table of the current schema, in a fixed order (the order of transaction views).
    pub const ALL: [&str; 10] = [
        META,
        DNS_DESIRED,
        DNS_APPLIED,
        CERT_BINDINGS,
        CERT_VERSIONS,
        QUEUE_ITEMS,
        QUEUE_KEYS,
        QUEUE_DUE,
        EVENTS,
        ZONE_REPORTS,
    ];
}

/// Keys of the meta table.
pub mod meta_keys {
    pub const SCHEMA_VERSION: &str = "schema_version";
    pub const CLUSTER_ID: &str = "cluster_id";
    pub const CREATED_AT: &str = "created_at";
    pub const MIGRATIONS: &str = "migrations";
    pub const NEXT_EVENT_SEQ: &str = "next_event_seq";
    pub const NEXT_ITEM_ID: &str = "next_item_id";
}

/// A migration step that ran, as recorded in meta.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationRecord {
    pub version: u32,
    pub name: String,
    pub applied_at: Time,
}

/// One stored entry, as bytes; the unit of dumps and fixtures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    pub table: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// A journal opened below the schema level.
#[derive(Debug)]
pub struct RawJournal {
    // Field order matters: the engine is dropped (and its files closed) before the lock is released.
    pub(crate) db: sled::Db,
    pub(crate) dir: PathBuf,
    pub(crate) _lock: DirLock,
    pub(crate) options: Options,
}

/// One table, as bytes.
#[derive(Debug, Clone)]
pub struct RawTable(sled::Tree);

/// The engine's directory inside a journal directory.
pub(crate) const ENGINE_DIR: &str = "engine";

/// Whether `dir` holds a journal (without opening, locking or creating anything).
pub fn is_journal(dir: &Path) -> bool {
    dir.join(ENGINE_DIR).is_dir()
}

impl RawJournal {
    /// Opens (creating if needed) the journal in `dir`: directory 0700, lock file, engine, files 0600.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        ensure_private_dir(&dir)?;
        let lock = DirLock::acquire(&dir)?;
        let engine_dir = dir.join(ENGINE_DIR);
        ensure_private_dir(&engine_dir)?;
        // We hold the directory lock, so no other process has the engine open. The engine's own
        // lock can still be held for a moment by this process's previous handle (its flusher thread
        // outlives the last drop), so a lock failure here is waited out briefly. sled reports it as
        // an I/O error of kind Other with this text; there is nothing more structured to match.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let db = loop {
            let opened = sled::Config::new()
                .path(&engine_dir)
                .cache_capacity(options.cache_bytes)
                // Acknowledged commits are flushed explicitly (group commit); the background flush
                // only bounds how much unacknowledged work a crash can take with it.
                .flush_every_ms(Some(500))
                .open();
            match opened {
                Err(sled::Error::Io(io))
                    if (io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().starts_with("could not acquire lock"))
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(sled::Error::Io(io)) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err(Error::Locked { dir: dir.clone(), pid: None });
                }
                other => break other?,
            }
        };
        restrict_tree(&dir)?;
        Ok(RawJournal { db, dir, _lock: lock, options })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn table(&self, name: &str) -> Result<RawTable> {
        Ok(RawTable(self.db.open_tree(name)?))
    }

    /// Tables present on disk (the engine's own default tree excluded).
    pub fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .db
            .tree_names()
            .into_iter()
            .filter_map(|n| String::from_utf8(n.to_vec()).ok())
            .filter(|n| n != "__sled__default")
            .collect();
        names.sort();
        names
    }

    pub fn meta_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.table(tables::META)?.get(key.as_bytes())?.map(|v| codec::decode(tables::META, &v)).transpose()
    }

    pub fn meta_put<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        self.table(tables::META)?.insert(key.as_bytes(), &codec::encode(tables::META, value)?)
    }

    /// The stored schema version; `None` for a journal nothing was ever written to.
    pub fn schema_version(&self) -> Result<Option<u32>> {
        self.meta_get(meta_keys::SCHEMA_VERSION)
    }

    pub fn migrations(&self) -> Result<Vec<MigrationRecord>> {
        Ok(self.meta_get(meta_keys::MIGRATIONS)?.unwrap_or_default())
    }

    /// Records that the step to `version` ran: the version and the history entry change together
    /// in one atomic batch on the meta table, then everything is flushed.
    pub fn record_migration(&self, version: u32, name: &str, at: Time) -> Result<()> {
        let mut history = self.migrations()?;
        if !history.iter().any(|m| m.version == version) {
            history.push(MigrationRecord { version, name: name.to_owned(), applied_at: at });
        }
        let meta = self.table(tables::META)?;
        meta.apply(vec![
            (meta_keys::SCHEMA_VERSION.as_bytes().to_vec(), Some(codec::encode(tables::META, &version)?)),
            (meta_keys::MIGRATIONS.as_bytes().to_vec(), Some(codec::encode(tables::META, &history)?)),
        ])?;
        self.flush()
    }

    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Every entry of every table, tables in name order, keys in order.
    pub fn dump(&self) -> Result<Vec<RawEntry>> {
        let mut out = Vec::new();
        for name in self.table_names() {
            for (key, value) in self.table(&name)?.entries()? {
                out.push(RawEntry { table: name.clone(), key, value });
            }
        }
        Ok(out)
    }

    /// Writes entries as they are (for fixtures and offline compaction), then flushes.
    pub fn load(&self, entries: &[RawEntry]) -> Result<()> {
        for e in entries {
            self.table(&e.table)?.insert(&e.key, &e.value)?;
        }
        self.flush()
    }

    /// Checks the schema and hands out the typed journal.
    pub fn into_journal(self) -> Result<Journal> {
        match self.schema_version()? {
            Some(v) if v == SCHEMA_VERSION => Journal::from_raw(self),
            Some(v) if v > SCHEMA_VERSION => {
                Err(Error::NewerSchema { dir: self.dir.clone(), found: v, supported: SCHEMA_VERSION })
            }
            found => {
                Err(Error::NotMigrated { dir: self.dir.clone(), found: found.unwrap_or(0), expected: SCHEMA_VERSION })
            }
        }
    }
}

impl RawTable {
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(key)?.map(|v| v.to_vec()))
    }

    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.0.insert(key, value)?;
        Ok(())
    }

    pub fn remove(&self, key: &[u8]) -> Result<()> {
        self.0.remove(key)?;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.0.iter().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Error::from)).collect()
    }

    /// Applies inserts (`Some`) and removals (`None`) atomically.
    pub fn apply(&self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.0.apply_batch(batch)?;
        Ok(())
    }
}
