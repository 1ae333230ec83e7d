//! One reconcile pass over everything: dereference (reads) -> compile (pure) -> apply client
//! Secrets and snapshot Secrets -> status and Events. Level-triggered and idempotent: a pass
//! over unchanged inputs writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::{StreamExt, stream};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ObjectMeta, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use signet_crds::compile::{self, Inputs, Kind, ObjectKey, Output, Report, SecretData};
use signet_crds::v1alpha1::{
    ApiScope, CommonStatus, IdentityProvider, OidcClient, OidcClientStatus, SigningKey,
    TokenService, TokenServiceStatus,
};

use crate::client_secret::{self, Contents, Want};
use crate::conditions;
use crate::metrics::{KindResult, Metrics};
use crate::mirror::{Mirror, key};
use crate::secret_data::SecretCache;
use crate::snapshot_secret::{
    self, DATA_KEY, HASH_ANNOTATION, SCHEMA_ANNOTATION, SHARD_ANNOTATION, SNAPSHOT_LABEL,
};

/// The one field manager of every write.
pub const FIELD_MANAGER: &str = "signet-operator";
/// Label on every Secret the operator creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "signet-operator");

/// What a pass reads from.
pub struct Ctx {
    /// API client.
    pub client: Client,
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
    /// Data of referenced Secrets.
    pub cache: SecretCache,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event recorder.
    pub recorder: Recorder,
    /// Writes made so far (Secrets and statuses), for logs and tests of idempotence.
    pub writes: std::sync::atomic::AtomicU64,
    /// Key-lifecycle writes made so far (for the crash-test failpoint).
    pub key_writes: std::sync::atomic::AtomicU64,
    /// JWKS last written per TokenService, to write the ConfigMap only on change.
    pub jwks_written: std::sync::Mutex<BTreeMap<ObjectKey, String>>,
}

impl Ctx {
    /// Counts one write, for the per-pass log line.
    pub fn count_write(&self) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

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
    }
}

/// A failed step of a pass. The pass is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a referenced Secret failed.
    #[error("reading Secret {key}: {source}")]
    ReadSecret { key: ObjectKey, source: kube::Error },
    /// The crypto library could not generate a key.
    #[error("{0}")]
    Generate(String),
    /// Writing failed.
    #[error("{action} {what}: {source}")]
    Write {
        action: &'static str,
        what: String,
        source: kube::Error,
    },
}

impl Error {
    /// The metric label of this error: a fixed set, never object names.
    pub fn category(&self) -> &'static str {
        match self {
            Error::ReadSecret { .. } => "read_secret",
            Error::Generate(_) => "generate_key",
            Error::Write {
                source: kube::Error::Api(s),
                ..
            } if s.code == 409 => "write_conflict",
            Error::Write { .. } => "write",
        }
    }
}

fn write_error(
    action: &'static str,
    what: impl std::fmt::Display,
) -> impl FnOnce(kube::Error) -> Error {
    let what = what.to_string();
    move |source| Error::Write {
        action,
        what,
        source,
    }
}

