//! `routewarden` itself, built with the e2e crate so its tests can run the daemon as a separate
//! process and kill it with SIGKILL (`CARGO_BIN_EXE_routewarden-child`): the crash suite.

fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    routewarden::cli::main()
}
