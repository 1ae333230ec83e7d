//! Compact JWS for this issuer's own tokens, with keys parsed once per snapshot (aws-lc-rs):
//! parsing a key costs more than signing or verifying with it (see architecture.md), so the STS
//! never parses a key on a request. Foreign tokens (client assertions, upstream ID tokens,
//! ServiceAccount tokens) go through jsonwebtoken instead.

mod signer;
mod verifier;

pub use signer::{KeyError, Signer};
pub use verifier::{Verified, Verifier, verify};
