//! One reconcile pass over everything. Level-triggered and idempotent: a pass over unchanged
//! inputs writes nothing. The steps, in order, each in its own file with its own error type:
//!
//! 1. `dereference`: every read the decisions need (objects from the mirrors, the Secrets
//!    they reference, the snapshot and key Secrets that exist).
//! 2. compile: pure and once (`signet_crds::compile`): a snapshot per TokenService, a report
//!    per object, and the generated client Secrets to write, counted as written.
//! 3. `client_secrets`: writes those client Secrets, an Event each.
//! 4. key Secrets (`crate::keys::reconcile`): one lifecycle step per SigningKey.
//! 5. `snapshot`: the snapshot Secrets, where their bytes changed.
//! 6. `jwks`: the JWKS ConfigMaps, where the keys changed.
//! 7. `served`: the snapshot just written joins its TokenService's history; the live STS
//!    replicas' reports (their Leases) say which snapshot each serves.
//! 8. `status`: statuses computed (Ready needs every live replica to serve the object), then
//!    applied where they changed, with Events.
//!
//! A failed step ends the pass; the next one (after a backoff) starts again from step 1.
//! Steps 3 to 7 look at the objects they write (resourceVersion, current bytes) and nothing
//! else; only the leader runs passes.

mod client_secrets;
mod dereference;
mod jwks;
pub mod served;
mod snapshot;
mod status;

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use signet_crds::compile;

use crate::context::{Mirrors, WriteError, Writer};
use crate::keys;
use crate::metrics::Metrics;
use crate::secret_data::SecretCache;

/// What a pass works with, from one pass to the next.
pub struct Ctx {
    /// The watched objects.
    pub mirrors: Mirrors,
    /// Data of referenced Secrets the operator does not manage.
    pub cache: SecretCache,
    /// Where the steps write.
    pub writer: Writer,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The JWKS last written per TokenService.
    pub jwks: jwks::Written,
    /// The snapshots written per TokenService, newest last, with what each holds.
    pub histories:
        std::sync::Mutex<std::collections::BTreeMap<compile::ObjectKey, Arc<served::History>>>,
}

/// The step of a pass that failed. The pass is retried with backoff. A step that only
/// writes fails with the request the API server refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Step 1.
    #[error("dereference: {0}")]
    Dereference(#[from] dereference::Error),
    /// Step 3.
    #[error("client Secrets: {0}")]
    ClientSecrets(#[source] WriteError),
    /// Step 4.
    #[error("key Secrets: {0}")]
    Keys(#[from] keys::reconcile::Error),
    /// Step 5.
    #[error("snapshot: {0}")]
    Snapshot(#[source] WriteError),
    /// Step 6.
    #[error("JWKS: {0}")]
    Jwks(#[source] WriteError),
    /// Step 8.
    #[error("status: {0}")]
    Status(#[source] WriteError),
}

impl Error {
    /// The metric label of this error: a fixed set, never object names.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Dereference(e) => e.category(),
            Error::Keys(e) => e.category(),
            Error::ClientSecrets(e) | Error::Snapshot(e) | Error::Jwks(e) | Error::Status(e) => {
                e.category()
            }
        }
    }
}

/// Runs one pass at `now`. Returns the next time (unix seconds) a pass is due even without
/// changes (a key transition, the end of a secret-rotation overlap), if any.
pub async fn run(ctx: &Ctx, now: Timestamp) -> Result<Option<i64>, Error> {
    let started = std::time::Instant::now();
    let writer = &ctx.writer;

    let observed =
        dereference::run(&ctx.mirrors, &ctx.cache, &writer.client, now.as_second()).await?;
    let inputs = &observed.inputs;

    let mut out = compile::compile(inputs);
    ctx.metrics.last_compile.set(now.as_second());

    client_secrets::write(writer, &ctx.mirrors.secrets, &out.client_secrets)
        .await
        .map_err(Error::ClientSecrets)?;

    let reports = ctx.mirrors.leases.list();
    let key_due = keys::reconcile::run(
        writer,
        &inputs.signing_keys,
        &observed.key_secrets,
        &inputs.token_services,
        &reports,
        now,
    )
    .await?;

    let published = snapshot::write(writer, &ctx.mirrors.secrets, &observed, &mut out.snapshots)
        .await
        .map_err(Error::Snapshot)?;
    ctx.metrics.snapshot_bytes.set(published.bytes as i64);
    ctx.metrics
        .clients
        .set(out.snapshots.values().map(|s| s.clients.len() as i64).sum());

    jwks::write(
        writer,
        &ctx.jwks,
        &inputs.token_services,
        &out.snapshots,
        &published.conflicts,
    )
    .await
    .map_err(Error::Jwks)?;

    let serving = served::observe(
        &mut ctx.histories.lock().expect("histories lock"),
        inputs,
        &out,
        &published.conflicts,
        &reports,
        now,
    );

    status::write(
        writer,
        &ctx.metrics,
        inputs,
        &out,
        &published.conflicts,
        &serving,
        now,
    )
    .await
    .map_err(Error::Status)?;

    ctx.metrics
        .pass_duration
        .observe(started.elapsed().as_secs_f64());
    Ok([key_due.map(|t| t.as_second()), out.secret_overlap_ends]
        .into_iter()
        .flatten()
        .min())
}
