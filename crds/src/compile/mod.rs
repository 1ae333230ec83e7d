//! The pure compiler: Signet objects and the secret material they reference in, one snapshot
//! per TokenService and a report per object out. No I/O and no clock: `now` is an input.
//!
//! One bad object never blocks the others: it is left out of the snapshot and its report says
//! why. Where two objects claim the same global name (client id, scope name, audience), the
//! older one keeps it and the newer one gets a `Conflict`.

mod selector;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;

pub use selector::matches as selector_matches;

use crate::snapshot::{self, LifetimeSecs, Redacted, SecretHash, Snapshot, StoreSettings};
use crate::v1alpha1::{
    ApiOwner, ApiScope, AuthMethod, ClientType, IdentityProvider, KeyPhase, Lifetimes, OidcClient,
    SigningKey, StoreType, TokenService,
};

/// Scopes defined by OpenID Connect and OAuth, available to every client that lists them.
pub const IDENTITY_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
    "groups",
];

/// Secret key of a generated client secret, in the Secret delivered to the app.
pub const CLIENT_SECRET_KEY: &str = "client_secret";
/// Secret key of the previous client secret during a rotation overlap.
pub const PREVIOUS_SECRET_KEY: &str = "previous_client_secret";
/// Annotation (unix seconds) on the client Secret: when the previous secret stops working.
pub const PREVIOUS_SECRET_EXPIRES: &str = "signet.dev/previous-secret-expires";
/// Secret keys of a signing-key version.
pub const KEY_PRIVATE_PEM: &str = "private.pem";
/// The public JWK of a signing-key version.
pub const KEY_PUBLIC_JWK: &str = "public.jwk";
/// Shortest secret accepted in reference mode.
pub const MIN_REFERENCED_SECRET_LEN: usize = 32;

/// Namespace and name of an object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key of `namespace`/`name`.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    fn of<K: ResourceExt>(object: &K) -> Self {
        Self::new(&object.namespace().unwrap_or_default(), &object.name_any())
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A Signet kind, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// TokenService.
    TokenService,
    /// OidcClient.
    OidcClient,
    /// ApiScope.
    ApiScope,
    /// IdentityProvider.
    IdentityProvider,
    /// SigningKey.
    SigningKey,
}

/// The data and annotations of a Secret that an object references.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SecretData {
    /// `data`, decoded.
    pub data: BTreeMap<String, Vec<u8>>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// UID of the controller in `metadata.ownerReferences`, if any.
    pub controller_uid: Option<String>,
}

/// Everything `compile` reads.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// TokenServices.
    pub token_services: Vec<Arc<TokenService>>,
    /// OidcClients.
    pub clients: Vec<Arc<OidcClient>>,
    /// ApiScopes.
    pub scopes: Vec<Arc<ApiScope>>,
    /// IdentityProviders.
    pub identity_providers: Vec<Arc<IdentityProvider>>,
    /// SigningKeys.
    pub signing_keys: Vec<Arc<SigningKey>>,
    /// Labels of each namespace, by name.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Referenced Secrets.
    pub secrets: BTreeMap<ObjectKey, SecretData>,
    /// Unix seconds.
    pub now: i64,
}

/// Which status condition a problem sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConditionType {
    /// `Ready=False`.
    Ready,
    /// `Conflict=True`: a global name is held by an older object.
    Conflict,
    /// `Ambiguous=True`: selected by several TokenServices and naming none.
    Ambiguous,
    /// `ScopesResolved=False`: a listed scope is unknown or not permitted.
    ScopesResolved,
    /// `SecretReady=False`: the client secret is missing or invalid.
    SecretReady,
    /// `Restricted=True`: the TokenService's policy overrode part of the spec (trust not
    /// granted to the namespace, a lifetime clamped, a reserved static claim dropped).
    Restricted,
}

/// Why an object is (partly) not in effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The condition it sets.
    pub condition: ConditionType,
    /// CamelCase reason.
    pub reason: &'static str,
    /// A sentence for people.
    pub message: String,
    /// Whether the object was left out of the snapshot because of it.
    pub excluded: bool,
}

