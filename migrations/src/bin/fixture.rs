//! Writes `migrations/fixtures/schema-NNNN.ndjson` for the current schema version. Run it once
//! when a new schema version is introduced; never for older versions (their fixtures are frozen).
use routewarden_migrations::fixtures;
use routewarden_store::SCHEMA_VERSION;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = fixtures::path(SCHEMA_VERSION);
    if path.exists() && std::env::args().nth(1).as_deref() != Some("--force") {
        return Err(
            format!("{} exists and is frozen; pass --force only if it was never released", path.display()).into()
        );
    }
    std::fs::write(&path, fixtures::current_fixture()?)?;
    println!("wrote {}", path.display());
    Ok(())
}
