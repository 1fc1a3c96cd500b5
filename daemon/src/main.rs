//! The `routewarden` binary: everything lives in the library; see `routewarden::cli`.

fn main() -> std::process::ExitCode {
    // reqwest now and kube later share one rustls provider; install it before any client exists.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    routewarden::cli::main()
}
