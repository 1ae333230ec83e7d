//! Where snapshots come from: a folder of manifests (standalone) or the operator's snapshot
//! Secrets (in-cluster). Both end in [`install`]: verify completely, then swap.

pub mod cluster;
#[cfg(test)]
mod hot_swap_tests;
pub mod standalone;

use std::sync::Arc;

use signet_crds::snapshot::Snapshot;

use crate::http::App;
use crate::loaded::Loaded;

/// Verifies `snapshot` and, when good and new, swaps it in; a bad one is refused and the
/// last good one keeps serving.
pub fn install(app: &App, snapshot: Snapshot) {
    let current = app.loaded.load();
    if current
        .as_ref()
        .is_some_and(|c| c.snapshot.hash == snapshot.hash)
    {
        return;
    }
    let hash = snapshot.hash.clone();
    match Loaded::new(snapshot) {
        Ok(loaded) => {
            app.loaded.store(Some(Arc::new(loaded)));
            *app.refused.lock().expect("refused lock") = None;
            app.metrics.snapshot_loaded(&hash);
            tracing::info!(%hash, "snapshot in service");
        }
        Err(reason) => {
            app.metrics.snapshots_refused.inc();
            tracing::warn!(%hash, %reason, "snapshot refused; the last good one keeps serving");
            *app.refused.lock().expect("refused lock") = Some(reason.to_string());
        }
    }
}
