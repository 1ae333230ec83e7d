//! OidcClients: the clients one TokenService serves, with the client-id rules, the scopes each
//! may use, trust, lifetimes and static claims.

use std::collections::BTreeMap;

use kube::ResourceExt;

use super::assign::{Owner, served};
use super::client_secret::client_secret_hashes;
use super::scopes::ScopeTable;
use super::token_service::effective_lifetimes;
use super::{ConditionType, IDENTITY_SCOPES, Inputs, Kind, ObjectKey, Output, Report};
use crate::snapshot::{self, LifetimeSecs};
use crate::v1alpha1::{
    AuthMethod, ClientType, GrantType, Lifetimes, OidcClient, SERVICE_ACCOUNT_NAME, TokenService,
};

/// The client id an OidcClient asks for: its own, or `<namespace>.<name>`.
pub fn default_client_id(client: &OidcClient) -> String {
    client.spec.client_id.clone().unwrap_or_else(|| {
        format!(
            "{}.{}",
            client.namespace().unwrap_or_default(),
            client.name_any()
        )
    })
}

/// How a client authenticates: as registered, else `client_secret_basic` for a confidential
/// client and `none` for a public one.
pub fn auth_method(client: &OidcClient) -> AuthMethod {
    client
        .spec
        .token_endpoint_auth_method
        .unwrap_or(match client.spec.client_type {
            ClientType::Public => AuthMethod::None,
            ClientType::Confidential => AuthMethod::ClientSecretBasic,
        })
}

pub(super) fn compile_clients(
    inputs: &Inputs,
    ts: &TokenService,
    owners: &BTreeMap<ObjectKey, Owner>,
    scopes: &ScopeTable,
    out: &mut Output,
) -> Vec<snapshot::Client> {
    let ts_key = ObjectKey::of(ts);
    let ceiling = lifetime_ceiling(ts);
    let mut taken: BTreeMap<String, ObjectKey> = BTreeMap::new();
    let mut compiled = Vec::new();
    for client in served(&inputs.clients, owners, &ts_key) {
        let key = ObjectKey::of(&**client);
        let client_id = default_client_id(client);
        let mut report = Report {
            token_service: Some(ts_key.clone()),
            client_id: Some(client_id.clone()),
            ..Default::default()
        };

        let prefix = format!("{}.", key.namespace);
        let custom_allowed =
            inputs.selects(ts.spec.custom_client_id_namespaces.as_ref(), &key.namespace);
        if !client_id.starts_with(&prefix) && !custom_allowed {
            report.exclude(
                ConditionType::Ready,
                "ClientIdNotInNamespace",
                format!("clientId {client_id} must start with {prefix} (the TokenService does not allow custom ids for this namespace)"),
            );
        } else if crate::v1alpha1::is_service_account_like(&client_id) {
            report.exclude(
                ConditionType::Ready,
                "ClientIdReserved",
                format!("clientId {client_id} looks like a ServiceAccount's subject (system:..., CLUSTER/system:...)"),
            );
        } else if let Some(holder) = taken.get(&client_id) {
            report.exclude(
                ConditionType::Conflict,
                "ClientIdConflict",
                format!("clientId {client_id} is already used by the older OidcClient {holder}"),
            );
        } else if client_id == ts.spec.issuer
            || scopes
                .values()
                .any(|(s, _)| s.audience.as_deref() == Some(&client_id))
        {
            report.exclude(
                ConditionType::Conflict,
                "ClientIdIsAudience",
                format!("clientId {client_id} equals an audience or the issuer"),
            );
        }

        let allowed_scopes = resolve_scopes(inputs, client, &key, scopes, &mut report);
        let trusted = client.spec.trusted && may_trust(inputs, ts, &key.namespace);
        if client.spec.trusted && !trusted {
            report.warn(
                ConditionType::Restricted,
                "TrustNotGranted",
                format!("trusted is ignored: the TokenService does not allow trusted clients in namespace {} (trustedClientNamespaces)", key.namespace),
            );
        }
        let lifetimes = client_lifetimes(ts, ceiling, client.spec.lifetimes.as_ref(), &mut report);
        let claims = static_claims(&client.spec.claims, &mut report);
        let mut auth_method = auth_method(client);
        let secret_hashes = match auth_method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
                client_secret_hashes(inputs, ts, client, &key, &mut report, out)
            }
            AuthMethod::PrivateKeyJwt | AuthMethod::KubernetesServiceAccount | AuthMethod::None => {
                Vec::new()
            }
        };
        let (service_accounts, workload_cluster) =
            workload_identities(inputs, ts, client, &key.namespace, &mut report);
        // A workload client authenticates with ServiceAccount tokens only: it carries no keys,
        // and is written as private_key_jwt for older readers (`snapshot::Client::auth_method`),
        // which then verify nothing.
        let workload = auth_method == AuthMethod::KubernetesServiceAccount;
        if workload {
            auth_method = AuthMethod::PrivateKeyJwt;
        }

        if report.included() {
            taken.insert(client_id.clone(), key.clone());
            compiled.push(snapshot::Client {
                client_id: client_id.clone(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                display_name: client.spec.display_name.clone(),
                client_type: client.spec.client_type,
                grant_types: client
                    .spec
                    .grant_types
                    .iter()
                    .copied()
                    .filter(|g| *g != GrantType::TokenExchange)
                    .collect(),
                token_exchange: client.spec.grant_types.contains(&GrantType::TokenExchange)
                    && client.spec.client_type != ClientType::Public,
                auth_method,
                service_accounts,
                workload_cluster,
                secret_hashes,
                redirect_uris: client.spec.redirect_uris.clone(),
                post_logout_redirect_uris: client.spec.post_logout_redirect_uris.clone(),
                allowed_scopes,
                allowed_cors_origins: client.spec.allowed_cors_origins.clone(),
                require_pkce: client.spec.require_pkce
                    || client.spec.client_type == ClientType::Public,
                require_consent: client.spec.require_consent,
                trusted,
                id_token_signing_alg: client
                    .spec
                    .id_token_signing_alg
                    .unwrap_or(ts.spec.id_token_signing_alg),
                jwks: client
                    .spec
                    .jwks
                    .as_ref()
                    .filter(|_| !workload)
                    .map(|j| serde_json::to_value(j).expect("JWKS serializes")),
                jwks_uri: client.spec.jwks_uri.clone().filter(|_| !workload),
                lifetimes,
                access_token_format: client.spec.access_token_format,
                back_channel_logout_uri: client.spec.back_channel_logout_uri.clone(),
                allowed_identity_providers: client.spec.allowed_identity_providers.clone(),
                claims,
            });
        }
        out.reports.insert((Kind::OidcClient, key), report);
    }
    compiled.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    compiled
}

