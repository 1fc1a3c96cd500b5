//! The routewarden sandbox: a local Kubernetes API server and local Azure (Entra, ARM DNS, Key Vault)
//! served over HTTPS, faithful enough for kubectl, kube-rs and the official Azure clients. It is the
//! test bed for every end-to-end test and the way a new user tries routewarden in one command.
//!
//! Data flows from a per-sandbox certificate authority ([`tls`]) into HTTPS listeners; the
//! Kubernetes emulator ([`kube`]) keeps every object as JSON in one in-memory store and serves it
//! to clients through the same REST paths, media types and Status errors as a real API server.
//! [`up`] starts it with local Azure and routewarden itself, as `routewarden-sandbox up` does;
//! [`demo`] applies seed 000's TLS and DNS walkthroughs to it and reports what routewarden made
//! of them.

pub mod demo;
pub mod kube;
pub mod tls;
pub mod up;