/// Runs one pass at `now`. Returns the next time (unix seconds) a pass is due even without
/// changes (the end of a secret-rotation overlap), if any.
pub async fn run(ctx: &Ctx, now: Timestamp) -> Result<Option<i64>, Error> {
    let started = std::time::Instant::now();
    let key_due = crate::keys::reconcile::run(ctx, now).await?;
    let mut inputs = dereference(ctx, now.as_second()).await?;
    let first = compile::compile(&inputs);

    let mut next_wake = key_due.map(|t| t.as_second());
    let wrote = ensure_client_secrets(ctx, &mut inputs, &first, &mut next_wake).await?;
    let mut out = if wrote {
        compile::compile(&inputs)
    } else {
        first
    };
    ctx.metrics.last_compile.set(now.as_second());

    let mut snapshot_bytes = 0;
    let mut snapshot_conflicts = BTreeSet::new();
    for (ts_key, snapshot) in &mut out.snapshots {
        let Some(ts) = ctx.token_services.get(ts_key) else {
            continue;
        };
        let wire = snapshot_secret::wire(snapshot);
        // Status and logs name the snapshot by the hash of the bytes written.
        snapshot.hash.clone_from(&wire.hash);
        match write_snapshot(ctx, &inputs, &ts, snapshot, &wire).await? {
            Some(bytes) => snapshot_bytes += bytes,
            None => {
                snapshot_conflicts.insert(ts_key.clone());
            }
        }
    }
    ctx.metrics.snapshot_bytes.set(snapshot_bytes as i64);
    ctx.metrics
        .clients
        .set(out.snapshots.values().map(|s| s.clients.len() as i64).sum());

    let time = Time(now);
    write_statuses(ctx, &out, &snapshot_conflicts, &time).await?;
    ctx.metrics
        .pass_duration
        .observe(started.elapsed().as_secs_f64());
    Ok(next_wake)
}

/// Reads every object and every Secret they reference.
async fn dereference(ctx: &Ctx, now: i64) -> Result<Inputs, Error> {
    // The mirrors' Arcs: a pass copies no object.
    let token_services = ctx.token_services.list();
    let clients = ctx.clients.list();
    let identity_providers = ctx.identity_providers.list();
    let signing_keys = ctx.signing_keys.list();

    let mut wanted: BTreeSet<ObjectKey> = BTreeSet::new();
    for c in &clients {
        let ns = c.namespace().unwrap_or_default();
        match c
            .spec
            .secret
            .as_ref()
            .and_then(|s| s.existing_secret_ref.as_ref())
        {
            Some(r) => wanted.insert(ObjectKey::new(&ns, &r.name)),
            None => wanted.insert(ObjectKey::new(&ns, &compile::client_secret_name(c))),
        };
    }
    for idp in &identity_providers {
        let ns = idp.namespace().unwrap_or_default();
        if let Some(s) = &idp.spec.static_users {
            wanted.insert(ObjectKey::new(&ns, &s.users_secret_ref.name));
        }
        if let Some(o) = &idp.spec.oidc {
            wanted.insert(ObjectKey::new(&ns, &o.client_secret_ref.name));
        }
    }
    for ts in &token_services {
        let ns = ts.namespace().unwrap_or_default();
        if let Some(r) = &ts.spec.store.redis {
            wanted.insert(ObjectKey::new(&ns, &r.url_secret_ref.name));
        }
    }
    for k in &signing_keys {
        let ns = k.namespace().unwrap_or_default();
        for version in k.status.iter().flat_map(|s| &s.keys) {
            wanted.insert(ObjectKey::new(&ns, &version.secret_name));
        }
    }
    // The snapshot Secrets themselves, to write only what changed.
    for meta in ctx.secrets.list() {
        if meta.labels().contains_key(SNAPSHOT_LABEL) {
            wanted.insert(key(&*meta));
        }
    }

    let mut secrets = BTreeMap::new();
    for k in &wanted {
        if let Some(managed) = ctx.managed_secrets.get(k) {
            secrets.insert(k.clone(), crate::secret_data::to_data(&managed));
            continue;
        }
        let Some(meta) = ctx.secrets.get(k) else {
            continue;
        };
        let data = ctx
            .cache
            .get(&ctx.client, &meta)
            .await
            .map_err(|source| Error::ReadSecret {
                key: k.clone(),
                source,
            })?;
        if let Some(data) = data {
            secrets.insert(k.clone(), data);
        }
    }
    ctx.cache.retain(|k| wanted.contains(k));

    let namespaces = ctx
        .namespaces
        .list()
        .iter()
        .map(|n| (n.name_any(), n.labels().clone()))
        .collect();
    Ok(Inputs {
        token_services,
        clients,
        scopes: ctx.scopes.list(),
        identity_providers,
        signing_keys,
        namespaces,
        secrets,
        now,
    })
}

fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    let mut reference = owner
        .controller_owner_ref(&())
        .expect("stored objects have a name and uid");
    reference.block_owner_deletion = Some(true);
    reference
}

/// Writes that run at once: the API server, not the operator, sets the pace.
const CONCURRENT_WRITES: usize = 32;

/// One client Secret to create or update.
struct SecretWrite {
    client: Arc<OidcClient>,
    key: ObjectKey,
    secret: Secret,
    create: bool,
    reason: &'static str,
    note: String,
    data: SecretData,
}

/// Creates, updates or rotates the generated client Secrets; records the new contents in
/// `inputs`. Returns whether anything was written.
async fn ensure_client_secrets(
    ctx: &Ctx,
    inputs: &mut Inputs,
    first: &Output,
    next_wake: &mut Option<i64>,
) -> Result<bool, Error> {
    let mut jobs = Vec::new();
    for client in inputs.clients.iter() {
        let client_arc = client.clone();
        let client: &OidcClient = client;
        let client_key = key(client);
        let Some(report) = first.report(Kind::OidcClient, &client_key.namespace, &client_key.name)
        else {
            continue;
        };
        // Only a client that is otherwise fine gets credentials: never a Secret carrying an id
        // that belongs to someone else.
        let pending_only = report
            .problems
            .iter()
            .all(|p| !p.excluded || p.reason == "SecretPending");
        let (Some(ts_key), Some(client_id)) = (&report.token_service, &report.client_id) else {
            continue;
        };
        if !compile::generates_secret(client) || !pending_only {
            continue;
        }
        let Some(ts) = ctx.token_services.get(ts_key) else {
            continue;
        };
        let name = compile::client_secret_name(client);
        let secret_key = ObjectKey::new(&client_key.namespace, &name);
        let current = inputs.secrets.get(&secret_key);
        if current.is_some_and(|c| c.controller_uid != client.uid()) {
            continue; // compile reports SecretConflict; never touch it
        }
        let current_contents = current.map(|c| Contents {
            data: c.data.clone(),
            annotations: c.annotations.clone(),
        });
        let overlap = client
            .spec
            .secret
            .as_ref()
            .and_then(|s| s.rotation_overlap.as_ref())
            .map_or(86_400, |d| d.get().as_secs() as i64);
        let want = Want {
            client_id,
            issuer: &ts.spec.issuer,
            rotate_request: client
                .annotations()
                .get(client_secret::ROTATE_ANNOTATION)
                .map(String::as_str),
            overlap_secs: overlap,
            now: inputs.now,
        };
        let planned = client_secret::plan(
            &want,
            current_contents.as_ref(),
            signet_crds::keygen::client_secret,
        );
        let effective = planned.as_ref().or(current_contents.as_ref());
        if let Some(end) = effective
            .and_then(client_secret::overlap_end)
            .filter(|end| *end > inputs.now)
        {
            *next_wake = Some(next_wake.map_or(end, |w: i64| w.min(end)));
        }
        let Some(contents) = planned else { continue };

        let meta = ctx.secrets.get(&secret_key);
        let mut labels = meta
            .as_ref()
            .map(|m| m.labels().clone())
            .unwrap_or_default();
        labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(client_key.namespace.clone()),
                labels: Some(labels),
                annotations: Some(contents.annotations.clone()),
                owner_references: Some(vec![controller_ref(client)]),
                resource_version: meta
                    .as_ref()
                    .and_then(|m| m.metadata.resource_version.clone()),
                ..Default::default()
            },
            data: Some(
                contents
                    .data
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                    .collect(),
            ),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        let rotated = current.is_some()
            && contents.data.get(compile::CLIENT_SECRET_KEY)
                != current.and_then(|c| c.data.get(compile::CLIENT_SECRET_KEY));
        let (reason, note) = match (current.is_none(), rotated) {
            (true, _) => (
                "SecretCreated",
                format!("created Secret {name} with the client credentials"),
            ),
            (false, true) => (
                "SecretRotated",
                format!(
                    "rotated the secret in {name}; the previous one works until the overlap ends"
                ),
            ),
            (false, false) => ("SecretUpdated", format!("updated {name}")),
        };
        let data = SecretData {
            data: contents.data,
            annotations: contents.annotations,
            controller_uid: client.uid(),
        };
        jobs.push(SecretWrite {
            client: client_arc,
            key: secret_key,
            secret,
            create: current.is_none(),
            reason,
            note,
            data,
        });
    }

    let results: Vec<Result<Option<SecretWrite>, Error>> = stream::iter(jobs)
        .map(|job| async move {
            let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &job.key.namespace);
            let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
            let written = if job.create {
                api.create(&params, &job.secret).await
            } else {
                api.replace(&job.key.name, &params, &job.secret).await
            };
            match written {
                Ok(_) => {}
                // Someone wrote it since we looked: the next pass decides with fresh facts.
                Err(kube::Error::Api(s)) if s.code == 409 => return Ok(None),
                Err(e) => return Err(write_error(if job.create { "create" } else { "update" }, format!("Secret {}", job.key))(e)),
            }
            ctx.count_write();
            tracing::info!(client = %key(&*job.client), secret = %job.key.name, reason = job.reason, "client Secret written");
            publish(ctx, &*job.client, EventType::Normal, job.reason, job.note.clone()).await;
            Ok(Some(job))
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .collect()
        .await;
    let mut wrote = false;
    for result in results {
        if let Some(job) = result? {
            inputs.secrets.insert(job.key, job.data);
            wrote = true;
        }
    }
    Ok(wrote)
}

