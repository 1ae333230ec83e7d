//! ApiScopes: the scopes one TokenService serves, with the global-name rules (built-in names,
//! owned prefixes, the older object keeps a name or audience).

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;

use super::assign::{Owner, served};
use super::clients::default_client_id;
use super::{ConditionType, IDENTITY_SCOPES, Inputs, Kind, ObjectKey, Output, Report};
use crate::snapshot;
use crate::v1alpha1::{ApiOwner, ApiScope, ClientRef, TokenService};

/// Scopes of one TokenService by name, each with the object key that defines it.
pub(super) type ScopeTable = BTreeMap<String, (snapshot::Scope, ApiScopeRef)>;

#[derive(Clone, Debug)]
pub(super) struct ApiScopeRef {
    pub(super) namespace: String,
    pub(super) allowed_client_namespaces: Option<crate::v1alpha1::LabelSelector>,
    /// The OidcClients its resource servers and delegation name, with the id each asks for:
    /// an id counts only while that very object holds it ([`keep_held_ids`]).
    clients: Vec<(String, ObjectKey)>,
}

pub(super) fn compile_scopes(
    inputs: &Inputs,
    ts: &TokenService,
    owners: &BTreeMap<ObjectKey, Owner>,
    out: &mut Output,
) -> ScopeTable {
    let ts_key = ObjectKey::of(ts);
    let client_ids: BTreeSet<String> = inputs
        .clients
        .iter()
        .map(|c| default_client_id(c))
        .collect();
    let mut table = ScopeTable::new();
    let mut audiences: BTreeMap<String, ObjectKey> = BTreeMap::new();
    for scope in served(&inputs.scopes, owners, &ts_key)
        .into_iter()
        .map(|s| &**s)
    {
        let key = ObjectKey::of(scope);
        let mut report = Report {
            token_service: Some(ts_key.clone()),
            ..Default::default()
        };
        let name = &scope.spec.name;
        let owner_of = |prefixes: fn(&ApiOwner) -> &[String], value: &str| {
            ts.spec
                .api_owners
                .iter()
                .find(|o| prefixes(o).iter().any(|p| value.starts_with(p.as_str())))
                .map(|o| o.namespace.as_str())
                .filter(|owner| *owner != key.namespace)
        };
        if IDENTITY_SCOPES.contains(&name.as_str()) {
            report.exclude(
                ConditionType::Ready,
                "ReservedName",
                format!("{name} is a built-in identity scope"),
            );
        } else if let Some(owner) = owner_of(|o| &o.scope_prefixes, name) {
            report.exclude(
                ConditionType::Conflict,
                "ScopeNameOwned",
                format!("scope name {name} belongs to namespace {owner} (TokenService apiOwners)"),
            );
        } else if let Some((_, holder)) = table.get(name) {
            report.exclude(
                ConditionType::Conflict,
                "ScopeNameConflict",
                format!(
                    "scope name {name} is already defined by an older ApiScope in namespace {}",
                    holder.namespace
                ),
            );
        }
        if let Some(audience) = &scope.spec.audience {
            if let Some(owner) = owner_of(|o| &o.audience_prefixes, audience) {
                report.exclude(
                    ConditionType::Conflict,
                    "AudienceOwned",
                    format!(
                        "audience {audience} belongs to namespace {owner} (TokenService apiOwners)"
                    ),
                );
            } else if audience == &ts.spec.issuer {
                report.exclude(
                    ConditionType::Ready,
                    "AudienceIsIssuer",
                    format!("audience {audience} equals the issuer"),
                );
            } else if client_ids.contains(audience) {
                report.exclude(
                    ConditionType::Ready,
                    "AudienceIsClientId",
                    format!("audience {audience} equals a client id: its tokens could be replayed to that client"),
                );
            } else if let Some(holder) = audiences.get(audience) {
                report.exclude(
                    ConditionType::Conflict,
                    "AudienceConflict",
                    format!("audience {audience} is already used by the older ApiScope {holder}"),
                );
            }
        }
        if report.included() {
            if let Some(audience) = &scope.spec.audience {
                audiences.insert(audience.clone(), key.clone());
            }
            let servers = existing_clients(inputs, &scope.spec.resource_servers, &key);
            let delegates = delegation_clients(inputs, scope, &key, &mut report);
            let compiled = snapshot::Scope {
                name: name.clone(),
                audience: scope.spec.audience.clone(),
                display_name: scope.spec.display_name.clone(),
                description: scope.spec.description.clone(),
                user_claims: scope.spec.user_claims.clone(),
                required: scope.spec.required,
                emphasize: scope.spec.emphasize,
                resource_servers: ids(&servers),
                delegation_clients: ids(&delegates),
            };
            let reference = ApiScopeRef {
                namespace: key.namespace.clone(),
                allowed_client_namespaces: scope.spec.allowed_client_namespaces.clone(),
                clients: [servers, delegates].concat(),
            };
            table.insert(name.clone(), (compiled, reference));
        }
        out.reports.insert((Kind::ApiScope, key), report);
    }
    table
}

