//! Step 3: the generated client Secrets the compiler planned (created, rotated or updated),
//! a rotation or update with an Event on its OidcClient. A creation has none: the client's
//! status names the Secret, and at 10,000 new clients an Event each was a third of the
//! operator's writes to the API server, telling nothing the status does not. The snapshot
//! counts the Secrets as written, so a write that meets a conflict (someone wrote the Secret
//! since the mirrors saw it) fails the pass before the snapshot is written; the retry decides
//! with fresh facts.

use std::collections::BTreeMap;

use futures::{StreamExt, stream};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta, PartialObjectMeta, PostParams};
use kube::runtime::events::EventType;
use signet_crds::compile::ObjectKey;
use signet_crds::compile::generated_secret::{Change, SecretWrite};

use crate::context::{
    CONCURRENT_WRITES, FIELD_MANAGER, MANAGED_BY, WriteError, Writer, controller_ref, write_error,
};
use crate::mirror::{Mirror, key};

/// Writes `writes` (by OidcClient), looking up each Secret's labels and resourceVersion in
/// `secrets`.
pub async fn write(
    writer: &Writer,
    secrets: &Mirror<PartialObjectMeta<Secret>>,
    writes: &BTreeMap<ObjectKey, SecretWrite>,
) -> Result<(), WriteError> {
    stream::iter(writes.values())
        .map(|write| write_one(writer, secrets, write))
        .buffer_unordered(CONCURRENT_WRITES)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

async fn write_one(
    writer: &Writer,
    secrets: &Mirror<PartialObjectMeta<Secret>>,
    write: &SecretWrite,
) -> Result<(), WriteError> {
    let client = &*write.client;
    let name = &write.secret.name;
    let meta = secrets.get(&write.secret);
    let mut labels = meta
        .as_ref()
        .map(|m| m.labels().clone())
        .unwrap_or_default();
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(write.secret.namespace.clone()),
            labels: Some(labels),
            annotations: Some(write.contents.annotations.clone()),
            owner_references: Some(vec![controller_ref(client)]),
            resource_version: meta
                .as_ref()
                .and_then(|m| m.metadata.resource_version.clone()),
            ..Default::default()
        },
        data: Some(
            write
                .contents
                .data
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    let (reason, note) = match write.change {
        Change::Created => ("SecretCreated", None),
        Change::Rotated => (
            "SecretRotated",
            Some(format!(
                "rotated the secret in {name}; the previous one works until the overlap ends"
            )),
        ),
        Change::Updated => ("SecretUpdated", Some(format!("updated {name}"))),
    };
    let api: Api<Secret> = Api::namespaced(writer.client.clone(), &write.secret.namespace);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let create = write.change == Change::Created;
    let written = if create {
        api.create(&params, &secret).await
    } else {
        api.replace(name, &params, &secret).await
    };
    written.map_err(write_error(
        if create { "create" } else { "update" },
        format!("Secret {}", write.secret),
    ))?;
    writer.count_write();
    tracing::info!(client = %key(client), secret = %name, reason, "client Secret written");
    if let Some(note) = note {
        writer
            .publish(client, EventType::Normal, reason, note)
            .await;
    }
    Ok(())
}
