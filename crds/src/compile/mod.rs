//! The pure compiler: Signet objects and the secret material they reference in, one snapshot
//! per TokenService and a report per object out. No I/O and no clock: `now` is an input.
//!
//! One bad object never blocks the others: it is left out of the snapshot and its report says
//! why. Where two objects claim the same global name (client id, scope name, audience), the
//! older one keeps it and the newer one gets a `Conflict`.

mod assign;
mod client_secret;
mod clients;
pub mod generated_secret;
mod identity_providers;
mod scopes;
mod selector;
mod signing_keys;
#[cfg(test)]
mod tests;
mod token_service;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kube::ResourceExt;

pub use client_secret::{client_secret_name, generates_secret};
pub use clients::{auth_method, default_client_id};
pub use selector::matches as selector_matches;

use crate::snapshot::Snapshot;
use crate::v1alpha1::{ApiScope, IdentityProvider, OidcClient, SigningKey, TokenService};

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
    /// The ServiceAccounts that exist, when the caller knows them (the operator watches them;
    /// standalone has none to know), so a workload client's status says which it finds.
    pub service_accounts: Option<BTreeSet<ObjectKey>>,
    /// Unix seconds.
    pub now: i64,
    /// Where new client secrets come from. When set (the operator), the compiler also plans
    /// the generated client Secrets (create, rotate, update) into `Output::client_secrets` and
    /// compiles as if they were written. Unset (standalone mode, which writes its own, and
    /// tests), a generated Secret that is missing is `SecretPending`.
    pub new_client_secret: Option<fn() -> String>,
}

impl Inputs {
    /// The Secrets `compile` reads, known from the objects alone: what a caller puts in
    /// `secrets` (those that exist).
    pub fn referenced_secrets(&self) -> BTreeSet<ObjectKey> {
        let clients = self
            .clients
            .iter()
            .filter_map(|c| client_secret::read_by_compile(c));
        let providers = self
            .identity_providers
            .iter()
            .filter_map(|i| identity_providers::read_by_compile(i));
        let stores = self
            .token_services
            .iter()
            .flat_map(|t| token_service::read_by_compile(t));
        let keys = self
            .signing_keys
            .iter()
            .flat_map(|k| signing_keys::read_by_compile(k));
        clients.chain(providers).chain(stores).chain(keys).collect()
    }

    /// Whether `selector` is set and selects `namespace` (by the namespace's labels).
    fn selects(&self, selector: Option<&crate::v1alpha1::LabelSelector>, namespace: &str) -> bool {
        selector.is_some_and(|s| {
            self.namespaces
                .get(namespace)
                .is_some_and(|labels| selector::matches(s, labels))
        })
    }
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
    /// For clients: the Secret that holds its credentials (the one it references, or the
    /// generated one), whether or not it is served.
    pub secret_name: Option<String>,
    /// Problems, in the order found.
    pub problems: Vec<Problem>,
    /// For workload clients: each ServiceAccount it accepts (its name in the client's
    /// namespace) and whether it exists (`None`: not known here).
    pub service_accounts: Vec<(String, Option<bool>)>,
    /// For workload clients of another cluster: its name in the TokenService's
    /// `trustedClusters`.
    pub workload_cluster: Option<String>,
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
    /// The generated client Secrets to write, by OidcClient (planned only when
    /// `Inputs::new_client_secret` is set); the snapshots count them as written.
    pub client_secrets: BTreeMap<ObjectKey, generated_secret::SecretWrite>,
    /// The earliest end (unix seconds) of a running client-secret rotation overlap: the
    /// compiled result changes then without any change of input.
    pub secret_overlap_ends: Option<i64>,
}

impl Output {
    /// The report of one object.
    pub fn report(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Report> {
        self.reports.get(&(kind, ObjectKey::new(namespace, name)))
    }

    /// Adds a problem to a TokenService's `Ready` that keeps nothing out of its snapshot.
    fn warn_token_service(&mut self, ts_key: &ObjectKey, reason: &'static str, message: String) {
        if let Some(report) = self.reports.get_mut(&(Kind::TokenService, ts_key.clone())) {
            report.warn(ConditionType::Ready, reason, message);
        }
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
    let client_owner = assign::assign(inputs, &inputs.clients, |c| {
        c.spec.token_service_ref.as_deref()
    });
    let scope_owner = assign::assign(inputs, &inputs.scopes, |s| {
        s.spec.token_service_ref.as_deref()
    });

    // Per TokenService, in this order: scopes before clients (a client's scopes must exist
    // and a client id may not be an audience), then providers and keys, then the settings.
    for ts in inputs.token_services.iter().map(|o| &**o) {
        let mut scopes = scopes::compile_scopes(inputs, ts, &scope_owner, &mut out);
        let clients = clients::compile_clients(inputs, ts, &client_owner, &scopes, &mut out);
        scopes::keep_held_ids(&mut scopes, &clients);
        let identity_providers =
            identity_providers::compile_identity_providers(inputs, ts, &mut out);
        let keys = signing_keys::compile_keys(inputs, ts, &mut out);
        let parts = token_service::Parts {
            clients,
            scopes: scopes.into_values().map(|(scope, _)| scope).collect(),
            identity_providers,
            keys,
        };
        let snapshot = token_service::snapshot(inputs, ts, parts, &mut out);
        out.snapshots.insert(ObjectKey::of(ts), snapshot);
    }

    // Objects no TokenService selected still get a report; every client's names its Secret.
    for client in inputs.clients.iter().map(|o| &**o) {
        out.reports
            .entry((Kind::OidcClient, ObjectKey::of(client)))
            .or_insert_with(|| assign::unassigned(&client_owner, client))
            .secret_name = client_secret::status_secret_name(client);
    }
    for scope in inputs.scopes.iter().map(|o| &**o) {
        out.reports
            .entry((Kind::ApiScope, ObjectKey::of(scope)))
            .or_insert_with(|| assign::unassigned(&scope_owner, scope));
    }
    out
}

/// The object called `name` in `ts`'s namespace that `ts` lists (an IdentityProvider or a
/// SigningKey), or `None` with a warning on `ts`'s report that names `kind` and `reason`.
fn named_by_token_service<'a, K: ResourceExt>(
    objects: &'a [Arc<K>],
    ts_key: &ObjectKey,
    name: &str,
    (kind, reason): (&str, &'static str),
    out: &mut Output,
) -> Option<(&'a K, ObjectKey)> {
    let key = ObjectKey::new(&ts_key.namespace, name);
    let found = objects.iter().find(|o| ObjectKey::of(&***o) == key);
    if found.is_none() {
        out.warn_token_service(ts_key, reason, format!("{kind} {name} does not exist"));
    }
    found.map(|o| (&**o, key))
}