/// Whether clients in `namespace` may be trusted: the TokenService's own namespace, and those
/// its `trustedClientNamespaces` selects.
fn may_trust(inputs: &Inputs, ts: &TokenService, namespace: &str) -> bool {
    ts.namespace().as_deref() == Some(namespace)
        || inputs.selects(ts.spec.trusted_client_namespaces.as_ref(), namespace)
}

/// The longest lifetimes a client of `ts` may have: `maxClientLifetimes`, and the
/// TokenService's own defaults where it sets no longer ceiling (a client may only shorten them).
fn lifetime_ceiling(ts: &TokenService) -> LifetimeSecs {
    let defaults = effective_lifetimes(&ts.spec.lifetimes, None);
    ts.spec
        .max_client_lifetimes
        .as_ref()
        .map_or(defaults, |max| {
            effective_lifetimes(max, None).at_least(defaults)
        })
}

/// A client's lifetimes, each clamped to `ceiling`.
fn client_lifetimes(
    ts: &TokenService,
    ceiling: LifetimeSecs,
    client: Option<&Lifetimes>,
    report: &mut Report,
) -> LifetimeSecs {
    let wanted = effective_lifetimes(&ts.spec.lifetimes, client);
    let clamped = wanted.at_most(ceiling);
    if clamped != wanted {
        let names = wanted.longer_than(&ceiling).join(", ");
        report.warn(
            ConditionType::Restricted,
            "LifetimeClamped",
            format!("lifetimes above the TokenService's maximum were shortened to it: {names}"),
        );
    }
    clamped
}

/// The static claims a client may set: reserved names are dropped with a condition (the CRD's
/// CEL rule refuses them at apply; standalone manifests and older objects meet this check).
fn static_claims(
    claims: &BTreeMap<String, String>,
    report: &mut Report,
) -> BTreeMap<String, String> {
    let (reserved, allowed): (BTreeMap<_, _>, BTreeMap<_, _>) = claims
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(name, _)| crate::v1alpha1::is_registered_claim(name));
    if !reserved.is_empty() {
        let names: Vec<&str> = reserved.keys().map(String::as_str).collect();
        report.warn(
            ConditionType::Restricted,
            "ReservedClaim",
            format!(
                "static claims with registered or identity names are ignored: {}",
                names.join(", ")
            ),
        );
    }
    allowed
}

