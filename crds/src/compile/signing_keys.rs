//! SigningKeys: the key versions a TokenService's snapshot carries (private material only for
//! the keys that sign or will), one SigningKey per algorithm.

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;

use super::{Inputs, KEY_PRIVATE_PEM, KEY_PUBLIC_JWK, ObjectKey, Output, named_by_token_service};
use crate::snapshot::{self, Redacted};
use crate::v1alpha1::{KeyPhase, SigningKey, TokenService};

/// The Secrets the compiler reads for `key`: one per key version that is not revoked.
pub(super) fn read_by_compile(key: &SigningKey) -> impl Iterator<Item = ObjectKey> + '_ {
    let namespace = key.namespace().unwrap_or_default();
    key.status
        .iter()
        .flat_map(|s| &s.keys)
        .filter(|version| version.phase != KeyPhase::Revoked)
        .map(move |version| ObjectKey::new(&namespace, &version.secret_name))
}

pub(super) fn compile_keys(
    inputs: &Inputs,
    ts: &TokenService,
    out: &mut Output,
) -> Vec<snapshot::Key> {
    let ts_key = ObjectKey::of(ts);
    let mut keys = Vec::new();
    let mut active_algs = BTreeSet::new();
    let mut seen_algs = BTreeMap::new();
    for name in &ts.spec.signing_keys {
        let Some((sk, key)) = named_by_token_service(
            &inputs.signing_keys,
            &ts_key,
            name,
            ("SigningKey", "SigningKeyNotFound"),
            out,
        ) else {
            continue;
        };
        // One SigningKey per algorithm: a second one of the same algorithm is left out, so
        // exactly one key of each algorithm signs.
        if let Some(first) = seen_algs.get(&sk.spec.algorithm) {
            let message = format!(
                "SigningKeys {first} and {name} both use {:?}; {name} is not used",
                sk.spec.algorithm
            );
            out.warn_token_service(&ts_key, "DuplicateAlgorithm", message);
            continue;
        }
        seen_algs.insert(sk.spec.algorithm, name.clone());
        for version in sk.status.iter().flat_map(|s| &s.keys) {
            if version.phase == KeyPhase::Revoked {
                continue;
            }
            let secret = inputs
                .secrets
                .get(&ObjectKey::new(&key.namespace, &version.secret_name));
            let public_jwk = secret
                .and_then(|s| s.data.get(KEY_PUBLIC_JWK))
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok());
            let Some(public_jwk) = public_jwk else {
                continue;
            };
            let signs = matches!(version.phase, KeyPhase::Active | KeyPhase::Pending);
            let private_pem = if signs {
                secret
                    .and_then(|s| s.data.get(KEY_PRIVATE_PEM))
                    .and_then(|b| String::from_utf8(b.clone()).ok())
                    .map(Redacted)
            } else {
                None
            };
            if signs && private_pem.is_none() {
                continue;
            }
            if version.phase == KeyPhase::Active {
                active_algs.insert(format!("{:?}", sk.spec.algorithm));
            }
            keys.push(snapshot::Key {
                kid: version.kid.clone(),
                alg: sk.spec.algorithm,
                phase: version.phase,
                public_jwk,
                private_pem,
            });
        }
    }
    let needed = [
        ts.spec.id_token_signing_alg,
        ts.spec.access_token_signing_alg,
    ];
    let missing: Vec<String> = needed
        .iter()
        .map(|a| format!("{a:?}"))
        .filter(|a| !active_algs.contains(a))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !missing.is_empty() {
        out.warn_token_service(
            &ts_key,
            "NoActiveKey",
            format!("no active signing key for {}", missing.join(", ")),
        );
    }
    keys.sort_by(|a, b| a.kid.cmp(&b.kid));
    keys
}