/// Writes the snapshot Secrets of `ts` when their bytes differ. Returns the compressed size,
/// or `None` when a Secret of that name exists that the operator does not own.
async fn write_snapshot(
    ctx: &Ctx,
    inputs: &Inputs,
    ts: &TokenService,
    snapshot: &signet_crds::snapshot::Snapshot,
    wire: &signet_crds::snapshot::Wire,
) -> Result<Option<usize>, Error> {
    let ts_key = key(ts);
    let bytes = snapshot_secret::compress(&wire.json);
    let shards = snapshot_secret::shards(&ts_key.name, &bytes, snapshot_secret::SHARD_BYTES);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ts_key.namespace);
    for shard in &shards {
        let shard_key = ObjectKey::new(&ts_key.namespace, &shard.name);
        let annotations = BTreeMap::from([
            (HASH_ANNOTATION.to_owned(), wire.hash.clone()),
            (
                SCHEMA_ANNOTATION.to_owned(),
                wire.schema_version().unwrap_or_default(),
            ),
            (SHARD_ANNOTATION.to_owned(), shard.position.clone()),
        ]);
        if let Some(existing) = inputs
            .secrets
            .get(&shard_key)
            .or(ctx.secrets.get(&shard_key).map(|_| &EMPTY))
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
        ctx.count_write();
        tracing::info!(token_service = %ts_key, secret = %shard.name, hash = %snapshot.hash, bytes = shard.bytes.len(), "snapshot written");
    }
    write_jwks(ctx, ts, snapshot).await?;

    // Shards of an earlier, differently sized snapshot.
    let names: BTreeSet<&str> = shards.iter().map(|s| s.name.as_str()).collect();
    for meta in ctx.secrets.list() {
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
            ctx.count_write();
        }
    }
    Ok(Some(bytes.len()))
}

/// Publishes the TokenService's public keys (pending, active and retired) in ConfigMap
/// `<tokenservice>-jwks`, key `jwks.json`, for in-cluster verifiers.
async fn write_jwks(
    ctx: &Ctx,
    ts: &TokenService,
    snapshot: &signet_crds::snapshot::Snapshot,
) -> Result<(), Error> {
    let ts_key = key(ts);
    let jwks = serde_json::json!({"keys": snapshot.keys.iter().map(|k| &k.public_jwk).collect::<Vec<_>>()}).to_string();
    if ctx.jwks_written.lock().expect("jwks lock").get(&ts_key) == Some(&jwks) {
        return Ok(());
    }
    let name = format!("{}-jwks", ts_key.name);
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ts_key.namespace);
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
        ctx.count_write();
        tracing::info!(token_service = %ts_key, keys = snapshot.keys.len(), "JWKS ConfigMap written");
    }
    ctx.jwks_written
        .lock()
        .expect("jwks lock")
        .insert(ts_key, jwks);
    Ok(())
}