/// The client's scopes that exist and that it may use. A scope from another namespace needs
/// the scope's allowedClientNamespaces to select the client's namespace.
fn resolve_scopes(
    inputs: &Inputs,
    client: &OidcClient,
    key: &ObjectKey,
    scopes: &ScopeTable,
    report: &mut Report,
) -> Vec<String> {
    let mut granted = Vec::new();
    let mut refused = Vec::new();
    for name in &client.spec.allowed_scopes {
        if IDENTITY_SCOPES.contains(&name.as_str()) {
            granted.push(name.clone());
            continue;
        }
        match scopes.get(name) {
            None => refused.push(format!("{name} (no such ApiScope)")),
            Some((_, scope)) => {
                let permitted = scope.namespace == key.namespace
                    || inputs.selects(scope.allowed_client_namespaces.as_ref(), &key.namespace);
                if permitted {
                    granted.push(name.clone());
                } else {
                    refused.push(format!(
                        "{name} (ApiScope in namespace {} does not allow clients from {})",
                        scope.namespace, key.namespace
                    ));
                }
            }
        }
    }
    if !refused.is_empty() {
        report.warn(
            ConditionType::ScopesResolved,
            "ScopesNotResolved",
            format!("not granted: {}", refused.join(", ")),
        );
    }
    granted.sort();
    granted.dedup();
    granted
}

/// The API server's names of the ServiceAccounts a client accepts
/// (`system:serviceaccount:NS:NAME`), all in the client's own namespace, and the trusted
/// cluster they live in (none: this one); in the report each one's name and whether it exists.
/// The CRD's rules refuse other namespaces at apply; this holds the same line for standalone
/// manifests and for objects written before the rule. Another cluster must be among the
/// TokenService's `trustedClusters` and select the client's namespace.
fn workload_identities(
    inputs: &Inputs,
    ts: &TokenService,
    client: &OidcClient,
    namespace: &str,
    report: &mut Report,
) -> (Vec<String>, Option<String>) {
    let method = auth_method(client);
    let identity = client.spec.workload_identity.as_ref();
    let identity = match (method == AuthMethod::KubernetesServiceAccount, identity) {
        (false, None) => return Default::default(),
        (true, Some(identity)) if !identity.service_accounts.is_empty() => identity,
        _ => {
            report.exclude(
                ConditionType::Ready,
                "WorkloadIdentityMismatch",
                "tokenEndpointAuthMethod kubernetes_service_account and workloadIdentity.serviceAccounts go together".into(),
            );
            return Default::default();
        }
    };
    static PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(SERVICE_ACCOUNT_NAME).expect("the name pattern compiles")
    });
    if let Some(bad) = identity
        .service_accounts
        .iter()
        .find(|n| n.len() > 253 || !PATTERN.is_match(n))
    {
        report.exclude(
            ConditionType::Ready,
            "ServiceAccountNotInNamespace",
            format!("workloadIdentity.serviceAccounts: {bad:?} is not the name of a ServiceAccount in namespace {namespace}; another namespace's ServiceAccount cannot be bound"),
        );
        return Default::default();
    }
    if let Some(cluster) = &identity.cluster
        && let Err(why) = may_use_cluster(inputs, ts, cluster, namespace)
    {
        report.exclude(ConditionType::Ready, "ClusterNotTrusted", why);
        return Default::default();
    }
    let mut accepted = identity.service_accounts.clone();
    accepted.sort();
    accepted.dedup();
    // The operator sees this cluster's ServiceAccounts only.
    let exists = |name: &str| {
        let known = inputs
            .service_accounts
            .as_ref()
            .filter(|_| identity.cluster.is_none());
        known.map(|known| known.contains(&ObjectKey::new(namespace, name)))
    };
    report.service_accounts = accepted.iter().map(|n| (n.clone(), exists(n))).collect();
    report.workload_cluster = identity.cluster.clone();
    let usernames = accepted
        .iter()
        .map(|n| format!("system:serviceaccount:{namespace}:{n}"))
        .collect();
    (usernames, identity.cluster.clone())
}

/// Whether clients in `namespace` may accept the tokens of trusted cluster `name`.
fn may_use_cluster(
    inputs: &Inputs,
    ts: &TokenService,
    name: &str,
    namespace: &str,
) -> Result<(), String> {
    let ts_key = ObjectKey::of(ts);
    let Some(cluster) = ts.spec.trusted_clusters.iter().find(|c| c.name == name) else {
        return Err(format!(
            "workloadIdentity.cluster {name:?} is not among the trustedClusters of TokenService {ts_key}"
        ));
    };
    let selected = namespace == ts_key.namespace
        || inputs.selects(cluster.client_namespace_selector.as_ref(), namespace);
    match selected {
        true => Ok(()),
        false => Err(format!(
            "namespace {namespace} may not accept tokens of trusted cluster {name}: its clientNamespaceSelector on TokenService {ts_key} does not select it"
        )),
    }
}
