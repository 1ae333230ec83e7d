//! Carries out the lifecycle decision of every SigningKey: one write per key per pass (the
//! watch event of that write starts the next pass), status with conditions, and the next time
//! to look.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use signet_crds::compile::{KEY_PRIVATE_PEM, KEY_PUBLIC_JWK, ObjectKey};
use signet_crds::v1alpha1::{KeyPhase, KeyVersion, SigningKey, SigningKeyStatus, TokenService};

use super::lifecycle::{self, Facts, KeySecret, Step};
use crate::context::{FIELD_MANAGER, MANAGED_BY, WriteError, Writer, write_error};
use crate::pass::served::Served;
use signet_crds::keygen as generate;

/// Label on a key Secret: the SigningKey it belongs to.
pub const KEY_LABEL: &str = "signet.dev/signing-key";
/// Annotation on a key Secret: its kid.
pub const KID_ANNOTATION: &str = "signet.dev/kid";
/// Annotation that starts a rotation now (any new value).
pub const ROTATE_ANNOTATION: &str = "signet.dev/rotate";
/// Annotation that revokes a kid at once.
pub const REVOKE_ANNOTATION: &str = "signet.dev/revoke";
/// Clock skew allowed between the STS, verifiers and the operator.
const SKEW: std::time::Duration = std::time::Duration::from_secs(60);

/// A failed key step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The crypto library could not generate a key.
    #[error("{0}")]
    Generate(String),
    /// A write was refused.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl Error {
    /// The metric label of this error.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Generate(_) => "generate_key",
            Error::Write(e) => e.category(),
        }
    }
}

/// The key Secrets of each SigningKey: the managed Secrets labelled for it and owned by it
/// (also those its status does not list yet), in name order.
pub fn key_secrets(
    signing_keys: &[Arc<SigningKey>],
    managed: &[Arc<Secret>],
) -> BTreeMap<ObjectKey, Vec<KeySecret>> {
    let uids: BTreeMap<ObjectKey, &str> = signing_keys
        .iter()
        .filter_map(|k| Some((crate::mirror::key(&**k), k.meta().uid.as_deref()?)))
        .collect();
    let mut found: BTreeMap<ObjectKey, Vec<KeySecret>> = BTreeMap::new();
    for secret in managed {
        let Some(owner) = secret.labels().get(KEY_LABEL) else {
            continue;
        };
        let owner = ObjectKey::new(&secret.namespace().unwrap_or_default(), owner);
        let Some(uid) = uids.get(&owner) else {
            continue;
        };
        if !secret.owner_references().iter().any(|o| o.uid == *uid) {
            continue;
        }
        found.entry(owner).or_default().push(KeySecret {
            name: secret.name_any(),
            kid: secret
                .annotations()
                .get(KID_ANNOTATION)
                .cloned()
                .unwrap_or_default(),
        });
    }
    found
}

