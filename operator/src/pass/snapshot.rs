//! Step 5: each TokenService's snapshot as Secrets (`<tokenservice>-snapshot`, or shards of it),
//! written by server-side apply only where the bytes or annotations changed; shards of an
//! earlier, differently sized snapshot are deleted. A Secret of that name that the
//! TokenService does not own is never touched: the TokenService gets a condition instead.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ObjectMeta, PartialObjectMeta, Patch, PatchParams};
use signet_crds::compile::{ObjectKey, SecretData};
use signet_crds::snapshot::{Snapshot, Wire};
use signet_crds::v1alpha1::TokenService;

use super::dereference::Observed;
use crate::context::{FIELD_MANAGER, MANAGED_BY, WriteError, Writer, controller_ref, write_error};
use crate::mirror::{Mirror, key};
use signet_crds::snapshot_secret::{self, DATA_KEY, SNAPSHOT_LABEL};

/// What the step published.
#[derive(Default)]
pub struct Published {
    /// Compressed bytes written or already in place, over every TokenService.
    pub bytes: usize,
    /// The TokenServices whose snapshot Secret name is taken by a Secret they do not own.
    pub conflicts: BTreeSet<ObjectKey>,
}

/// Writes the snapshot of every TokenService in `observed`. Each snapshot's `hash` becomes the
/// hash of the bytes written, which statuses and logs name it by.
pub async fn write(
    writer: &Writer,
    secrets: &Mirror<PartialObjectMeta<Secret>>,
    observed: &Observed,
    snapshots: &mut BTreeMap<ObjectKey, Snapshot>,
) -> Result<Published, WriteError> {
    let mut published = Published::default();
    for ts in &observed.inputs.token_services {
        let ts_key = key(&**ts);
        let Some(snapshot) = snapshots.get_mut(&ts_key) else {
            continue;
        };
        let wire = wire(snapshot);
        snapshot.hash.clone_from(&wire.hash);
        match write_one(
            writer,
            secrets,
            &observed.snapshot_secrets,
            ts,
            snapshot,
            &wire,
        )
        .await?
        {
            Some(bytes) => published.bytes += bytes,
            None => {
                published.conflicts.insert(ts_key);
            }
        }
    }
    Ok(published)
}

/// Stand-in for a Secret whose data was not read (it exists but is not a snapshot Secret).
static EMPTY: SecretData = SecretData {
    data: BTreeMap::new(),
    annotations: BTreeMap::new(),
    controller_uid: None,
};

/// Writes the snapshot Secrets of `ts` when their bytes differ. Returns the compressed size,
/// or `None` when a Secret of that name exists that the operator does not own.
async fn write_one(
    writer: &Writer,
    secrets: &Mirror<PartialObjectMeta<Secret>>,
    existing: &BTreeMap<ObjectKey, SecretData>,
    ts: &TokenService,
    snapshot: &Snapshot,
    wire: &Wire,
) -> Result<Option<usize>, WriteError> {
    let ts_key = key(ts);
    let bytes = snapshot_secret::compress(&wire.json);
    let shards = snapshot_secret::shards(&ts_key.name, &bytes, snapshot_secret::SHARD_BYTES);
    let api: Api<Secret> = Api::namespaced(writer.client.clone(), &ts_key.namespace);
    for shard in &shards {
        let shard_key = ObjectKey::new(&ts_key.namespace, &shard.name);
        let annotations = snapshot_secret::annotations(wire, shard);
        if let Some(existing) = existing
            .get(&shard_key)
            .or(secrets.get(&shard_key).map(|_| &EMPTY))
        {
            if existing.controller_uid != ts.uid() {
                tracing::warn!(token_service = %ts_key, secret = %shard.name, "snapshot Secret name taken by a Secret the operator does not own");
                return Ok(None);
            }
            let same_annotations = annotations
                .iter()
                .all(|(k, v)| existing.annotations.get(k) == Some(v));
            if existing.data.get(DATA_KEY) == Some(&shard.bytes)
                && same_annotations
                && existing.data.len() == 1
            {
                continue;
            }
        }
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(shard.name.clone()),
                namespace: Some(ts_key.namespace.clone()),
                labels: Some(BTreeMap::from([
                    (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
                    (SNAPSHOT_LABEL.to_owned(), ts_key.name.clone()),
                ])),
                annotations: Some(annotations),
                owner_references: Some(vec![controller_ref(ts)]),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                DATA_KEY.to_owned(),
                ByteString(shard.bytes.clone()),
            )])),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        let mut value = serde_json::to_value(&secret).expect("a Secret serializes");
        value["apiVersion"] = "v1".into();
        value["kind"] = "Secret".into();
        api.patch(
            &shard.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&value),
        )
        .await
        .map_err(write_error(
            "apply",
            format!("snapshot Secret {}/{}", ts_key.namespace, shard.name),
        ))?;
        writer.count_write();
        tracing::info!(token_service = %ts_key, secret = %shard.name, hash = %snapshot.hash, bytes = shard.bytes.len(), "snapshot written");
    }

    // Shards of an earlier, differently sized snapshot.
    let names: BTreeSet<&str> = shards.iter().map(|s| s.name.as_str()).collect();
    for meta in secrets.list() {
        let mine = meta.namespace().as_deref() == Some(ts_key.namespace.as_str())
            && meta.labels().get(SNAPSHOT_LABEL) == Some(&ts_key.name)
            && !names.contains(meta.name_any().as_str());
        if mine {
            api.delete(&meta.name_any(), &DeleteParams::default())
                .await
                .map_err(write_error(
                    "delete",
                    format!("stale snapshot Secret {}", meta.name_any()),
                ))?;
            writer.count_write();
        }
    }
    Ok(Some(bytes.len()))
}

/// The bytes to write for `snapshot` and the hash that names them (the hash annotation).
/// `SIGNET_TESTING_NEWER_MINOR=1` writes it as the next minor schema would, with fields this
/// build does not know, so tests can prove an STS serves a newer minor.
fn wire(snapshot: &Snapshot) -> Wire {
    static NEWER_MINOR: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let newer = *NEWER_MINOR
        .get_or_init(|| std::env::var("SIGNET_TESTING_NEWER_MINOR").is_ok_and(|v| v == "1"));
    if newer {
        signet_crds::snapshot::as_newer_minor(snapshot)
    } else {
        snapshot.to_wire()
    }
}