/// The outcome for one object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The TokenService that serves the object, if one does.
    pub token_service: Option<ObjectKey>,
    /// For clients: the client id in effect.
    pub client_id: Option<String>,
    /// Problems, in the order found.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether the object is in its TokenService's snapshot.
    pub fn included(&self) -> bool {
        self.token_service.is_some() && !self.problems.iter().any(|p| p.excluded)
    }

    fn exclude(&mut self, condition: ConditionType, reason: &'static str, message: String) {
        self.problems.push(Problem {
            condition,
            reason,
            message,
            excluded: true,
        });
    }

    fn warn(&mut self, condition: ConditionType, reason: &'static str, message: String) {
        self.problems.push(Problem {
            condition,
            reason,
            message,
            excluded: false,
        });
    }
}

/// What `compile` produces.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// One sealed snapshot per TokenService.
    pub snapshots: BTreeMap<ObjectKey, Snapshot>,
    /// A report per object, by kind and key.
    pub reports: BTreeMap<(Kind, ObjectKey), Report>,
}

impl Output {
    /// The report of one object.
    pub fn report(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Report> {
        self.reports.get(&(kind, ObjectKey::new(namespace, name)))
    }
}

/// Compiles `inputs`.
pub fn compile(inputs: &Inputs) -> Output {
    let mut out = Output::default();
    for ts in inputs.token_services.iter().map(|o| &**o) {
        out.reports.insert(
            (Kind::TokenService, ObjectKey::of(ts)),
            Report {
                token_service: Some(ObjectKey::of(ts)),
                ..Default::default()
            },
        );
    }

    // Which TokenService serves each client and scope.
    let client_owner = assign(inputs, &inputs.clients, |c| {
        c.spec.token_service_ref.as_deref()
    });
    let scope_owner = assign(inputs, &inputs.scopes, |s| {
        s.spec.token_service_ref.as_deref()
    });

    for ts in inputs.token_services.iter().map(|o| &**o) {
        let ts_key = ObjectKey::of(ts);
        let scopes = compile_scopes(inputs, ts, &scope_owner, &mut out);
        let clients = compile_clients(inputs, ts, &client_owner, &scopes, &mut out);
        let identity_providers = compile_identity_providers(inputs, ts, &mut out);
        let keys = compile_keys(inputs, ts, &mut out);
        let defaults = effective_lifetimes(&ts.spec.lifetimes, None);
        let snapshot = Snapshot {
            schema_version: snapshot::SCHEMA_VERSION.to_owned(),
            hash: String::new(),
            issuer: ts.spec.issuer.clone(),
            jwks_max_age_secs: secs(ts.spec.jwks_max_age.as_ref().map(|d| d.get()), 600),
            lifetimes: defaults,
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
            store: store_settings(inputs, ts, &mut out),
            branding_title: ts.spec.branding.as_ref().and_then(|b| b.title.clone()),
            branding_logo_url: ts.spec.branding.as_ref().and_then(|b| b.logo_url.clone()),
            clients,
            scopes: scopes.into_values().map(|(scope, _)| scope).collect(),
            identity_providers,
            keys,
        }
        .seal();
        out.snapshots.insert(ts_key, snapshot);
    }

    // Objects no TokenService selected still get a report.
    for client in inputs.clients.iter().map(|o| &**o) {
        out.reports
            .entry((Kind::OidcClient, ObjectKey::of(client)))
            .or_insert_with(|| unassigned(&client_owner, client));
    }
    for scope in inputs.scopes.iter().map(|o| &**o) {
        out.reports
            .entry((Kind::ApiScope, ObjectKey::of(scope)))
            .or_insert_with(|| unassigned(&scope_owner, scope));
    }
    out
}

/// Result of choosing a TokenService for a client or scope.
#[derive(Clone, Debug, PartialEq)]
enum Owner {
    Served(ObjectKey),
    Problem(ConditionType, &'static str, String),
}

fn unassigned<K: ResourceExt>(owners: &BTreeMap<ObjectKey, Owner>, object: &K) -> Report {
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
    if ts.namespace().as_deref() == Some(namespace) {
        return true;
    }
    let Some(selector) = &ts.spec.client_namespace_selector else {
        return false;
    };
    inputs
        .namespaces
        .get(namespace)
        .is_some_and(|labels| selector.matches_labels(labels))
}

trait SelectorExt {
    fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool;
}

impl SelectorExt for crate::v1alpha1::LabelSelector {
    fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        selector::matches(self, labels)
    }
}

fn assign<K: ResourceExt>(
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

/// Objects served by `ts`, oldest first, each with its report (already holding the owner).
fn served<'a, K: ResourceExt>(
    objects: &'a [Arc<K>],
    owners: &BTreeMap<ObjectKey, Owner>,
    ts: &ObjectKey,
) -> Vec<&'a K> {
    let mut mine: Vec<&K> = objects
        .iter()
        .map(|o| &**o)
        .filter(|o| owners.get(&ObjectKey::of(*o)) == Some(&Owner::Served(ts.clone())))
        .collect();
    mine.sort_by_key(|o| age_order(*o));
    mine
}

