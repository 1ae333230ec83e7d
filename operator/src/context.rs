//! What the steps of a reconcile pass share: the watched objects (mirrors), where they write
//! (the API client, one field manager, the Event recorder), and the error of a refused write.
//! The steps import from here, never from the pass that calls them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::PartialObjectMeta;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource};
use signet_crds::v1alpha1::{ApiScope, IdentityProvider, OidcClient, SigningKey, TokenService};

use crate::mirror::Mirror;

/// The one field manager of every write.
pub const FIELD_MANAGER: &str = "signet-operator";
/// Label on every Secret the operator creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "signet-operator");
/// Writes that run at once: the API server, not the operator, sets the pace.
pub const CONCURRENT_WRITES: usize = 32;

/// The watched objects, as the watches last saw them.
pub struct Mirrors {
    /// TokenServices.
    pub token_services: Arc<Mirror<TokenService>>,
    /// OidcClients.
    pub clients: Arc<Mirror<OidcClient>>,
    /// ApiScopes.
    pub scopes: Arc<Mirror<ApiScope>>,
    /// IdentityProviders.
    pub identity_providers: Arc<Mirror<IdentityProvider>>,
    /// SigningKeys.
    pub signing_keys: Arc<Mirror<SigningKey>>,
    /// Secrets the operator manages, with data.
    pub managed_secrets: Arc<Mirror<Secret>>,
    /// Secret metadata in the watched namespaces.
    pub secrets: Arc<Mirror<PartialObjectMeta<Secret>>>,
    /// Namespace metadata (labels for selectors).
    pub namespaces: Arc<Mirror<PartialObjectMeta<Namespace>>>,
    /// ServiceAccount metadata in the watched namespaces: a workload client's status says
    /// whether the ServiceAccounts it accepts exist.
    pub service_accounts: Arc<Mirror<PartialObjectMeta<ServiceAccount>>>,
    /// The STS replicas' reports of what they serve (`signet_crds::replica`).
    pub leases: Arc<Mirror<Lease>>,
}

impl Mirrors {
    /// Whether every watch has listed once; a pass before that would see objects missing.
    pub fn synced(&self) -> bool {
        self.token_services.is_synced()
            && self.clients.is_synced()
            && self.scopes.is_synced()
            && self.identity_providers.is_synced()
            && self.signing_keys.is_synced()
            && self.secrets.is_synced()
            && self.managed_secrets.is_synced()
            && self.namespaces.is_synced()
            && self.service_accounts.is_synced()
            && self.leases.is_synced()
    }
}

/// Where the steps write: the API client and the Event recorder, with a count of writes.
pub struct Writer {
    /// API client.
    pub client: Client,
    recorder: Recorder,
    writes: AtomicU64,
}

impl Writer {
    /// A writer through `client`, publishing Events with `recorder`.
    pub fn new(client: Client, recorder: Recorder) -> Self {
        Self {
            client,
            recorder,
            writes: AtomicU64::new(0),
        }
    }

    /// Counts one write, for the per-pass log line.
    pub fn count_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes made so far (Secrets, statuses, ConfigMaps), for logs and tests of idempotence.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Publishes an Event on `object`. Best effort: the condition it echoes says the same.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(%error, "publishing an Event failed");
        }
    }
}

/// The owner reference that makes `owner` the controller of what the operator writes for it,
/// so deleting it deletes them.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    let mut reference = owner
        .controller_owner_ref(&())
        .expect("stored objects have a name and uid");
    reference.block_owner_deletion = Some(true);
    reference
}

/// A request of a step that the API server refused.
#[derive(Debug, thiserror::Error)]
#[error("{action} {what}: {source}")]
pub struct WriteError {
    /// What was asked (`create`, `apply status of`, ...).
    pub action: &'static str,
    /// Of what.
    pub what: String,
    /// The API server's answer.
    pub source: kube::Error,
}

impl WriteError {
    /// The metric label: a conflict (someone wrote since the mirrors saw it) or another write
    /// failure.
    pub fn category(&self) -> &'static str {
        match &self.source {
            kube::Error::Api(s) if s.code == 409 => "write_conflict",
            _ => "write",
        }
    }
}

/// Makes the `WriteError` of `action` on `what` from the API server's error.
pub fn write_error(
    action: &'static str,
    what: impl std::fmt::Display,
) -> impl FnOnce(kube::Error) -> WriteError {
    let what = what.to_string();
    move |source| WriteError {
        action,
        what,
        source,
    }
}
