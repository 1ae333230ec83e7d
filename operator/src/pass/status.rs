//! Step 7: statuses and Events. First the statuses are computed (pure: from the compile
//! reports, the snapshots and the statuses the objects carry); then only those that differ
//! from the stored ones are applied (server-side apply on the status subresource), each with
//! an Event where Ready changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::{StreamExt, stream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde::Serialize;
use serde::de::DeserializeOwned;
use signet_crds::compile::{self, Inputs, Kind, ObjectKey, Output, Report};
use signet_crds::v1alpha1::{
    ApiScope, ApiScopeStatus, CommonStatus, IdentityProvider, IdentityProviderStatus, OidcClient,
    OidcClientStatus, TokenService, TokenServiceStatus,
};

use super::served::{Served, Serving};
use crate::conditions;
use crate::context::{CONCURRENT_WRITES, FIELD_MANAGER, WriteError, Writer, write_error};
use crate::metrics::{KindResult, Metrics};
use crate::mirror::key;

/// Writes the status of every object in `inputs` that changed, at `now`. A TokenService in
/// `snapshot_conflicts` is not Ready: its snapshot Secret name is taken.
pub async fn write(
    writer: &Writer,
    metrics: &Metrics,
    inputs: &Inputs,
    out: &Output,
    snapshot_conflicts: &BTreeSet<ObjectKey>,
    serving: &Serving,
    now: Timestamp,
) -> Result<(), WriteError> {
    let plan = plan(inputs, out, snapshot_conflicts, serving, &Time(now));
    for ((kind, result), n) in plan.reconciled {
        metrics
            .reconciles
            .get_or_create(&KindResult { kind, result })
            .inc_by(n);
    }
    // Futures are made as the buffer pulls them: 32 in flight, not one per object.
    stream::iter(plan.patches)
        .map(|patch| patch.apply(writer))
        .buffer_unordered(CONCURRENT_WRITES)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The statuses to write and the count of objects by kind and readiness.
#[derive(Default)]
struct Plan {
    patches: Vec<StatusPatch>,
    reconciled: BTreeMap<(&'static str, &'static str), u64>,
}

/// A changed status with its object, and the Event its Ready change is worth, if any.
enum StatusPatch {
    TokenService(Arc<TokenService>, TokenServiceStatus, Option<ReadyEvent>),
    OidcClient(Arc<OidcClient>, OidcClientStatus, Option<ReadyEvent>),
    ApiScope(Arc<ApiScope>, ApiScopeStatus, Option<ReadyEvent>),
    IdentityProvider(
        Arc<IdentityProvider>,
        IdentityProviderStatus,
        Option<ReadyEvent>,
    ),
}

/// Ready reasons that say whether the replicas serve an object, which get no Event of their own.
const SERVING_REASONS: [&str; 4] = ["NotYetServed", "Served", "SnapshotRefused", "NoReplicas"];

/// An Event that tells of a change of Ready.
struct ReadyEvent {
    type_: EventType,
    reason: String,
    note: String,
}

fn plan(
    inputs: &Inputs,
    out: &Output,
    snapshot_conflicts: &BTreeSet<ObjectKey>,
    serving: &Serving,
    now: &Time,
) -> Plan {
    let none = Report::default();
    let report =
        |kind: Kind, k: &ObjectKey| out.report(kind, &k.namespace, &k.name).unwrap_or(&none);
    let mut plan = Plan::default();
    for ts in &inputs.token_services {
        let k = key(&**ts);
        let mut report = report(Kind::TokenService, &k).clone();
        if snapshot_conflicts.contains(&k) {
            report.problems.insert(
                0,
                compile::Problem {
                    condition: compile::ConditionType::Ready,
                    reason: "SnapshotSecretConflict",
                    message: format!(
                        "Secret {}-snapshot exists and is not owned by this TokenService",
                        k.name
                    ),
                    excluded: true,
                },
            );
        }
        let snapshot = out.snapshots.get(&k);
        let current = ts.status.as_ref();
        let status = TokenServiceStatus {
            common: common(
                Kind::TokenService,
                &report,
                None,
                current.map(|s| &s.common),
                ts.meta().generation,
                now,
            ),
            snapshot_hash: snapshot.map(|s| s.hash.clone()),
            clients: snapshot.map(|s| s.clients.len() as i32),
            scopes: snapshot.map(|s| s.scopes.len() as i32),
            identity_providers: snapshot.map(|s| s.identity_providers.len() as i32),
            serving: serving
                .token_services
                .get(&k)
                .map(|(history, replicas)| serving_count(history.newest(), replicas)),
            replicas: serving
                .token_services
                .get(&k)
                .map(|(_, replicas)| replicas.iter().map(replica_status).collect())
                .unwrap_or_default(),
        };
        if let Some(event) = plan.decide(Kind::TokenService, current, &status, |s| &s.common) {
            plan.patches
                .push(StatusPatch::TokenService(ts.clone(), status, event));
        }
    }
    for client in &inputs.clients {
        let k = key(&**client);
        let report = report(Kind::OidcClient, &k);
        let issuer = report
            .token_service
            .as_ref()
            .and_then(|t| out.snapshots.get(t))
            .map(|s| s.issuer.clone());
        let current = client.status.as_ref();
        let generation = client.meta().generation;
        let served = served_of(serving, report, Kind::OidcClient, &k, generation);
        let status = OidcClientStatus {
            common: common(
                Kind::OidcClient,
                report,
                Some(&served),
                current.map(|s| &s.common),
                generation,
                now,
            ),
            client_id: report.client_id.clone(),
            secret_name: report.secret_name.clone(),
            issuer,
        };
        if let Some(event) = plan.decide(Kind::OidcClient, current, &status, |s| &s.common) {
            plan.patches
                .push(StatusPatch::OidcClient(client.clone(), status, event));
        }
    }
    for scope in &inputs.scopes {
        let k = key(&**scope);
        let current = scope.status.as_ref();
        let generation = scope.meta().generation;
        let report = report(Kind::ApiScope, &k);
        let served = served_of(serving, report, Kind::ApiScope, &k, generation);
        let status = ApiScopeStatus {
            common: common(
                Kind::ApiScope,
                report,
                Some(&served),
                current.map(|s| &s.common),
                generation,
                now,
            ),
        };
        if let Some(event) = plan.decide(Kind::ApiScope, current, &status, |s| &s.common) {
            plan.patches
                .push(StatusPatch::ApiScope(scope.clone(), status, event));
        }
    }
    for idp in &inputs.identity_providers {
        let k = key(&**idp);
        let current = idp.status.as_ref();
        let generation = idp.meta().generation;
        let report = report(Kind::IdentityProvider, &k);
        let served = served_of(serving, report, Kind::IdentityProvider, &k, generation);
        let status = IdentityProviderStatus {
            common: common(
                Kind::IdentityProvider,
                report,
                Some(&served),
                current.map(|s| &s.common),
                generation,
                now,
            ),
        };
        if let Some(event) = plan.decide(Kind::IdentityProvider, current, &status, |s| &s.common) {
            plan.patches
                .push(StatusPatch::IdentityProvider(idp.clone(), status, event));
        }
    }
    plan
}

impl Plan {
    /// Counts the object, and says whether `status` must be written (`Some`, with the Event
    /// its Ready change is worth) or says what `current` says (`None`).
    fn decide<S: Serialize>(
        &mut self,
        kind: Kind,
        current: Option<&S>,
        status: &S,
        common_of: fn(&S) -> &CommonStatus,
    ) -> Option<Option<ReadyEvent>> {
        let new = common_of(status);
        let ready = new.conditions.first().filter(|c| c.type_ == "Ready");
        let result = if ready.is_some_and(|c| c.status == "True") {
            "ready"
        } else {
            "not_ready"
        };
        *self
            .reconciled
            .entry((kind_label(kind), result))
            .or_default() += 1;

        let unchanged = current.is_some_and(|cur| {
            let old = common_of(cur);
            old.observed_generation == new.observed_generation
                && conditions::same(&old.conditions, &new.conditions)
                && without_common(cur) == without_common(status)
        });
        if unchanged {
            return None;
        }
        let old_ready =
            current.and_then(|c| common_of(c).conditions.iter().find(|c| c.type_ == "Ready"));
        let event = ready.and_then(|ready| {
            let changed =
                old_ready.is_none_or(|o| o.status != ready.status || o.reason != ready.reason);
            // Whether the replicas serve an object is not news of that object: waiting is every
            // change's course, and a refusal or no replica at all concerns every object of the
            // TokenService at once (its status lists the replicas). One Event per object for it
            // would be a storm; the conditions say it.
            let transient = SERVING_REASONS.contains(&ready.reason.as_str())
                || old_ready.is_some_and(|o| SERVING_REASONS.contains(&o.reason.as_str()));
            let worth_telling = (old_ready.is_some() || ready.status != "True") && !transient;
            (changed && worth_telling).then(|| ReadyEvent {
                type_: if ready.status == "True" {
                    EventType::Normal
                } else {
                    EventType::Warning
                },
                reason: ready.reason.clone(),
                note: ready.message.clone(),
            })
        });
        Some(event)
    }
}

impl StatusPatch {
    async fn apply(self, writer: &Writer) -> Result<(), WriteError> {
        match self {
            StatusPatch::TokenService(o, s, e) => apply(writer, &*o, &s, e).await,
            StatusPatch::OidcClient(o, s, e) => apply(writer, &*o, &s, e).await,
            StatusPatch::ApiScope(o, s, e) => apply(writer, &*o, &s, e).await,
            StatusPatch::IdentityProvider(o, s, e) => apply(writer, &*o, &s, e).await,
        }
    }
}

/// Writes `status` (server-side apply on the status subresource), then publishes `event`.
async fn apply<K, S>(
    writer: &Writer,
    object: &K,
    status: &S,
    event: Option<ReadyEvent>,
) -> Result<(), WriteError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize,
{
    let k = key(object);
    let api: Api<K> = Api::namespaced(writer.client.clone(), &k.namespace);
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &k.name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(write_error(
        "apply status of",
        format!("{} {k}", K::kind(&())),
    ))?;
    writer.count_write();
    if let Some(event) = event {
        writer
            .publish(object, event.type_, &event.reason, event.note)
            .await;
    }
    Ok(())
}

/// The conditions of an object: from its compile report, and (but for a TokenService) whether
/// the replicas serve it.
fn common(
    kind: Kind,
    report: &Report,
    served: Option<&Served>,
    previous: Option<&CommonStatus>,
    generation: Option<i64>,
    now: &Time,
) -> CommonStatus {
    let previous = previous
        .map(|p| p.conditions.as_slice())
        .unwrap_or_default();
    let mut conditions = conditions::conditions(kind, report, previous, generation, now);
    if let Some(served) = served {
        let ts = report
            .token_service
            .as_ref()
            .map(|t| format!("{}/{}", t.namespace, t.name))
            .unwrap_or_default();
        conditions =
            crate::serving::with_serving(conditions, served, &ts, previous, generation, now);
    } else if let Some(ready) = conditions.first().filter(|c| c.type_ == "Ready") {
        // A TokenService is Ready once compiled; Compiled says the same, as on the other kinds.
        let compiled = conditions::with_status(
            "Compiled",
            &ready.status,
            ready.reason.clone(),
            ready.message.clone(),
            previous,
            generation,
            now,
        );
        conditions.insert(1, compiled);
    }
    CommonStatus {
        observed_generation: generation,
        conditions,
    }
}

/// Whether the replicas serve the object `key` of `kind` at `generation`.
fn served_of(
    serving: &Serving,
    report: &Report,
    kind: Kind,
    key: &ObjectKey,
    generation: Option<i64>,
) -> Served {
    let object = (kind, key.clone());
    serving.of(
        report.token_service.as_ref(),
        &object,
        generation.unwrap_or_default(),
    )
}

/// `serving/live` for the printer column: replicas serving the newest snapshot, of all live.
fn serving_count(newest: Option<&str>, replicas: &[signet_crds::replica::Report]) -> String {
    let current = replicas
        .iter()
        .filter(|r| r.serving.is_some() && r.serving.as_deref() == newest)
        .count();
    format!("{current}/{}", replicas.len())
}

fn replica_status(report: &signet_crds::replica::Report) -> signet_crds::v1alpha1::ReplicaStatus {
    signet_crds::v1alpha1::ReplicaStatus {
        name: report.replica.clone(),
        serving: report.serving.clone(),
        refused: report.refused.as_ref().map(|(_, why)| why.clone()),
    }
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::TokenService => "TokenService",
        Kind::OidcClient => "OidcClient",
        Kind::ApiScope => "ApiScope",
        Kind::IdentityProvider => "IdentityProvider",
        Kind::SigningKey => "SigningKey",
    }
}

/// The serialized status without its common part, to compare the kind-specific fields.
fn without_common<S: Serialize>(status: &S) -> serde_json::Value {
    let mut value = serde_json::to_value(status).expect("a status serializes");
    if let Some(map) = value.as_object_mut() {
        map.remove("conditions");
        map.remove("observedGeneration");
    }
    value
}