/// Scopes of one TokenService by name, each with the object key that defines it.
type ScopeTable = BTreeMap<String, (snapshot::Scope, ApiScopeRef)>;

#[derive(Clone, Debug)]
struct ApiScopeRef {
    namespace: String,
    allowed_client_namespaces: Option<crate::v1alpha1::LabelSelector>,
}

fn compile_scopes(
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
    for scope in served(&inputs.scopes, owners, &ts_key) {
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
            let compiled = snapshot::Scope {
                name: name.clone(),
                audience: scope.spec.audience.clone(),
                display_name: scope.spec.display_name.clone(),
                description: scope.spec.description.clone(),
                user_claims: scope.spec.user_claims.clone(),
                required: scope.spec.required,
                emphasize: scope.spec.emphasize,
                resource_servers: resource_servers(inputs, scope, &key),
            };
            let reference = ApiScopeRef {
                namespace: key.namespace.clone(),
                allowed_client_namespaces: scope.spec.allowed_client_namespaces.clone(),
            };
            table.insert(name.clone(), (compiled, reference));
        }
        out.reports.insert((Kind::ApiScope, key), report);
    }
    table
}

/// The client ids of a scope's declared resource servers that exist, sorted.
fn resource_servers(inputs: &Inputs, scope: &ApiScope, key: &ObjectKey) -> Vec<String> {
    let mut ids: Vec<String> = scope
        .spec
        .resource_servers
        .iter()
        .filter_map(|r| {
            let namespace = r.namespace.as_deref().unwrap_or(&key.namespace);
            inputs
                .clients
                .iter()
                .find(|c| c.namespace().as_deref() == Some(namespace) && c.name_any() == r.name)
                .map(|c| default_client_id(c))
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

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

/// Whether the operator (or standalone mode) generates this client's secret: a confidential
/// client using a client secret, without a Secret of its own (`existingSecretRef`).
pub fn generates_secret(client: &OidcClient) -> bool {
    matches!(
        auth_method(client),
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
    ) && client
        .spec
        .secret
        .as_ref()
        .and_then(|s| s.existing_secret_ref.as_ref())
        .is_none()
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

fn compile_clients(
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
        let key = ObjectKey::of(client);
        let client_id = default_client_id(client);
        let mut report = Report {
            token_service: Some(ts_key.clone()),
            client_id: Some(client_id.clone()),
            ..Default::default()
        };

        let prefix = format!("{}.", key.namespace);
        let custom_allowed = ts
            .spec
            .custom_client_id_namespaces
            .as_ref()
            .is_some_and(|selector| {
                inputs
                    .namespaces
                    .get(&key.namespace)
                    .is_some_and(|labels| selector.matches_labels(labels))
            });
        if !client_id.starts_with(&prefix) && !custom_allowed {
            report.exclude(
                ConditionType::Ready,
                "ClientIdNotInNamespace",
                format!("clientId {client_id} must start with {prefix} (the TokenService does not allow custom ids for this namespace)"),
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
        let auth_method = auth_method(client);
        let secret_hashes = match auth_method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
                client_secret_hashes(inputs, client, &key, &mut report)
            }
            AuthMethod::PrivateKeyJwt | AuthMethod::None => Vec::new(),
        };

        if report.included() {
            taken.insert(client_id.clone(), key.clone());
            compiled.push(snapshot::Client {
                client_id: client_id.clone(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                display_name: client.spec.display_name.clone(),
                client_type: client.spec.client_type,
                grant_types: client.spec.grant_types.clone(),
                auth_method,
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
                    .map(|j| serde_json::to_value(j).expect("JWKS serializes")),
                jwks_uri: client.spec.jwks_uri.clone(),
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
        || ts
            .spec
            .trusted_client_namespaces
            .as_ref()
            .is_some_and(|selector| {
                inputs
                    .namespaces
                    .get(namespace)
                    .is_some_and(|labels| selector.matches_labels(labels))
            })
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
                    || scope
                        .allowed_client_namespaces
                        .as_ref()
                        .is_some_and(|selector| {
                            inputs
                                .namespaces
                                .get(&key.namespace)
                                .is_some_and(|labels| selector.matches_labels(labels))
                        });
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

fn client_secret_hashes(
    inputs: &Inputs,
    client: &OidcClient,
    key: &ObjectKey,
    report: &mut Report,
) -> Vec<SecretHash> {
    let reference = client
        .spec
        .secret
        .as_ref()
        .and_then(|s| s.existing_secret_ref.as_ref());
    let (secret_key, data_key) = match reference {
        Some(r) => (ObjectKey::new(&key.namespace, &r.name), r.key.as_str()),
        None => (
            ObjectKey::new(&key.namespace, &client_secret_name(client)),
            CLIENT_SECRET_KEY,
        ),
    };
    let Some(secret) = inputs.secrets.get(&secret_key) else {
        let (reason, message) = match reference {
            Some(_) => (
                "SecretNotFound",
                format!("Secret {} does not exist", secret_key.name),
            ),
            None => (
                "SecretPending",
                format!("Secret {} has not been created yet", secret_key.name),
            ),
        };
        report.exclude(ConditionType::SecretReady, reason, message);
        return Vec::new();
    };
    // A generated secret must be the one the operator made for this very client: never
    // take over (or read) someone else's Secret of the same name.
    if reference.is_none()
        && (secret.controller_uid.is_none() || secret.controller_uid != client.uid())
    {
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
    if reference.is_some() && current.len() < MIN_REFERENCED_SECRET_LEN {
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

fn compile_identity_providers(
    inputs: &Inputs,
    ts: &TokenService,
    out: &mut Output,
) -> Vec<snapshot::IdentityProvider> {
    let ts_key = ObjectKey::of(ts);
    let mut compiled = Vec::new();
    for name in &ts.spec.identity_providers {
        let key = ObjectKey::new(&ts_key.namespace, name);
        let Some(idp) = inputs
            .identity_providers
            .iter()
            .find(|i| ObjectKey::of(&***i) == key)
        else {
            if let Some(report) = out.reports.get_mut(&(Kind::TokenService, ts_key.clone())) {
                report.warn(
                    ConditionType::Ready,
                    "IdentityProviderNotFound",
                    format!("IdentityProvider {name} does not exist"),
                );
            }
            continue;
        };
        let mut report = Report {
            token_service: Some(ts_key.clone()),
            ..Default::default()
        };
        let secret = |r: &crate::v1alpha1::SecretKeyRef, report: &mut Report| -> Option<Redacted> {
            let value = inputs
                .secrets
                .get(&ObjectKey::new(&key.namespace, &r.name))
                .and_then(|s| s.data.get(&r.key));
            match value.map(|v| String::from_utf8(v.clone())) {
                Some(Ok(text)) => Some(Redacted(text)),
                Some(Err(_)) => {
                    report.exclude(
                        ConditionType::Ready,
                        "SecretInvalid",
                        format!("Secret {}/{} is not UTF-8", r.name, r.key),
                    );
                    None
                }
                None => {
                    report.exclude(
                        ConditionType::Ready,
                        "SecretNotFound",
                        format!("Secret {} has no key {}", r.name, r.key),
                    );
                    None
                }
            }
        };
        let settings = match (&idp.spec.static_users, &idp.spec.oidc) {
            (Some(s), _) => secret(&s.users_secret_ref, &mut report)
                .map(|users| snapshot::ProviderSettings::Static { users }),
            (None, Some(o)) => secret(&o.client_secret_ref, &mut report).map(|client_secret| {
                snapshot::ProviderSettings::Oidc(Box::new(snapshot::OidcUpstream {
                    issuer: o.issuer.clone(),
                    client_id: o.client_id.clone(),
                    client_secret,
                    scopes: if o.scopes.is_empty() {
                        vec!["openid".into(), "email".into(), "profile".into()]
                    } else {
                        o.scopes.clone()
                    },
                    claim_mappings: o.claim_mappings.clone(),
                    allowed_email_domains: o.allowed_email_domains.clone(),
                    allowed_groups: o.allowed_groups.clone(),
                }))
            }),
            (None, None) => {
                report.exclude(
                    ConditionType::Ready,
                    "InvalidSpec",
                    "neither static nor oidc settings".to_owned(),
                );
                None
            }
        };
        if let Some(settings) = settings {
            compiled.push(snapshot::IdentityProvider {
                name: name.clone(),
                display_name: idp.spec.display_name.clone(),
                settings,
            });
        }
        out.reports.insert((Kind::IdentityProvider, key), report);
    }
    compiled
}

fn compile_keys(inputs: &Inputs, ts: &TokenService, out: &mut Output) -> Vec<snapshot::Key> {
    let ts_key = ObjectKey::of(ts);
    let mut keys = Vec::new();
    let mut active_algs = BTreeSet::new();
    let mut seen_algs = BTreeMap::new();
    for name in &ts.spec.signing_keys {
        let key = ObjectKey::new(&ts_key.namespace, name);
        let Some(sk) = inputs
            .signing_keys
            .iter()
            .find(|k| ObjectKey::of(&***k) == key)
        else {
            if let Some(report) = out.reports.get_mut(&(Kind::TokenService, ts_key.clone())) {
                report.warn(
                    ConditionType::Ready,
                    "SigningKeyNotFound",
                    format!("SigningKey {name} does not exist"),
                );
            }
            continue;
        };
        // One SigningKey per algorithm: a second one of the same algorithm is left out, so
        // exactly one key of each algorithm signs.
        if let Some(first) = seen_algs.get(&sk.spec.algorithm) {
            let message = format!(
                "SigningKeys {first} and {name} both use {:?}; {name} is not used",
                sk.spec.algorithm
            );
            if let Some(report) = out.reports.get_mut(&(Kind::TokenService, ts_key.clone())) {
                report.warn(ConditionType::Ready, "DuplicateAlgorithm", message);
            }
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
    if !missing.is_empty()
        && let Some(report) = out.reports.get_mut(&(Kind::TokenService, ts_key))
    {
        report.warn(
            ConditionType::Ready,
            "NoActiveKey",
            format!("no active signing key for {}", missing.join(", ")),
        );
    }
    keys.sort_by(|a, b| a.kid.cmp(&b.kid));
    keys
}

fn store_settings(inputs: &Inputs, ts: &TokenService, out: &mut Output) -> StoreSettings {
    let ts_key = ObjectKey::of(ts);
    let default_prefix = format!("signet:{ts_key}:");
    let redis = ts.spec.store.redis.as_ref();
    let redis_url = match (ts.spec.store.store_type, redis) {
        (StoreType::Redis, Some(r)) => {
            let url = inputs
                .secrets
                .get(&ObjectKey::new(&ts_key.namespace, &r.url_secret_ref.name))
                .and_then(|s| s.data.get(&r.url_secret_ref.key))
                .and_then(|b| String::from_utf8(b.clone()).ok());
            if url.is_none()
                && let Some(report) = out.reports.get_mut(&(Kind::TokenService, ts_key.clone()))
            {
                report.warn(
                    ConditionType::Ready,
                    "StoreSecretNotFound",
                    format!(
                        "Secret {} has no key {}",
                        r.url_secret_ref.name, r.url_secret_ref.key
                    ),
                );
            }
            url.map(Redacted)
        }
        _ => None,
    };
    StoreSettings {
        store_type: ts.spec.store.store_type,
        redis_url,
        key_prefix: redis
            .and_then(|r| r.key_prefix.clone())
            .unwrap_or(default_prefix),
    }
}

fn secs(value: Option<Duration>, default: u64) -> u64 {
    value.map_or(default, |d| d.as_secs())
}

/// Lifetimes in effect: the client's override, else the TokenService's, else the default.
fn effective_lifetimes(service: &Lifetimes, client: Option<&Lifetimes>) -> LifetimeSecs {
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
