//! `routewarden-sandbox`: runs the local Kubernetes API server and local Azure.
fn main() {
    eprintln!("routewarden-sandbox: the sandbox servers are not built yet");
    std::process::exit(2);
}
