//! TokenServices: the settings of a snapshot that come from the TokenService itself (issuer,
//! lifetimes, store, branding), around the parts the other kinds compile.

use std::time::Duration;

use super::{Inputs, ObjectKey, Output};
use crate::snapshot::{self, LifetimeSecs, Redacted, Snapshot, StoreSettings};
use crate::v1alpha1::{Lifetimes, SecretKeyRef, StoreType, TokenService};

/// The Secrets the compiler reads for `ts`: the redis URL and the sentinels' password, when
/// the store is redis.
pub(super) fn read_by_compile(ts: &TokenService) -> impl Iterator<Item = ObjectKey> + '_ {
    let namespace = ts.metadata.namespace.clone().unwrap_or_default();
    let redis = match ts.spec.store.store_type {
        StoreType::Redis => ts.spec.store.redis.as_ref(),
        StoreType::Memory => None,
    };
    let url = redis.map(|r| &r.url_secret_ref);
    let sentinel = redis
        .and_then(|r| r.sentinel.as_ref())
        .and_then(|s| s.password_secret_ref.as_ref());
    url.into_iter()
        .chain(sentinel)
        .map(move |r| ObjectKey::new(&namespace, &r.name))
}

/// What the other kinds compiled for one TokenService.
pub(super) struct Parts {
    pub(super) clients: Vec<snapshot::Client>,
    pub(super) scopes: Vec<snapshot::Scope>,
    pub(super) identity_providers: Vec<snapshot::IdentityProvider>,
    pub(super) keys: Vec<snapshot::Key>,
}

/// The sealed snapshot of `ts`: its own settings around `parts`.
pub(super) fn snapshot(
    inputs: &Inputs,
    ts: &TokenService,
    parts: Parts,
    out: &mut Output,
) -> Snapshot {
    Snapshot {
        schema_version: snapshot::SCHEMA_VERSION.to_owned(),
        hash: String::new(),
        issuer: ts.spec.issuer.clone(),
        jwks_max_age_secs: secs(ts.spec.jwks_max_age.as_ref().map(|d| d.get()), 600),
        lifetimes: effective_lifetimes(&ts.spec.lifetimes, None),
        session_lifetime_secs: secs(
            ts.spec.session_lifetime.as_ref().map(|d| d.get()),
            12 * 3600,
        ),
        consent_lifetime_secs: secs(
            ts.spec.consent_lifetime.as_ref().map(|d| d.get()),
            30 * 24 * 3600,
        ),
        allow_private_network_targets: ts.spec.allow_private_network_targets,
        id_token_signing_alg: ts.spec.id_token_signing_alg,
        access_token_signing_alg: ts.spec.access_token_signing_alg,
        store: store_settings(inputs, ts, out),
        branding_title: ts.spec.branding.as_ref().and_then(|b| b.title.clone()),
        branding_logo_url: ts.spec.branding.as_ref().and_then(|b| b.logo_url.clone()),
        clients: parts.clients,
        scopes: parts.scopes,
        identity_providers: parts.identity_providers,
        keys: parts.keys,
        trusted_clusters: ts
            .spec
            .trusted_clusters
            .iter()
            .map(|c| snapshot::TrustedCluster {
                name: c.name.clone(),
                issuer: c.issuer.clone(),
                jwks_uri: c.jwks_uri.clone(),
                ca_bundle: c.ca_bundle.clone(),
                max_token_lifetime_secs: secs(c.max_token_lifetime.as_ref().map(|d| d.get()), 3600),
                allow_private_network: c.allow_private_network,
            })
            .collect(),
    }
    .seal()
}

fn store_settings(inputs: &Inputs, ts: &TokenService, out: &mut Output) -> StoreSettings {
    let ts_key = ObjectKey::of(ts);
    let default_prefix = format!("signet:{ts_key}:");
    let redis = match ts.spec.store.store_type {
        StoreType::Redis => ts.spec.store.redis.as_ref(),
        StoreType::Memory => None,
    };
    let mut secret = |r: &SecretKeyRef| {
        let value = inputs
            .secrets
            .get(&ObjectKey::new(&ts_key.namespace, &r.name))
            .and_then(|s| s.data.get(&r.key))
            .and_then(|b| String::from_utf8(b.clone()).ok());
        if value.is_none() {
            out.warn_token_service(
                &ts_key,
                "StoreSecretNotFound",
                format!("Secret {} has no key {}", r.name, r.key),
            );
        }
        value.map(Redacted)
    };
    let redis_url = redis.and_then(|r| secret(&r.url_secret_ref));
    let topology = redis.and_then(|r| match (&r.sentinel, &r.cluster) {
        (Some(s), _) => Some(snapshot::RedisTopology::Sentinel {
            master_name: s.master_name.clone(),
            addresses: s.addresses.clone(),
            username: s.username.clone(),
            password: s.password_secret_ref.as_ref().and_then(&mut secret),
            tls: s.tls,
        }),
        (None, Some(c)) => Some(snapshot::RedisTopology::Cluster {
            nodes: c.nodes.clone(),
        }),
        (None, None) => None,
    });
    StoreSettings {
        store_type: ts.spec.store.store_type,
        redis_url,
        key_prefix: redis
            .and_then(|r| r.key_prefix.clone())
            .unwrap_or(default_prefix),
        topology,
        wait_for_replicas: redis.and_then(|r| r.wait_for_replicas.as_ref()).map(|w| {
            snapshot::WaitForReplicas {
                // At least 1 (the schema's minimum): `WAIT 0` would wait for nothing.
                replicas: w.replicas.max(1) as u32,
                timeout_ms: w
                    .timeout
                    .as_ref()
                    .map_or(DEFAULT_WAIT_MS, |t| t.get().as_millis() as u64)
                    // Whole milliseconds, never 0: `WAIT n 0` would block for ever.
                    .max(1),
            }
        }),
        ca_bundle: redis.and_then(|r| r.ca_bundle.clone()),
    }
}

/// How long a write waits for its replicas when the TokenService does not say: long enough
/// for a replica on the same network, short enough that a lost replica costs a fast 503.
const DEFAULT_WAIT_MS: u64 = 250;

fn secs(value: Option<Duration>, default: u64) -> u64 {
    value.map_or(default, |d| d.as_secs())
}

/// Lifetimes in effect: the client's override, else the TokenService's, else the default.
pub(super) fn effective_lifetimes(service: &Lifetimes, client: Option<&Lifetimes>) -> LifetimeSecs {
    let pick = |f: fn(&Lifetimes) -> Option<&crate::v1alpha1::KubeDuration>, default: u64| {
        client
            .and_then(f)
            .or_else(|| f(service))
            .map_or(default, |d| d.get().as_secs())
    };
    LifetimeSecs {
        access_token: pick(|l| l.access_token.as_ref(), 3600),
        id_token: pick(|l| l.id_token.as_ref(), 3600),
        refresh_token_absolute: pick(|l| l.refresh_token_absolute.as_ref(), 30 * 86400),
        refresh_token_sliding: pick(|l| l.refresh_token_sliding.as_ref(), 7 * 86400),
        authorization_code: pick(|l| l.authorization_code.as_ref(), 60),
        device_code: pick(|l| l.device_code.as_ref(), 600),
    }
}
