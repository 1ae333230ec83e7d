//! Where snapshots come from: a folder of manifests (standalone) or the operator's snapshot
//! Secrets (in-cluster). Both end in [`install`]: verify completely, then swap.

pub mod cluster;
#[cfg(test)]
mod hot_swap_tests;
pub mod report;
pub mod standalone;
#[cfg(test)]
mod standalone_tests;

use std::sync::Arc;

use signet_crds::snapshot::{Snapshot, StoreSettings, Wire};
use signet_crds::v1alpha1::StoreType;

use crate::app::App;
use crate::loaded::{Loaded, Refused};
use crate::store::{MemoryStore, RedisStore, Store};

/// Verifies the snapshot `wire` carries (the bytes as the operator wrote them) and, when good
/// and new, swaps it in; a bad one is refused and the last good one keeps serving.
pub async fn install(app: &App, wire: Wire) {
    if serving(app, &wire.hash) {
        return;
    }
    let hash = wire.hash.clone();
    let major = app
        .schema_major
        .get()
        .map_or(crate::loaded::SCHEMA_MAJOR, String::as_str);
    let loaded = Loaded::open(wire, major);
    swap(app, hash, loaded).await;
}

/// Swaps in a snapshot this process compiled itself (standalone): no bytes travelled, so there
/// is nothing to verify them against and no reason to serialise it just to parse it again.
pub async fn install_compiled(app: &App, snapshot: Snapshot) {
    if serving(app, &snapshot.hash) {
        return;
    }
    let hash = snapshot.hash.clone();
    swap(app, hash, Loaded::new(snapshot)).await;
}

fn serving(app: &App, hash: &str) -> bool {
    app.loaded
        .load()
        .as_ref()
        .is_some_and(|c| c.snapshot.hash == hash)
}

async fn swap(app: &App, hash: String, loaded: Result<Loaded, Refused>) {
    let loaded = match loaded {
        Ok(loaded) => ensure_store(app, &loaded.snapshot.store)
            .await
            .map(|()| loaded),
        Err(reason) => Err(reason),
    };
    match loaded {
        Ok(loaded) => {
            app.loaded.store(Some(Arc::new(loaded)));
            *app.refused.lock().expect("refused lock") = None;
            app.served_changed.notify_one();
            app.metrics.snapshot_loaded(&hash);
            tracing::info!(%hash, "snapshot in service");
        }
        Err(reason) => refuse(app, Some(&hash), &reason),
    }
}

/// Counts and logs a refused snapshot and says why on /readyz; the last good one serves on.
fn refuse(app: &App, hash: Option<&str>, reason: &Refused) {
    app.metrics.snapshots_refused.inc();
    tracing::warn!(hash = hash.unwrap_or("?"), %reason, "snapshot refused; the last good one keeps serving");
    *app.refused.lock().expect("refused lock") = Some(crate::app::Refusal {
        hash: hash.map(str::to_owned),
        reason: reason.to_string(),
    });
    app.served_changed.notify_one();
}

