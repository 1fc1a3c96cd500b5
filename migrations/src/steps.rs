//! The migration steps, oldest first. Add a step by appending `Step { version: N, .. }` with a
//! function `mNNNN_<what>`, bumping `routewarden_store::SCHEMA_VERSION` to N, and checking in
//! `fixtures/schema-NNNN.ndjson` (see `fixtures.rs`).

use routewarden_store::{RawJournal, Result, Time, meta_keys};

/// What a step may know besides the journal.
#[derive(Clone, Debug)]
pub struct StepContext {
    pub now: Time,
    pub cluster_id: Option<String>,
}

#[derive(Debug)]
pub struct Step {
    /// The schema version this step produces.
    pub version: u32,
    pub name: &'static str,
    pub up: fn(&RawJournal, &StepContext) -> Result<()>,
}

pub static STEPS: &[Step] = &[Step { version: 1, name: "initial", up: m0001_initial }];

/// Schema 1: stamps a new journal with its identity. The tables themselves are created on first
/// use. Idempotent: values already present are kept, so a re-run changes nothing.
fn m0001_initial(raw: &RawJournal, ctx: &StepContext) -> Result<()> {
    if raw.meta_get::<String>(meta_keys::CLUSTER_ID)?.is_none() {
        let id = ctx.cluster_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        raw.meta_put(meta_keys::CLUSTER_ID, &id)?;
    }
    if raw.meta_get::<Time>(meta_keys::CREATED_AT)?.is_none() {
        raw.meta_put(meta_keys::CREATED_AT, &ctx.now)?;
    }
    raw.flush()
}
