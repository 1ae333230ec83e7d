//! Where snapshots come from: a folder of manifests (standalone) or the operator's snapshot
//! Secrets (in-cluster). Both end in [`install`]: verify completely, then swap.

pub mod cluster;
#[cfg(test)]
mod hot_swap_tests;
pub mod standalone;
#[cfg(test)]
mod standalone_tests;

use std::sync::Arc;

use signet_crds::snapshot::{Snapshot, StoreSettings};
use signet_crds::v1alpha1::StoreType;

use crate::http::App;
use crate::loaded::Loaded;
use crate::store::{MemoryStore, RedisStore, Store};

/// Verifies `snapshot` and, when good and new, swaps it in; a bad one is refused and the
/// last good one keeps serving.
pub async fn install(app: &App, snapshot: Snapshot) {
    let current = app.loaded.load();
    if current
        .as_ref()
        .is_some_and(|c| c.snapshot.hash == snapshot.hash)
    {
        return;
    }
    let hash = snapshot.hash.clone();
    let loaded = match Loaded::new(snapshot) {
        Ok(loaded) => match ensure_store(app, &loaded.snapshot.store).await {
            Ok(()) => Ok(loaded),
            Err(reason) => Err(reason),
        },
        Err(reason) => Err(reason.to_string()),
    };
    match loaded {
        Ok(loaded) => {
            app.loaded.store(Some(Arc::new(loaded)));
            *app.refused.lock().expect("refused lock") = None;
            app.metrics.snapshot_loaded(&hash);
            tracing::info!(%hash, "snapshot in service");
        }
        Err(reason) => {
            app.metrics.snapshots_refused.inc();
            tracing::warn!(%hash, %reason, "snapshot refused; the last good one keeps serving");
            *app.refused.lock().expect("refused lock") = Some(reason);
        }
    }
}

/// Makes the operational store match `settings`: the in-process one, or a connection to
/// redis. A redis that cannot be reached refuses the snapshot, so nothing is served that
/// would lose single-use guarantees across replicas.
async fn ensure_store(app: &App, settings: &StoreSettings) -> Result<(), String> {
    let mut current = app.store_settings.lock().await;
    if current.as_ref() == Some(settings) {
        return Ok(());
    }
    let store = match settings.store_type {
        StoreType::Memory => {
            tracing::warn!("memory store: valid for one STS replica only");
            Store::Memory(MemoryStore::default())
        }
        StoreType::Redis => {
            let url = settings
                .redis_url
                .as_ref()
                .ok_or("store type redis without a redis URL")?;
            let redis = RedisStore::connect(&url.0, &settings.key_prefix)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(prefix = %settings.key_prefix, "redis store connected");
            Store::Redis(redis)
        }
    };
    app.store.store(Arc::new(store));
    *current = Some(settings.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_snapshot_is_refused_and_the_last_good_one_keeps_serving() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let state = std::env::temp_dir().join(format!("signet-refusal-{}", std::process::id()));
        let good = standalone::compile_dir(&examples, &state, None)
            .unwrap()
            .snapshot;
        let app = App::new();
        let readyz = |app: Arc<App>| async move {
            let response = crate::http::endpoints::readyz(axum::extract::State(app)).await;
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            (status.as_u16(), String::from_utf8(body.to_vec()).unwrap())
        };
        assert_eq!(
            readyz(app.clone()).await.0,
            503,
            "not ready before a first snapshot"
        );
        install(&app, good.clone()).await;
        assert_eq!(readyz(app.clone()).await.0, 200);

        let mut newer_major = good.clone();
        newer_major.schema_version = "2.0".into();
        let mut tampered = good.clone().seal();
        tampered.issuer = "https://evil.example".into(); // the content no longer matches its hash
        tampered.hash = "0".repeat(64);
        let mut keyless = good.clone();
        keyless.keys.clear();
        for (i, bad) in [newer_major.seal(), tampered, keyless.seal()]
            .into_iter()
            .enumerate()
        {
            install(&app, bad).await;
            assert_eq!(
                app.loaded.load().as_ref().unwrap().snapshot.hash,
                good.hash,
                "the last good snapshot serves"
            );
            assert_eq!(app.metrics.snapshots_refused.get(), i as u64 + 1);
            let (status, body) = readyz(app.clone()).await;
            assert_eq!(status, 200, "still ready: {body}");
            assert!(body.contains("refused"), "{body}");
        }
        // A minor version bump is fine: an older STS ignores what it does not know.
        let mut minor = good.clone();
        minor.schema_version = "1.7".into();
        let minor = minor.seal();
        install(&app, minor.clone()).await;
        assert_eq!(
            app.loaded.load().as_ref().unwrap().snapshot.hash,
            minor.hash
        );
        assert!(!readyz(app.clone()).await.1.contains("refused"));
    }
}