/// Makes the operational store match `settings`: the in-process one, or a connection to
/// redis. A redis that cannot be reached refuses the snapshot, so nothing is served that
/// would lose single-use guarantees across replicas.
async fn ensure_store(app: &App, settings: &StoreSettings) -> Result<(), Refused> {
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
            let url = settings.redis_url.as_ref().ok_or(Refused::NoRedisUrl)?;
            let redis = RedisStore::open(
                &url.0,
                settings.topology.as_ref(),
                settings.ca_bundle.as_deref(),
                &settings.key_prefix,
                settings.wait_for_replicas,
            )
            .await?;
            let topology = match &settings.topology {
                None => "server",
                Some(signet_crds::snapshot::RedisTopology::Sentinel { .. }) => "sentinel",
                Some(signet_crds::snapshot::RedisTopology::Cluster { .. }) => "cluster",
            };
            tracing::info!(prefix = %settings.key_prefix, topology, wait_for_replicas = ?settings.wait_for_replicas, "redis store connected");
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
    use signet_crds::snapshot::{as_newer_minor, content_hash};

    fn examples_snapshot(tag: &str) -> Snapshot {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let state = std::env::temp_dir().join(format!("signet-{tag}-{}", std::process::id()));
        standalone::compile_dir(&examples, &state, None)
            .unwrap()
            .snapshot
    }

    async fn readyz(app: &Arc<App>) -> (u16, String) {
        let response = crate::http::endpoints::readyz(axum::extract::State(app.clone())).await;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status.as_u16(), String::from_utf8(body.to_vec()).unwrap())
    }

    fn serving(app: &App) -> String {
        app.loaded.load().as_ref().unwrap().snapshot.hash.clone()
    }

    #[tokio::test]
    async fn a_bad_snapshot_is_refused_and_the_last_good_one_keeps_serving() {
        let good = examples_snapshot("refusal");
        let app = App::new();
        assert_eq!(
            readyz(&app).await.0,
            503,
            "not ready before a first snapshot"
        );
        install(&app, good.to_wire()).await;
        assert_eq!(readyz(&app).await.0, 200);

        let mut newer_major = good.clone();
        newer_major.schema_version = "2.0".into();
        let mut tampered = good.to_wire();
        tampered.hash = "0".repeat(64); // the content no longer matches its hash
        let mut keyless = good.clone();
        keyless.keys.clear();
        let refusals = [
            (newer_major.to_wire(), "unknown schema version 2.0"),
            (tampered, "content hash mismatch"),
            (keyless.to_wire(), "no active"),
        ];
        for (i, (bad, reason)) in refusals.into_iter().enumerate() {
            install(&app, bad).await;
            assert_eq!(serving(&app), good.hash, "the last good snapshot serves");
            assert_eq!(app.metrics.snapshots_refused.get(), i as u64 + 1);
            let (status, body) = readyz(&app).await;
            assert_eq!(status, 200, "still ready: {body}");
            assert!(body.contains("refused") && body.contains(reason), "{body}");
        }
    }

    /// What a newer minor adds is hashed as sent and then ignored; a changed byte is refused.
    #[tokio::test]
    async fn a_newer_minor_with_unknown_fields_at_every_depth_serves() {
        let good = examples_snapshot("newer-minor");
        let newer = as_newer_minor(&good);
        let text = String::from_utf8(newer.json.clone()).unwrap();
        for field in ["futureSetting", "futureClientField", "futureKeyField"] {
            assert!(text.contains(field), "the test snapshot carries {field}");
        }
        assert_ne!(newer.schema_version().unwrap(), good.schema_version);
        assert_eq!(newer.hash, content_hash(&newer.json));

        let app = App::new();
        install(&app, good.to_wire()).await;
        install(&app, newer.clone()).await;
        assert_eq!(serving(&app), newer.hash, "the newer minor serves");
        assert_eq!(app.metrics.snapshots_refused.get(), 0);
        let (status, body) = readyz(&app).await;
        assert_eq!(status, 200);
        assert_eq!(body, format!("ok: snapshot {}", newer.hash));
        let loaded = app.loaded.load_full().unwrap();
        assert_eq!(loaded.clients.len(), good.clients.len());
        assert_eq!(
            loaded.signers.len(),
            good.keys
                .iter()
                .filter(|k| k.private_pem.is_some()
                    && k.phase == signet_crds::v1alpha1::KeyPhase::Active)
                .count()
        );

        // One content byte changed (inside a client id), the claimed hash kept: refused, and
        // the good snapshot keeps serving.
        let app = App::new();
        install(&app, good.to_wire()).await;
        let mut flipped = newer.clone();
        let at = text.find("default.orders-worker").unwrap();
        flipped.json[at] = b'x';
        install(&app, flipped).await;
        assert_eq!(serving(&app), good.hash);
        assert_eq!(app.metrics.snapshots_refused.get(), 1);
        assert!(readyz(&app).await.1.contains("content hash mismatch"));

        // The same bytes as a newer major: refused for its schema, whatever its hash.
        let major = text.replacen(&newer.schema_version().unwrap(), "2.0", 1);
        install(&app, Wire::of(major.into_bytes())).await;
        assert_eq!(serving(&app), good.hash);
        assert!(readyz(&app).await.1.contains("unknown schema version 2.0"));
    }

    /// An operator of schema 1.0 sealed with the hash inside the JSON; this STS serves its
    /// snapshot during an upgrade, and refuses it when a byte changed.
    #[tokio::test]
    async fn a_schema_1_0_snapshot_from_an_older_operator_serves() {
        let mut good = examples_snapshot("legacy");
        good.schema_version = "1.0".into();
        let json = String::from_utf8(good.to_json()).unwrap();
        let body = json.strip_prefix(r#"{"schemaVersion":"1.0","#).unwrap();
        // Exactly what a 1.0 writer hashed (hash member empty), then what it sent.
        let unsealed = format!(r#"{{"schemaVersion":"1.0","hash":"",{body}"#);
        let hash = content_hash(unsealed.as_bytes());
        let sent = format!(r#"{{"schemaVersion":"1.0","hash":"{hash}",{body}"#);
        let legacy = Wire {
            hash: hash.clone(),
            json: sent.into_bytes(),
        };

        let app = App::new();
        install(&app, legacy.clone()).await;
        assert_eq!(serving(&app), hash);
        assert_eq!(app.metrics.snapshots_refused.get(), 0);

        // The embedded and the claimed hash kept, one content byte changed.
        let mut tampered = legacy;
        let at = body.find("default.orders-worker").unwrap();
        let i = tampered.json.len() - body.len() + at;
        tampered.json[i] = b'x';
        let app = App::new();
        install(&app, tampered).await;
        assert!(app.loaded.load().is_none());
        assert_eq!(app.metrics.snapshots_refused.get(), 1);
        assert!(readyz(&app).await.1.contains("content hash mismatch"));
    }
}
