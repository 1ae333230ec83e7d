//! Secret data, read only for the Secrets that objects reference, cached by resourceVersion
//! so a pass reads each changed Secret once.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, PartialObjectMeta};
use signet_crds::compile::{ObjectKey, SecretData};

/// Cache of Secret data by key, valid for one resourceVersion.
#[derive(Default)]
pub struct SecretCache {
    entries: Mutex<HashMap<ObjectKey, (String, SecretData)>>,
}

impl SecretCache {
    /// The data of the Secret whose metadata is `meta`, from the cache or the API server.
    pub async fn get(
        &self,
        client: &Client,
        meta: &PartialObjectMeta<Secret>,
    ) -> Result<Option<SecretData>, kube::Error> {
        let key = crate::mirror::key(meta);
        let version = meta.metadata.resource_version.clone().unwrap_or_default();
        if let Some((cached_version, data)) = self.entries.lock().expect("cache lock").get(&key)
            && *cached_version == version
        {
            return Ok(Some(data.clone()));
        }
        let api: Api<Secret> = Api::namespaced(client.clone(), &key.namespace);
        let Some(secret) = api.get_opt(&key.name).await? else {
            return Ok(None);
        };
        let data = to_data(&secret);
        let version = secret.metadata.resource_version.clone().unwrap_or_default();
        self.entries
            .lock()
            .expect("cache lock")
            .insert(key, (version, data.clone()));
        Ok(Some(data))
    }

    /// Forgets Secrets that no longer exist.
    pub fn retain(&self, keep: impl Fn(&ObjectKey) -> bool) {
        self.entries
            .lock()
            .expect("cache lock")
            .retain(|k, _| keep(k));
    }
}

/// The compile's view of a Secret.
pub fn to_data(secret: &Secret) -> SecretData {
    SecretData {
        data: secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect(),
        annotations: secret.metadata.annotations.clone().unwrap_or_default(),
        controller_uid: secret
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.clone()),
    }
}
