//! Which TokenService serves each OidcClient and ApiScope, and the age order that decides who
//! keeps a global name.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::ResourceExt;

use super::{ConditionType, Inputs, ObjectKey, Report};
use crate::v1alpha1::TokenService;

/// Result of choosing a TokenService for a client or scope.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Owner {
    Served(ObjectKey),
    Problem(ConditionType, &'static str, String),
}

pub(super) fn unassigned<K: ResourceExt>(
    owners: &BTreeMap<ObjectKey, Owner>,
    object: &K,
) -> Report {
    let mut report = Report::default();
    match owners.get(&ObjectKey::of(object)) {
        Some(Owner::Problem(condition, reason, message)) => {
            report.exclude(*condition, reason, message.clone())
        }
        _ => report.exclude(
            ConditionType::Ready,
            "NoTokenService",
            "no TokenService selects this namespace".to_owned(),
        ),
    }
    report
}

/// Whether `ts` accepts objects from `namespace`: its own namespace always; others when its
/// clientNamespaceSelector selects them.
fn selects_namespace(inputs: &Inputs, ts: &TokenService, namespace: &str) -> bool {
    ts.namespace().as_deref() == Some(namespace)
        || inputs.selects(ts.spec.client_namespace_selector.as_ref(), namespace)
}

pub(super) fn assign<K: ResourceExt>(
    inputs: &Inputs,
    objects: &[Arc<K>],
    token_service_ref: impl Fn(&K) -> Option<&str>,
) -> BTreeMap<ObjectKey, Owner> {
    let mut owners = BTreeMap::new();
    for object in objects {
        let object: &K = object;
        let key = ObjectKey::of(object);
        let candidates: Vec<ObjectKey> = inputs
            .token_services
            .iter()
            .map(|t| &**t)
            .filter(|ts| selects_namespace(inputs, ts, &key.namespace))
            .map(ObjectKey::of)
            .collect();
        let owner = match token_service_ref(object) {
            Some(reference) => {
                let wanted = match reference.split_once('/') {
                    Some((ns, name)) => ObjectKey::new(ns, name),
                    None => ObjectKey::new(&key.namespace, reference),
                };
                if candidates.contains(&wanted) {
                    Owner::Served(wanted)
                } else {
                    Owner::Problem(
                        ConditionType::Ready,
                        "TokenServiceNotFound",
                        format!(
                            "tokenServiceRef {wanted} does not exist or does not select namespace {}",
                            key.namespace
                        ),
                    )
                }
            }
            None => match candidates.as_slice() {
                [only] => Owner::Served(only.clone()),
                [] => Owner::Problem(
                    ConditionType::Ready,
                    "NoTokenService",
                    "no TokenService selects this namespace".to_owned(),
                ),
                many => Owner::Problem(
                    ConditionType::Ambiguous,
                    "Ambiguous",
                    format!(
                        "selected by several TokenServices ({}); set spec.tokenServiceRef to one",
                        many.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            },
        };
        owners.insert(key, owner);
    }
    owners
}

/// Creation order for "the older object keeps the name": timestamp, then namespace/name.
fn age_order<K: ResourceExt>(object: &K) -> (Option<String>, ObjectKey) {
    let created = object
        .meta()
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string());
    // An object without a timestamp (not yet stored) counts as the newest.
    (
        created.or_else(|| Some("~".to_owned())),
        ObjectKey::of(object),
    )
}

/// Objects served by `ts`, oldest first.
pub(super) fn served<'a, K: ResourceExt>(
    objects: &'a [Arc<K>],
    owners: &BTreeMap<ObjectKey, Owner>,
    ts: &ObjectKey,
) -> Vec<&'a Arc<K>> {
    let mut mine: Vec<&Arc<K>> = objects
        .iter()
        .filter(|o| owners.get(&ObjectKey::of(&***o)) == Some(&Owner::Served(ts.clone())))
        .collect();
    mine.sort_by_key(|o| age_order(&***o));
    mine
}
