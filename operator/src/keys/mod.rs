//! Signing keys: the pure lifecycle decision, key generation, and the reconcile step that
//! carries a decision out.

pub mod lifecycle;
#[cfg(test)]
mod lifecycle_tests;
pub mod reconcile;
