//! Journal schema migrations. [`open`] is how every part of routewarden opens a journal: it opens
//! the journal below the schema level, refuses one written by a newer schema, runs every pending
//! step in order — before anything else touches the tables — records each in the journal's meta,
//! and only then hands out the typed [`Journal`].
//!
//! Steps are numbered `m0001_…`, `m0002_…`; step N takes a journal from schema N-1 to N. Every step
//! is idempotent: a crash half-way through a step leaves the schema version unchanged, so the step
//! runs again at the next open and must cope with its own partial work. Every schema version has
//! a frozen fixture under `fixtures/` (see `fixtures.rs`), and the tests migrate each one to the
//! current schema; a schema version without a fixture fails the tests.

pub mod fixtures;
mod steps;

use routewarden_store::{Journal, Options, RawJournal, SCHEMA_VERSION, Time};
use std::path::Path;

pub use steps::{STEPS, Step, StepContext};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] routewarden_store::Error),
    #[error("migration m{version:04}_{name} failed: {source}")]
    Step { version: u32, name: &'static str, source: routewarden_store::Error },
}

/// How to open a journal.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    pub journal: Options,
    /// Cluster id for a new journal; a random one is generated when absent. An existing journal
    /// keeps the id it was created with.
    pub cluster_id: Option<String>,
}

/// Opens the journal in `dir`, creating it if needed, and migrates it to [`SCHEMA_VERSION`].
pub fn open(dir: impl AsRef<Path>, options: OpenOptions, now: Time) -> Result<Journal, Error> {
    let raw = RawJournal::open(dir.as_ref(), options.journal.clone())?;
    migrate(&raw, &options, now)?;
    Ok(raw.into_journal()?)
}

/// Runs the pending steps on an open raw journal. Returns the steps that ran.
pub fn migrate(raw: &RawJournal, options: &OpenOptions, now: Time) -> Result<Vec<&'static Step>, Error> {
    let current = raw.schema_version()?.unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(routewarden_store::Error::NewerSchema {
            dir: raw.dir().to_path_buf(),
            found: current,
            supported: SCHEMA_VERSION,
        }
        .into());
    }
    let ctx = StepContext { now, cluster_id: options.cluster_id.clone() };
    let mut ran = Vec::new();
    for step in STEPS.iter().filter(|s| s.version > current) {
        (step.up)(raw, &ctx).map_err(|source| Error::Step { version: step.version, name: step.name, source })?;
        raw.record_migration(step.version, step.name, now)?;
        ran.push(step);
    }
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_one_by_one_up_to_the_current_schema() {
        let versions: Vec<u32> = STEPS.iter().map(|s| s.version).collect();
        let expected: Vec<u32> = (1..=SCHEMA_VERSION).collect();
        assert_eq!(versions, expected, "every schema version needs exactly one step, in order");
    }
}
