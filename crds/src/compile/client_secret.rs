//! The client secret of an OidcClient: where it is (a generated Secret or a referenced one),
//! and the hashes the snapshot carries (of the secret, and of a previous one during a rotation
//! overlap).

use std::sync::Arc;

use kube::ResourceExt;

use super::clients::auth_method;
use super::generated_secret::plan_for_client;
use super::{
    CLIENT_SECRET_KEY, ConditionType, Inputs, MIN_REFERENCED_SECRET_LEN, ObjectKey, Output,
    PREVIOUS_SECRET_EXPIRES, PREVIOUS_SECRET_KEY, Report,
};
use crate::snapshot::SecretHash;
use crate::v1alpha1::{AuthMethod, OidcClient, TokenService};

/// Whether the operator (or standalone mode) generates this client's secret: a confidential
/// client using a client secret, without a Secret of its own (`existingSecretRef`).
pub fn generates_secret(client: &OidcClient) -> bool {
    uses_secret(client)
        && client
            .spec
            .secret
            .as_ref()
            .and_then(|s| s.existing_secret_ref.as_ref())
            .is_none()
}

/// Whether the client authenticates with a client secret.
fn uses_secret(client: &OidcClient) -> bool {
    matches!(
        auth_method(client),
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
    )
}

/// The Secret that carries a generated client's credentials: `spec.secret.name` or
/// `<name>-oidc`.
pub fn client_secret_name(client: &OidcClient) -> String {
    client
        .spec
        .secret
        .as_ref()
        .and_then(|s| s.name.clone())
        .unwrap_or_else(|| format!("{}-oidc", client.name_any()))
}

/// The Secret a client's status names: the one it references, else the generated one, if
/// its secret is generated.
pub(super) fn status_secret_name(client: &OidcClient) -> Option<String> {
    match client
        .spec
        .secret
        .as_ref()
        .and_then(|s| s.existing_secret_ref.as_ref())
    {
        Some(r) => Some(r.name.clone()),
        None => generates_secret(client).then(|| client_secret_name(client)),
    }
}

/// Where the secret of a client that uses one is read: the Secret and its data key, and
/// whether that Secret is referenced (rather than generated).
fn location<'a>(client: &'a OidcClient, namespace: &str) -> (ObjectKey, &'a str, bool) {
    match client
        .spec
        .secret
        .as_ref()
        .and_then(|s| s.existing_secret_ref.as_ref())
    {
        Some(r) => (ObjectKey::new(namespace, &r.name), r.key.as_str(), true),
        None => (
            ObjectKey::new(namespace, &client_secret_name(client)),
            CLIENT_SECRET_KEY,
            false,
        ),
    }
}

/// The Secret the compiler reads for `client`, if it reads one.
pub(super) fn read_by_compile(client: &OidcClient) -> Option<ObjectKey> {
    uses_secret(client).then(|| location(client, &client.namespace().unwrap_or_default()).0)
}

/// The hashes of the secret of `client` (which authenticates with one), served by `ts`. A
/// generated Secret that the compiler plans (see `generated_secret`) counts as written.
pub(super) fn client_secret_hashes(
    inputs: &Inputs,
    ts: &TokenService,
    client: &Arc<OidcClient>,
    key: &ObjectKey,
    report: &mut Report,
    out: &mut Output,
) -> Vec<SecretHash> {
    let (secret_key, data_key, referenced) = location(client, &key.namespace);
    let planned = match inputs.new_client_secret {
        Some(fresh) if !referenced => {
            plan_for_client(inputs, ts, client, report, &secret_key, fresh, out)
        }
        _ => None,
    };
    let Some(secret) = planned.as_ref().or(inputs.secrets.get(&secret_key)) else {
        let (reason, message) = if referenced {
            (
                "SecretNotFound",
                format!("Secret {} does not exist", secret_key.name),
            )
        } else {
            (
                "SecretPending",
                format!("Secret {} has not been created yet", secret_key.name),
            )
        };
        report.exclude(ConditionType::SecretReady, reason, message);
        return Vec::new();
    };
    // A generated secret must be the one the operator made for this very client: never
    // take over (or read) someone else's Secret of the same name.
    if !referenced && (secret.controller_uid.is_none() || secret.controller_uid != client.uid()) {
        report.exclude(
            ConditionType::SecretReady,
            "SecretConflict",
            format!("Secret {} exists and is not owned by this OidcClient; rename spec.secret.name or delete that Secret", secret_key.name),
        );
        return Vec::new();
    }
    let Some(current) = secret.data.get(data_key) else {
        report.exclude(
            ConditionType::SecretReady,
            "SecretKeyMissing",
            format!("Secret {} has no key {data_key}", secret_key.name),
        );
        return Vec::new();
    };
    if referenced && current.len() < MIN_REFERENCED_SECRET_LEN {
        report.exclude(
            ConditionType::SecretReady,
            "SecretTooShort",
            format!("the secret in {}/{data_key} must have at least {MIN_REFERENCED_SECRET_LEN} characters", secret_key.name),
        );
        return Vec::new();
    }
    let mut hashes = vec![SecretHash::of(current, None)];
    let previous_expiry = secret
        .annotations
        .get(PREVIOUS_SECRET_EXPIRES)
        .and_then(|v| v.parse::<i64>().ok());
    if let (Some(previous), Some(expiry)) = (secret.data.get(PREVIOUS_SECRET_KEY), previous_expiry)
        && expiry > inputs.now
    {
        hashes.push(SecretHash::of(previous, Some(expiry)));
    }
    hashes
}
