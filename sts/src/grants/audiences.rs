//! The audiences a set of granted scopes gives a token (the APIs that own them).

use crate::loaded::Loaded;

/// The audiences of `scopes`, sorted, without duplicates.
pub fn granted_audiences(loaded: &Loaded, scopes: &[String]) -> Vec<String> {
    let mut audiences: Vec<String> = scopes
        .iter()
        .filter_map(|s| loaded.scopes.get(s)?.audience.clone())
        .collect();
    audiences.sort();
    audiences.dedup();
    audiences
}