/// A test hook: `SIGNET_FAILPOINT_KEY_WRITES=N` aborts the process right after its N-th key
/// write, to prove that a crash between the writes of a transition is safe.
fn failpoint() {
    static LIMIT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    static DONE: AtomicU64 = AtomicU64::new(0);
    let limit = LIMIT.get_or_init(|| {
        std::env::var("SIGNET_FAILPOINT_KEY_WRITES")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    let done = DONE.fetch_add(1, Ordering::SeqCst) + 1;
    if limit.is_some_and(|n| done >= n) {
        tracing::warn!(done, "failpoint: aborting after a key write");
        std::process::abort();
    }
}

/// Runs one lifecycle step for every SigningKey, with the key Secrets `key_secrets` found and
/// the TokenServices that may use them; returns the earliest time one is due.
pub async fn run(
    writer: &Writer,
    signing_keys: &[Arc<SigningKey>],
    key_secrets: &BTreeMap<ObjectKey, Vec<KeySecret>>,
    token_services: &[Arc<TokenService>],
    reports: &[Arc<Lease>],
    now: Timestamp,
) -> Result<Option<Timestamp>, Error> {
    let mut due: Option<Timestamp> = None;
    for key in signing_keys {
        let ns = key.namespace().unwrap_or_default();
        let name = key.name_any();
        let secrets = key_secrets
            .get(&ObjectKey::new(&ns, &name))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let status = key.status.clone().unwrap_or_default();
        let (live, user) = live_reports(key, token_services, reports, now);
        let published = published_by_all(&live);
        let facts = Facts {
            spec: &key.spec,
            versions: &status.keys,
            secrets,
            rotate: key.annotations().get(ROTATE_ANNOTATION).map(String::as_str),
            rotate_done: status.last_rotate_request.as_deref(),
            revoke: key.annotations().get(REVOKE_ANNOTATION).map(String::as_str),
            revoke_done: status.last_revoke_request.as_deref(),
            published: published.as_ref(),
            now,
        };
        let plan = lifecycle::decide(&facts);
        if let Some(at) = plan.requeue_at {
            due = Some(due.map_or(at, |d| d.min(at)));
        }
        let consistency = timing_warning(key, token_services);
        match plan.step {
            Some(Step::CreateKeySecret) => {
                create_key_secret(writer, key).await?;
                failpoint();
            }
            Some(Step::DeleteKeySecret(secret)) => {
                let api: Api<Secret> = Api::namespaced(writer.client.clone(), &ns);
                match api.delete(&secret, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => {
                        return Err(
                            write_error("delete", format!("key Secret {ns}/{secret}"))(e).into(),
                        );
                    }
                }
                tracing::info!(signing_key = %name, secret = %secret, "key Secret deleted");
                failpoint();
            }
            Some(Step::WriteStatus {
                versions,
                last_rotate_request,
                last_revoke_request,
            }) => {
                let next = SigningKeyStatus {
                    keys: versions,
                    last_rotate_request,
                    last_revoke_request,
                    ..Default::default()
                };
                write_status(
                    writer,
                    key,
                    next,
                    plan.warning.as_deref(),
                    consistency.as_deref(),
                    (&live, &user),
                    now,
                )
                .await?;
                failpoint();
            }
            None => {
                // Conditions can change without a lifecycle step (a TokenService's max-age).
                write_status(
                    writer,
                    key,
                    status.clone(),
                    plan.warning.as_deref(),
                    consistency.as_deref(),
                    (&live, &user),
                    now,
                )
                .await?;
            }
        }
    }
    Ok(due)
}

/// Why the key's timing does not fit the TokenServices that use it, if it does not.
/// The live STS replicas' reports of the TokenServices that use `key`, and the first such
/// TokenService's name (for messages).
fn live_reports(
    key: &SigningKey,
    token_services: &[Arc<TokenService>],
    reports: &[Arc<Lease>],
    now: Timestamp,
) -> (Vec<signet_crds::replica::Report>, String) {
    let users: Vec<&Arc<TokenService>> = token_services
        .iter()
        .filter(|t| {
            t.namespace() == key.namespace() && t.spec.signing_keys.contains(&key.name_any())
        })
        .collect();
    let live = users
        .iter()
        .flat_map(|ts| {
            reports
                .iter()
                .filter(move |l| l.namespace() == ts.namespace())
                .filter_map(move |l| signet_crds::replica::live_report(l, &ts.name_any(), now))
        })
        .collect();
    let name = users
        .first()
        .map(|t| format!("{}/{}", t.namespace().unwrap_or_default(), t.name_any()))
        .unwrap_or_default();
    (live, name)
}

/// The key ids every one of `live` publishes; None when there is none.
fn published_by_all(live: &[signet_crds::replica::Report]) -> Option<BTreeSet<String>> {
    let mut kids = live
        .iter()
        .map(|r| r.kids.iter().cloned().collect::<BTreeSet<_>>());
    let first = kids.next()?;
    Some(kids.fold(first, |all, one| all.intersection(&one).cloned().collect()))
}

/// Whether every live replica publishes every version of `versions` that the JWKS carries.
fn keys_served(versions: &[KeyVersion], live: &[signet_crds::replica::Report]) -> Served {
    if live.is_empty() {
        return Served::NoReplicas;
    }
    let published = versions.iter().filter(|v| {
        matches!(
            v.phase,
            KeyPhase::Active | KeyPhase::Pending | KeyPhase::Retired
        )
    });
    let kids: Vec<&str> = published.map(|v| v.kid.as_str()).collect();
    let behind: Vec<&signet_crds::replica::Report> = live
        .iter()
        .filter(|r| kids.iter().any(|k| !r.kids.iter().any(|p| p == k)))
        .collect();
    // One that refused the snapshot with these keys will not publish them by itself.
    if let Some(r) = behind.iter().find(|r| r.refused.is_some()) {
        let why = r
            .refused
            .as_ref()
            .map(|(_, why)| why.clone())
            .unwrap_or_default();
        return Served::Refused(r.replica.clone(), why);
    }
    let behind: Vec<String> = behind.iter().map(|r| r.replica.clone()).collect();
    match behind.is_empty() {
        true => Served::Yes(live.len()),
        false => Served::Behind(behind, live.len()),
    }
}

fn timing_warning(
    key: &SigningKey,
    token_services: &[std::sync::Arc<TokenService>],
) -> Option<String> {
    let users: Vec<_> = token_services
        .iter()
        .filter(|t| {
            t.namespace() == key.namespace() && t.spec.signing_keys.contains(&key.name_any())
        })
        .collect();
    let max_age = users
        .iter()
        .map(|t| {
            t.spec
                .jwks_max_age
                .as_ref()
                .map_or(std::time::Duration::from_secs(600), |d| d.get())
        })
        .max()?;
    let longest_token = users
        .iter()
        .flat_map(|t| {
            [
                t.spec.lifetimes.access_token.as_ref(),
                t.spec.lifetimes.id_token.as_ref(),
            ]
        })
        .map(|d| d.map_or(std::time::Duration::from_secs(3600), |d| d.get()))
        .max()?;
    let mut problems = Vec::new();
    if key.spec.propagation_time.get() < max_age + SKEW {
        problems.push(format!(
            "propagationTime {} is shorter than the JWKS max-age {}s plus {}s skew: verifiers may meet the new key before they have it",
            key.spec.propagation_time,
            max_age.as_secs(),
            SKEW.as_secs()
        ));
    }
    if key.spec.retention_time.get() < longest_token + SKEW {
        problems.push(format!(
            "retentionTime {} is shorter than the longest token lifetime {}s plus {}s skew: tokens may outlive their key",
            key.spec.retention_time,
            longest_token.as_secs(),
            SKEW.as_secs()
        ));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

async fn create_key_secret(writer: &Writer, key: &SigningKey) -> Result<(), Error> {
    let (alg, bits) = (key.spec.algorithm, key.spec.rsa_key_size);
    // RSA generation takes a while: keep it off the async workers.
    let generated = tokio::task::spawn_blocking(move || generate::generate(alg, bits))
        .await
        .expect("key generation does not panic")
        .map_err(|e| Error::Generate(e.to_string()))?;
    let mut suffix = [0u8; 4];
    aws_lc_rs::rand::fill(&mut suffix).expect("the OS random source works");
    let name = format!(
        "{}-{}",
        key.name_any(),
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let ns = key.namespace().unwrap_or_default();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
                (KEY_LABEL.to_owned(), key.name_any()),
            ])),
            annotations: Some(BTreeMap::from([(
                KID_ANNOTATION.to_owned(),
                generated.kid.clone(),
            )])),
            owner_references: Some(vec![
                key.controller_owner_ref(&())
                    .expect("stored objects have a uid"),
            ]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (
                KEY_PRIVATE_PEM.to_owned(),
                ByteString(generated.private_pem.into_bytes()),
            ),
            (
                KEY_PUBLIC_JWK.to_owned(),
                ByteString(generated.public_jwk.to_string().into_bytes()),
            ),
        ])),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(writer.client.clone(), &ns)
        .create(
            &PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &secret,
        )
        .await
        .map_err(write_error("create", format!("key Secret {ns}/{name}")))?;
    writer.count_write();
    tracing::info!(signing_key = %key.name_any(), secret = %name, kid = %generated.kid, "key version generated");
    Ok(())
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    previous: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if ok { "True" } else { "False" }.to_owned();
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.into(),
        status,
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Writes `next` (keys plus derived fields and conditions) when it differs from the status.
async fn write_status(
    writer: &Writer,
    key: &SigningKey,
    mut next: SigningKeyStatus,
    warning: Option<&str>,
    consistency: Option<&str>,
    (live, token_service): (&[signet_crds::replica::Report], &str),
    now: Timestamp,
) -> Result<(), Error> {
    let current = key.status.clone().unwrap_or_default();
    let active = next.keys.iter().find(|v| v.phase == KeyPhase::Active);
    next.active_kid = active.map(|v| v.kid.clone());
    next.next_rotation = active.and_then(|v| v.retires.clone());
    let generation = key.meta().generation;
    let previous = &current.common.conditions;
    let ready = match (active, warning) {
        (Some(v), None) => condition(
            "Ready",
            true,
            "Active",
            format!("kid {} signs", v.kid),
            previous,
            generation,
            now,
        ),
        (Some(_), Some(w)) => condition(
            "Ready",
            false,
            "UnknownKid",
            w.to_owned(),
            previous,
            generation,
            now,
        ),
        (None, _) => condition(
            "Ready",
            false,
            "NoActiveKey",
            "the first key version is being created".into(),
            previous,
            generation,
            now,
        ),
    };
    let timing = match consistency {
        None => condition(
            "TimingConsistent",
            true,
            "Consistent",
            String::new(),
            previous,
            generation,
            now,
        ),
        Some(problem) => condition(
            "TimingConsistent",
            false,
            "Inconsistent",
            problem.to_owned(),
            previous,
            generation,
            now,
        ),
    };
    next.common.observed_generation = generation;
    // Ready also needs every live replica to publish the keys (Compiled: they are in status).
    let served = keys_served(&next.keys, live);
    next.common.conditions = crate::serving::with_serving(
        vec![ready, timing],
        &served,
        token_service,
        previous,
        generation,
        &Time(now),
    );
    let unchanged = next.keys == current.keys
        && next.active_kid == current.active_kid
        && next.next_rotation == current.next_rotation
        && next.last_rotate_request == current.last_rotate_request
        && next.last_revoke_request == current.last_revoke_request
        && current.common.observed_generation == generation
        && crate::conditions::same(&current.common.conditions, &next.common.conditions);
    if unchanged {
        return Ok(());
    }
    let ns = key.namespace().unwrap_or_default();
    let body = serde_json::json!({"apiVersion": "signet.dev/v1alpha1", "kind": "SigningKey", "status": next});
    Api::<SigningKey>::namespaced(writer.client.clone(), &ns)
        .patch_status(
            &key.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(write_error(
            "apply status of",
            format!("SigningKey {ns}/{}", key.name_any()),
        ))?;
    writer.count_write();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key is served once every live replica publishes each version the JWKS carries; a
    /// replica that refused the snapshot with them is named.
    #[test]
    fn a_signing_key_is_served_once_every_live_replica_publishes_its_versions() {
        let at = Time(Timestamp::from_second(1_800_000_000).unwrap());
        let version = |kid: &str, phase: KeyPhase| KeyVersion {
            kid: kid.into(),
            phase,
            created: at.clone(),
            activates: at.clone(),
            retires: None,
            expires: None,
            secret_name: format!("s-{kid}"),
        };
        let versions = [
            version("k1", KeyPhase::Active),
            version("k2", KeyPhase::Pending),
            version("k0", KeyPhase::Revoked),
        ];
        let report = |name: &str, kids: &[&str]| signet_crds::replica::Report {
            replica: name.into(),
            kids: kids.iter().map(|k| k.to_string()).collect(),
            ..Default::default()
        };
        let both = [report("a", &["k1", "k2"]), report("b", &["k1", "k2"])];
        assert_eq!(
            keys_served(&versions, &both),
            Served::Yes(2),
            "a revoked kid is not published"
        );
        let one_behind = [report("a", &["k1", "k2"]), report("b", &["k1"])];
        assert_eq!(
            keys_served(&versions, &one_behind),
            Served::Behind(vec!["b".into()], 2)
        );
        let mut refusing = report("b", &["k1"]);
        refusing.refused = Some((None, "no active ES256 key".into()));
        let refused = keys_served(&versions, &[report("a", &["k1", "k2"]), refusing]);
        assert_eq!(
            refused,
            Served::Refused("b".into(), "no active ES256 key".into())
        );
        assert_eq!(keys_served(&versions, &[]), Served::NoReplicas);
    }

    fn objects(
        key: serde_json::Value,
        ts: serde_json::Value,
    ) -> (SigningKey, Vec<std::sync::Arc<TokenService>>) {
        let meta = |name: &str| serde_json::json!({"namespace": "ns", "name": name});
        let key: SigningKey = serde_json::from_value(serde_json::json!({
            "apiVersion": "signet.dev/v1alpha1", "kind": "SigningKey", "metadata": meta("key"), "spec": key,
        }))
        .unwrap();
        let ts: TokenService = serde_json::from_value(serde_json::json!({
            "apiVersion": "signet.dev/v1alpha1", "kind": "TokenService", "metadata": meta("ts"), "spec": ts,
        }))
        .unwrap();
        (key, vec![std::sync::Arc::new(ts)])
    }

    #[test]
    fn timing_is_checked_against_the_token_services_that_use_the_key() {
        let ts = serde_json::json!({"issuer": "https://id.example.com", "signingKeys": ["key"], "jwksMaxAge": "10m",
                                    "lifetimes": {"accessToken": "2h"}});
        let (fine, users) = objects(
            serde_json::json!({"propagationTime": "1h", "retentionTime": "25h"}),
            ts.clone(),
        );
        assert_eq!(timing_warning(&fine, &users), None);
        let (short_propagation, users) =
            objects(serde_json::json!({"propagationTime": "5m"}), ts.clone());
        assert!(
            timing_warning(&short_propagation, &users)
                .unwrap()
                .contains("propagationTime 5m")
        );
        let (short_retention, users) =
            objects(serde_json::json!({"retentionTime": "1h"}), ts.clone());
        assert!(
            timing_warning(&short_retention, &users)
                .unwrap()
                .contains("retentionTime 1h")
        );
        // A key no TokenService uses has nothing to be inconsistent with.
        let (unused, _) = objects(serde_json::json!({"propagationTime": "1s"}), ts);
        assert_eq!(timing_warning(&unused, &[]), None);
    }
}