/// Keeps, in each scope's resource servers and delegation, the ids whose holder in the
/// compiled clients is the OidcClient the owner named: when that client is left out (an id
/// conflict, another TokenService), whoever else holds the id it asked for gets nothing.
pub(super) fn keep_held_ids(table: &mut ScopeTable, clients: &[snapshot::Client]) {
    for (scope, reference) in table.values_mut() {
        let held = |id: &String| {
            reference.clients.iter().any(|(named, key)| {
                named == id
                    && clients.iter().any(|c| {
                        &c.client_id == id && c.namespace == key.namespace && c.name == key.name
                    })
            })
        };
        scope.resource_servers.retain(held);
        scope.delegation_clients.retain(held);
    }
}

/// The sorted, distinct ids of `clients`.
fn ids(clients: &[(String, ObjectKey)]) -> Vec<String> {
    let mut ids: Vec<String> = clients.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The referenced OidcClients that exist, with the client id each asks for.
fn existing_clients(
    inputs: &Inputs,
    refs: &[ClientRef],
    key: &ObjectKey,
) -> Vec<(String, ObjectKey)> {
    refs.iter()
        .filter_map(|r| {
            let namespace = r.namespace.as_deref().unwrap_or(&key.namespace);
            inputs
                .clients
                .iter()
                .find(|c| c.namespace().as_deref() == Some(namespace) && c.name_any() == r.name)
                .map(|c| (default_client_id(c), ObjectKey::of(&**c)))
        })
        .collect()
}
/// The clients the owner lets act for people towards this API, among those in namespaces its
/// `allowedClientNamespaces` admits (delegation widens no namespace rule); the others are named
/// in a `Restricted` condition.
fn delegation_clients(
    inputs: &Inputs,
    scope: &ApiScope,
    key: &ObjectKey,
    report: &mut Report,
) -> Vec<(String, ObjectKey)> {
    let Some(delegation) = &scope.spec.delegation else {
        return Vec::new();
    };
    let (admitted, refused): (Vec<&ClientRef>, Vec<&ClientRef>) =
        delegation.allowed_clients.iter().partition(|r| {
            let namespace = r.namespace.as_deref().unwrap_or(&key.namespace);
            namespace == key.namespace
                || inputs.selects(scope.spec.allowed_client_namespaces.as_ref(), namespace)
        });
    if !refused.is_empty() {
        let names: Vec<String> = refused
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r.namespace.as_deref().unwrap_or(&key.namespace),
                    r.name
                )
            })
            .collect();
        report.warn(
            ConditionType::Restricted,
            "DelegationNamespaceNotAllowed",
            format!(
                "delegation.allowedClients outside allowedClientNamespaces are ignored: {}",
                names.join(", ")
            ),
        );
    }
    let admitted: Vec<ClientRef> = admitted.into_iter().cloned().collect();
    existing_clients(inputs, &admitted, key)
}
