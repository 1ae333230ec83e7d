//! Step 6: each TokenService's public keys (pending, active and retired) in ConfigMap
//! `<tokenservice>-jwks`, key `jwks.json`, for in-cluster verifiers. Written only when the keys
//! changed; skipped for a TokenService whose snapshot could not be written.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use signet_crds::compile::ObjectKey;
use signet_crds::snapshot::Snapshot;
use signet_crds::v1alpha1::TokenService;

use crate::context::{FIELD_MANAGER, MANAGED_BY, WriteError, Writer, controller_ref, write_error};
use crate::mirror::key;

/// Key of the JWKS in its ConfigMap.
pub const JWKS_KEY: &str = "jwks.json";

/// The JWKS last written per TokenService, so that an unchanged one costs no request.
#[derive(Default)]
pub struct Written(Mutex<BTreeMap<ObjectKey, String>>);

/// Publishes the JWKS of every TokenService in `token_services` that has a snapshot, except
/// those in `skip`.
pub async fn write(
    writer: &Writer,
    written: &Written,
    token_services: &[Arc<TokenService>],
    snapshots: &BTreeMap<ObjectKey, Snapshot>,
    skip: &BTreeSet<ObjectKey>,
) -> Result<(), WriteError> {
    for ts in token_services {
        let ts_key = key(&**ts);
        if skip.contains(&ts_key) {
            continue;
        }
        if let Some(snapshot) = snapshots.get(&ts_key) {
            write_one(writer, written, ts, snapshot).await?;
        }
    }
    Ok(())
}

async fn write_one(
    writer: &Writer,
    written: &Written,
    ts: &TokenService,
    snapshot: &Snapshot,
) -> Result<(), WriteError> {
    let ts_key = key(ts);
    let jwks = serde_json::json!({"keys": snapshot.keys.iter().map(|k| &k.public_jwk).collect::<Vec<_>>()}).to_string();
    if written.0.lock().expect("jwks lock").get(&ts_key) == Some(&jwks) {
        return Ok(());
    }
    let name = format!("{}-jwks", ts_key.name);
    let api: Api<ConfigMap> = Api::namespaced(writer.client.clone(), &ts_key.namespace);
    let current = api
        .get_opt(&name)
        .await
        .map_err(write_error("read", format!("ConfigMap {name}")))?;
    let same = current
        .as_ref()
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get(JWKS_KEY))
        == Some(&jwks);
    if !same {
        let body = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "labels": {MANAGED_BY.0: MANAGED_BY.1},
                "ownerReferences": [controller_ref(ts)],
            },
            "data": {JWKS_KEY: jwks},
        });
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(write_error(
            "apply",
            format!("ConfigMap {}/{name}", ts_key.namespace),
        ))?;
        writer.count_write();
        tracing::info!(token_service = %ts_key, keys = snapshot.keys.len(), "JWKS ConfigMap written");
    }
    written.0.lock().expect("jwks lock").insert(ts_key, jwks);
    Ok(())
}
