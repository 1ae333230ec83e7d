//! Step 1: every read of a pass. The objects come from the mirrors (their `Arc`s: a pass
//! copies no object); the Secrets they reference come from the mirror of managed Secrets, or
//! from the API server through the cache. Nothing here writes.

use std::collections::{BTreeMap, BTreeSet};

use kube::{Client, ResourceExt};
use signet_crds::compile::{Inputs, ObjectKey, SecretData};

use crate::context::Mirrors;
use crate::keys::lifecycle::KeySecret;
use crate::keys::reconcile::key_secrets;
use crate::mirror::key;
use crate::secret_data::{self, SecretCache};
use signet_crds::snapshot_secret::SNAPSHOT_LABEL;

/// Reading a Secret failed.
#[derive(Debug, thiserror::Error)]
#[error("reading Secret {key}: {source}")]
pub struct Error {
    key: ObjectKey,
    source: kube::Error,
}

impl Error {
    /// The metric label of this error.
    pub fn category(&self) -> &'static str {
        "read_secret"
    }
}

/// What the later steps decide from.
pub struct Observed {
    /// What the compiler reads, with the source of new client secrets.
    pub inputs: Inputs,
    /// The snapshot Secrets that exist (labelled as such), to write only what changed.
    pub snapshot_secrets: BTreeMap<ObjectKey, SecretData>,
    /// The key Secrets of each SigningKey, for its lifecycle decision.
    pub key_secrets: BTreeMap<ObjectKey, Vec<KeySecret>>,
}

/// Reads everything a pass decides from, at `now` (unix seconds).
pub async fn run(
    mirrors: &Mirrors,
    cache: &SecretCache,
    client: &Client,
    now: i64,
) -> Result<Observed, Error> {
    let mut inputs = Inputs {
        token_services: mirrors.token_services.list(),
        clients: mirrors.clients.list(),
        scopes: mirrors.scopes.list(),
        identity_providers: mirrors.identity_providers.list(),
        signing_keys: mirrors.signing_keys.list(),
        namespaces: mirrors
            .namespaces
            .list()
            .iter()
            .map(|n| (n.name_any(), n.labels().clone()))
            .collect(),
        secrets: BTreeMap::new(),
        service_accounts: Some(
            mirrors
                .service_accounts
                .list()
                .iter()
                .map(|meta| key(&**meta))
                .collect(),
        ),
        now,
        new_client_secret: Some(signet_crds::keygen::client_secret),
    };
    let referenced = inputs.referenced_secrets();
    let snapshot_names: BTreeSet<ObjectKey> = mirrors
        .secrets
        .list()
        .iter()
        .filter(|meta| meta.labels().contains_key(SNAPSHOT_LABEL))
        .map(|meta| key(&**meta))
        .collect();

    for k in &referenced {
        if let Some(data) = read(mirrors, cache, client, k).await? {
            inputs.secrets.insert(k.clone(), data);
        }
    }
    let mut snapshot_secrets = BTreeMap::new();
    for k in &snapshot_names {
        if let Some(data) = read(mirrors, cache, client, k).await? {
            snapshot_secrets.insert(k.clone(), data);
        }
    }
    cache.retain(|k| referenced.contains(k) || snapshot_names.contains(k));

    let key_secrets = key_secrets(&inputs.signing_keys, &mirrors.managed_secrets.list());
    Ok(Observed {
        inputs,
        snapshot_secrets,
        key_secrets,
    })
}

/// The data of Secret `k`, if it exists: from the managed mirror, else through the cache.
async fn read(
    mirrors: &Mirrors,
    cache: &SecretCache,
    client: &Client,
    k: &ObjectKey,
) -> Result<Option<SecretData>, Error> {
    if let Some(managed) = mirrors.managed_secrets.get(k) {
        return Ok(Some(secret_data::to_data(&managed)));
    }
    let Some(meta) = mirrors.secrets.get(k) else {
        return Ok(None);
    };
    cache.get(client, &meta).await.map_err(|source| Error {
        key: k.clone(),
        source,
    })
}
