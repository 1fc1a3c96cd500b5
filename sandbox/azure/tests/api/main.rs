//! Integration tests of local Azure through plain HTTPS (reqwest trusting the sandbox CA):
//! Entra token exchange, IMDS managed-identity tokens, ARM DNS, Key Vault, and the fidelity knobs
//! and admin API.

mod common;
mod dns;
mod entra;
mod fidelity;
mod imds;
mod keyvault;
