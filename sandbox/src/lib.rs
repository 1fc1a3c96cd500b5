//! The routewarden sandbox: a local Kubernetes API server and local Azure (Entra, ARM DNS, Key Vault)
//! served over HTTPS, faithful enough for kubectl, kube-rs and the official Azure clients. It is the
//! test bed for every end-to-end test and the way a new user tries routewarden in one command.
