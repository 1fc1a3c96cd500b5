//! routewarden's Azure adapters — the only code that talks to Azure. [`cloud`] says where Azure
//! is (public, China, US Government, or custom endpoints for Azure Stack and air-gapped
//! clouds); [`transport`] builds the one HTTP client every Azure call goes through, with any
//! extra CA and host-resolution overrides the environment needs (the sandbox uses both), and the
//! client for the instance metadata service; [`client`] is what workers call — Key Vault
//! certificate metadata and secrets as a workload identity, conditional ARM DNS writes as a
//! workload identity or the daemon's managed identity ([`imds`]) — with every failure classified
//! ([`error`]) and reported to an [`observe::Observer`] for metrics and traces.

pub mod client;
pub mod cloud;
pub mod error;
pub mod imds;
pub mod observe;
pub mod transport;

pub use client::{
    AssertionProvider, AzureClient, CertificateMeta, IdentityKey, Precondition, Principal, RecordKind, RecordSet,
    SecretValue, SecretVersionMeta, StoredRecordSet, ZoneRef,
};
pub use cloud::Cloud;
pub use error::{AzureError, Kind};
pub use imds::ImdsEndpoint;
pub use observe::{Call, Observer, Service};
