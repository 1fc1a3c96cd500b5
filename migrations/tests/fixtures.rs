//! Every schema version's frozen fixture opens and migrates to the current schema, and the
//! current build still writes exactly the current fixture (so an encoding change cannot slip in
//! without a new schema version, a migration step and a fixture).
#![allow(clippy::unwrap_used)]
use routewarden_migrations::{OpenOptions, STEPS, fixtures, open};
use routewarden_store::*;

fn load(version: u32, dir: &std::path::Path) {
    let path = fixtures::path(version);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "schema version {version} has no fixture at {} ({e}); generate it with \
             `cargo run -p routewarden-migrations --bin routewarden-journal-fixture`",
            path.display()
        )
    });
    let raw = RawJournal::open(dir, Options::default()).unwrap();
    raw.load(&fixtures::from_ndjson(&text).unwrap()).unwrap();
}

#[test]
fn every_schema_version_has_a_fixture_that_migrates_to_the_current_schema() {
    for version in 1..=SCHEMA_VERSION {
        let dir = tempfile::tempdir().unwrap();
        load(version, dir.path());
        let j = open(dir.path(), OpenOptions::default(), Time::from_millis(1)).unwrap();
        let s = j.summary().unwrap();
        assert_eq!(s.schema_version, SCHEMA_VERSION, "fixture {version}");
        assert_eq!(s.cluster_id.as_deref(), Some(fixtures::CLUSTER_ID), "the cluster id survives migration");
        let recorded: Vec<u32> = s.migrations.iter().map(|m| m.version).collect();
        assert_eq!(recorded, (1..=SCHEMA_VERSION).collect::<Vec<_>>(), "fixture {version}: every step is recorded");
        // Everything decodes through the typed API.
        assert_eq!(j.desired_records(None).unwrap().len(), 1);
        assert_eq!(j.applied_records(None).unwrap().len(), 1);
        assert_eq!(j.cert_bindings().unwrap().len(), 1);
        assert_eq!(j.cert_versions().unwrap().len(), 1);
        assert_eq!(j.zone_reports().unwrap().len(), 1);
        let states: Vec<ItemState> = j.work_items().unwrap().iter().map(|i| i.state).collect();
        for state in ItemState::ALL {
            assert!(states.contains(&state), "fixture {version} has a {state} work item");
        }
        assert!(j.events_after(0, 100).unwrap().len() >= 2);
    }
}

#[test]
fn this_build_writes_exactly_the_current_schema_fixture() {
    let expected = std::fs::read_to_string(fixtures::path(SCHEMA_VERSION)).unwrap();
    let actual = fixtures::current_fixture().unwrap();
    assert!(
        expected == actual,
        "the journal encoding changed without a schema version bump: bump routewarden_store::SCHEMA_VERSION, \
         add a migration step, and write the new fixture with `cargo run -p routewarden-migrations --bin routewarden-journal-fixture`"
    );
}

#[test]
fn a_new_journal_is_stamped_and_keeps_its_identity_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let j = open(dir.path(), OpenOptions::default(), Time::from_millis(7)).unwrap();
        let s = j.summary().unwrap();
        assert_eq!((s.schema_version, s.created_at), (SCHEMA_VERSION, Some(Time::from_millis(7))));
        s.cluster_id.unwrap()
    };
    let options = OpenOptions { cluster_id: Some("other".into()), ..OpenOptions::default() };
    let j = open(dir.path(), options, Time::from_millis(9)).unwrap();
    let s = j.summary().unwrap();
    assert_eq!(s.cluster_id.unwrap(), first);
    assert_eq!(s.created_at, Some(Time::from_millis(7)));
}

#[test]
fn steps_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let raw = RawJournal::open(dir.path(), Options::default()).unwrap();
    let ctx = routewarden_migrations::StepContext { now: Time::from_millis(1), cluster_id: Some("c".into()) };
    for step in STEPS {
        (step.up)(&raw, &ctx).unwrap();
        let once = raw.dump().unwrap();
        (step.up)(&raw, &ctx).unwrap();
        assert_eq!(
            raw.dump().unwrap(),
            once,
            "m{:04}_{} changed the journal on its second run",
            step.version,
            step.name
        );
    }
}

#[test]
fn a_journal_from_a_newer_schema_is_refused_before_any_step_runs() {
    let dir = tempfile::tempdir().unwrap();
    {
        let raw = RawJournal::open(dir.path(), Options::default()).unwrap();
        raw.record_migration(SCHEMA_VERSION + 5, "future", Time::from_millis(0)).unwrap();
    }
    let err = open(dir.path(), OpenOptions::default(), Time::from_millis(1)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("schema version {}", SCHEMA_VERSION + 5))
            && msg.contains(&format!("up to {SCHEMA_VERSION}")),
        "{msg}"
    );
    let raw = RawJournal::open(dir.path(), Options::default()).unwrap();
    assert!(raw.meta_get::<String>(meta_keys::CLUSTER_ID).unwrap().is_none(), "no step ran");
}
