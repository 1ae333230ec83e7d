//! Operational state behind narrow stores, keyed by hashes of tokens (never the tokens), every
//! record with an expiry. `memory` serves one replica; a shared backend comes with scale-out.

mod memory;

pub use memory::MemoryStore;

use sha2::{Digest, Sha256};

/// The store is unreachable: whatever needs it fails closed.
#[derive(Debug, thiserror::Error)]
#[error("operational store unavailable: {0}")]
pub struct Unavailable(pub String);

/// The key under which state about `token` is kept: its SHA-256, hex.
pub fn token_key(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
