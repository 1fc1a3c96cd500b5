//! routewarden's Azure adapters — the only code that talks to Azure. [`cloud`] says where Azure
//! is (public, China, US Government, or custom endpoints for Azure Stack and air-gapped
//! clouds); [`transport`] builds the one HTTP client every Azure call goes through, with any
//! extra CA and host-resolution overrides the environment needs (the sandbox uses both).

pub mod cloud;
pub mod transport;
