//! The bad-input catalogue (`docs/bad-inputs.md`) stays true: it lists at least 30 bad inputs, and
//! every test a row names exists where the row says, so a row cannot outlive the test behind it.

use std::path::Path;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the daemon crate is in the repository")
}

/// `path/to/file.rs::module::function` → (`path/to/file.rs`, `function`).
fn split(reference: &str) -> Option<(&str, &str)> {
    let (file, rest) = reference.split_once(".rs::")?;
    Some((reference.get(..file.len() + 3)?, rest.rsplit("::").next()?))
}

#[test]
fn every_catalogued_bad_input_names_a_test_that_exists() {
    let catalogue = std::fs::read_to_string(repo().join("docs/bad-inputs.md")).expect("docs/bad-inputs.md");
    let rows: Vec<&str> = catalogue
        .lines()
        .filter(|l| l.starts_with('|') && l.split('|').nth(1).is_some_and(|c| c.trim().parse::<u32>().is_ok()))
        .collect();
    assert!(rows.len() >= 30, "the catalogue lists {} bad inputs; at least 30 are promised", rows.len());
    let mut missing = Vec::new();
    for row in &rows {
        let test = row.rsplit('|').nth(1).unwrap_or_default().trim().trim_matches('`');
        let Some((file, function)) = split(test) else {
            missing.push(format!("{row}: no `file.rs::function` in the test column"));
            continue;
        };
        let source = std::fs::read_to_string(repo().join(file)).unwrap_or_default();
        if !source.contains(&format!("fn {function}(")) {
            missing.push(format!("{test}: no fn {function} in {file}"));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

#[test]
fn test_references_split_into_file_and_function() {
    assert_eq!(split("e2e/tests/tls.rs::a_test"), Some(("e2e/tests/tls.rs", "a_test")));
    assert_eq!(split("daemon/src/crd/convert.rs::tests::case"), Some(("daemon/src/crd/convert.rs", "case")));
    assert_eq!(split("not a reference"), None);
}
