//! Runs tests/python/client_test.py (the official Kubernetes Python client: list, create, patch,
//! watch with bookmarks, reconnect, 410) against an in-process sandbox. `.ci/run` installs
//! `kubernetes==37.0.2`; a missing module fails the test, and `ROUTEWARDEN_SKIP_PYTHON=1` skips it
//! (saying so), as for the Azure SDK test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_client_lists_and_watches() {
    if std::env::var("ROUTEWARDEN_SKIP_PYTHON").as_deref() == Ok("1") {
        println!("skipped: ROUTEWARDEN_SKIP_PYTHON=1");
        return;
    }
    let available =
        Command::new("python3").args(["-c", "import kubernetes"]).output().map(|o| o.status.success()).unwrap_or(false);
    assert!(
        available,
        "the `kubernetes` Python module is missing: run .ci/run or `pip install kubernetes==37.0.2` (or set ROUTEWARDEN_SKIP_PYTHON=1)"
    );
    let server = common::server().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig_yaml()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_test.py");
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("python3").arg(script).arg(&kubeconfig).kill_on_drop(true).output(),
    )
    .await
    .expect("the Python suite finishes in time")
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "Python client suite failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
