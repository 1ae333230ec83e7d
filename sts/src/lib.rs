//! Signet's security token service as a library: the binary (`main.rs`) parses flags and wires
//! these modules together; benchmarks reuse the signer and the form parser.

pub mod app;
pub mod authorization_code;
pub mod backchannel;
pub mod client_assertion;
pub mod client_auth;
pub mod device;
pub mod error;
pub mod federation;
pub mod form;
pub mod grants;
pub mod http;
pub mod id_token;
pub mod jose;
pub mod jwks;
pub mod listener;
pub mod loaded;
pub mod metrics;
pub mod outbound;
pub mod public_ip;
pub mod random;
pub mod remote_jwks;
pub mod signin;
pub mod source;
pub mod store;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod tokens;
pub mod workload;