/// Key of the JWKS in its ConfigMap.
pub const JWKS_KEY: &str = "jwks.json";

/// Stand-in for a Secret whose data was not read (it exists but nothing references it).
static EMPTY: SecretData = SecretData {
    data: BTreeMap::new(),
    annotations: BTreeMap::new(),
    controller_uid: None,
};

async fn write_statuses(
    ctx: &Ctx,
    out: &Output,
    snapshot_conflicts: &BTreeSet<ObjectKey>,
    now: &Time,
) -> Result<(), Error> {
    let mut jobs = Vec::new();
    for ts in ctx.token_services.list() {
        let k = key(&*ts);
        let mut report = out
            .report(Kind::TokenService, &k.namespace, &k.name)
            .cloned()
            .unwrap_or_default();
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
        let status = TokenServiceStatus {
            common: common(
                Kind::TokenService,
                &report,
                ts.status.as_ref().map(|s| &s.common),
                ts.meta().generation,
                now,
            ),
            snapshot_hash: snapshot.map(|s| s.hash.clone()),
            clients: snapshot.map(|s| s.clients.len() as i32),
            scopes: snapshot.map(|s| s.scopes.len() as i32),
            identity_providers: snapshot.map(|s| s.identity_providers.len() as i32),
        };
        jobs.push(StatusJob::TokenService(ts, status));
    }
    for client in ctx.clients.list() {
        let k = key(&*client);
        let report = out
            .report(Kind::OidcClient, &k.namespace, &k.name)
            .cloned()
            .unwrap_or_default();
        let issuer = report
            .token_service
            .as_ref()
            .and_then(|t| ctx.token_services.get(t))
            .map(|t| t.spec.issuer.clone());
        let secret_name = match client
            .spec
            .secret
            .as_ref()
            .and_then(|s| s.existing_secret_ref.as_ref())
        {
            Some(r) => Some(r.name.clone()),
            None => {
                compile::generates_secret(&client).then(|| compile::client_secret_name(&client))
            }
        };
        let status = OidcClientStatus {
            common: common(
                Kind::OidcClient,
                &report,
                client.status.as_ref().map(|s| &s.common),
                client.meta().generation,
                now,
            ),
            client_id: report.client_id.clone(),
            secret_name,
            issuer,
        };
        jobs.push(StatusJob::OidcClient(client, status));
    }
    for scope in ctx.scopes.list() {
        let k = key(&*scope);
        let report = out
            .report(Kind::ApiScope, &k.namespace, &k.name)
            .cloned()
            .unwrap_or_default();
        let status = signet_crds::v1alpha1::ApiScopeStatus {
            common: common(
                Kind::ApiScope,
                &report,
                scope.status.as_ref().map(|s| &s.common),
                scope.meta().generation,
                now,
            ),
        };
        jobs.push(StatusJob::ApiScope(scope, status));
    }
    for idp in ctx.identity_providers.list() {
        let k = key(&*idp);
        let report = out
            .report(Kind::IdentityProvider, &k.namespace, &k.name)
            .cloned()
            .unwrap_or_default();
        let status = signet_crds::v1alpha1::IdentityProviderStatus {
            common: common(
                Kind::IdentityProvider,
                &report,
                idp.status.as_ref().map(|s| &s.common),
                idp.meta().generation,
                now,
            ),
        };
        jobs.push(StatusJob::IdentityProvider(idp, status));
    }
    // Futures are made as the buffer pulls them: 32 in flight, not one per object.
    stream::iter(jobs)
        .map(|job| job.run(ctx))
        .buffer_unordered(CONCURRENT_WRITES)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// A status to write, with its object.
enum StatusJob {
    TokenService(Arc<TokenService>, TokenServiceStatus),
    OidcClient(Arc<OidcClient>, OidcClientStatus),
    ApiScope(Arc<ApiScope>, signet_crds::v1alpha1::ApiScopeStatus),
    IdentityProvider(
        Arc<IdentityProvider>,
        signet_crds::v1alpha1::IdentityProviderStatus,
    ),
}

impl StatusJob {
    async fn run(self, ctx: &Ctx) -> Result<(), Error> {
        match self {
            StatusJob::TokenService(o, s) => {
                apply_status(ctx, &*o, Kind::TokenService, o.status.as_ref(), s, |s| {
                    &s.common
                })
                .await
            }
            StatusJob::OidcClient(o, s) => {
                apply_status(ctx, &*o, Kind::OidcClient, o.status.as_ref(), s, |s| {
                    &s.common
                })
                .await
            }
            StatusJob::ApiScope(o, s) => {
                apply_status(ctx, &*o, Kind::ApiScope, o.status.as_ref(), s, |s| {
                    &s.common
                })
                .await
            }
            StatusJob::IdentityProvider(o, s) => {
                apply_status(
                    ctx,
                    &*o,
                    Kind::IdentityProvider,
                    o.status.as_ref(),
                    s,
                    |s| &s.common,
                )
                .await
            }
        }
    }
}

fn common(
    kind: Kind,
    report: &Report,
    previous: Option<&CommonStatus>,
    generation: Option<i64>,
    now: &Time,
) -> CommonStatus {
    let previous = previous
        .map(|p| p.conditions.as_slice())
        .unwrap_or_default();
    CommonStatus {
        observed_generation: generation,
        conditions: conditions::conditions(kind, report, previous, generation, now),
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

/// Writes `status` (server-side apply on the status subresource) unless it says what the
/// current one says; publishes an Event when Ready changes.
async fn apply_status<K, S>(
    ctx: &Ctx,
    object: &K,
    kind: Kind,
    current: Option<&S>,
    status: S,
    common_of: fn(&S) -> &CommonStatus,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize + PartialEq + Clone,
{
    let new = common_of(&status);
    let ready = new.conditions.first().filter(|c| c.type_ == "Ready");
    let result = if ready.is_some_and(|c| c.status == "True") {
        "ready"
    } else {
        "not_ready"
    };
    ctx.metrics
        .reconciles
        .get_or_create(&KindResult {
            kind: kind_label(kind),
            result,
        })
        .inc();

    let unchanged = current.is_some_and(|cur| {
        let old = common_of(cur);
        old.observed_generation == new.observed_generation
            && conditions::same(&old.conditions, &new.conditions)
            && without_common(cur) == without_common(&status)
    });
    if unchanged {
        return Ok(());
    }
    let k = key(object);
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &k.namespace);
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
    ctx.count_write();

    let old_ready: Option<&Condition> =
        current.and_then(|c| common_of(c).conditions.iter().find(|c| c.type_ == "Ready"));
    if let Some(ready) = ready {
        let changed =
            old_ready.is_none_or(|o| o.status != ready.status || o.reason != ready.reason);
        let worth_telling = old_ready.is_some() || ready.status != "True";
        if changed && worth_telling {
            let type_ = if ready.status == "True" {
                EventType::Normal
            } else {
                EventType::Warning
            };
            publish(
                ctx,
                object,
                type_,
                &ready.reason.clone(),
                ready.message.clone(),
            )
            .await;
        }
    }
    Ok(())
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

async fn publish<K: Resource<DynamicType = ()>>(
    ctx: &Ctx,
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
    if let Err(error) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        // An Event is best effort; the condition already says the same.
        tracing::warn!(%error, "publishing an Event failed");
    }
}
