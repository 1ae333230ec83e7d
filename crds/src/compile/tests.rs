use serde_json::json;

use super::*;
use crate::snapshot::{self, SecretHash};
use crate::v1alpha1::{GrantType, ProviderType};

const ISSUER: &str = "https://id.example.com";

fn uid(ns: &str, name: &str) -> String {
    format!("uid-{ns}-{name}")
}

fn object<T: serde::de::DeserializeOwned>(
    kind: &str,
    ns: &str,
    name: &str,
    created: &str,
    spec: serde_json::Value,
) -> T {
    serde_json::from_value(json!({
        "apiVersion": "signet.dev/v1alpha1",
        "kind": kind,
        "metadata": {"namespace": ns, "name": name, "creationTimestamp": created, "uid": uid(ns, name)},
        "spec": spec,
    }))
    .unwrap()
}

fn token_service(ns: &str, name: &str, extra: serde_json::Value) -> TokenService {
    let mut spec = json!({"issuer": ISSUER});
    crate::compile::tests::merge(&mut spec, extra);
    object("TokenService", ns, name, "2026-01-01T00:00:00Z", spec)
}

fn client(ns: &str, name: &str, created: &str, extra: serde_json::Value) -> OidcClient {
    let mut spec = json!({"grantTypes": ["client_credentials"], "tokenEndpointAuthMethod": "client_secret_post"});
    merge(&mut spec, extra);
    object("OidcClient", ns, name, created, spec)
}

fn scope(ns: &str, name: &str, created: &str, extra: serde_json::Value) -> ApiScope {
    object("ApiScope", ns, name, created, extra)
}

fn merge(target: &mut serde_json::Value, extra: serde_json::Value) {
    if let (Some(t), serde_json::Value::Object(e)) = (target.as_object_mut(), extra) {
        t.extend(e);
    }
}

/// Inputs with one TokenService in `idp-system` and a generated-secret Secret for every client.
fn inputs(ts: Vec<TokenService>, clients: Vec<OidcClient>, scopes: Vec<ApiScope>) -> Inputs {
    let mut secrets = BTreeMap::new();
    for c in &clients {
        let data = BTreeMap::from([(
            CLIENT_SECRET_KEY.to_owned(),
            format!("secret-of-{}", c.name_any()).into_bytes(),
        )]);
        let owner = Some(uid(&c.namespace().unwrap(), &c.name_any()));
        secrets.insert(
            ObjectKey::new(&c.namespace().unwrap(), &client_secret_name(c)),
            SecretData {
                data,
                controller_uid: owner,
                ..Default::default()
            },
        );
    }
    let namespaces = [
        ("idp-system", vec![]),
        ("team-a", vec![("tenant", "yes")]),
        ("team-b", vec![("tenant", "yes")]),
        ("outsider", vec![]),
    ]
    .into_iter()
    .map(|(n, labels)| {
        // Kubernetes labels every namespace with its name.
        let name = ("kubernetes.io/metadata.name", n);
        (
            n.to_owned(),
            labels
                .into_iter()
                .chain([name])
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    })
    .collect();
    Inputs {
        token_services: ts.into_iter().map(Arc::new).collect(),
        clients: clients.into_iter().map(Arc::new).collect(),
        scopes: scopes.into_iter().map(Arc::new).collect(),
        namespaces,
        secrets,
        now: 1_000,
        ..Default::default()
    }
}

fn tenants_selector() -> serde_json::Value {
    json!({"clientNamespaceSelector": {"matchLabels": {"tenant": "yes"}}})
}

fn reasons(out: &Output, kind: Kind, ns: &str, name: &str) -> Vec<&'static str> {
    out.report(kind, ns, name)
        .unwrap()
        .problems
        .iter()
        .map(|p| p.reason)
        .collect()
}

fn client_ids(out: &Output) -> Vec<String> {
    out.snapshots
        .values()
        .flat_map(|s| s.clients.iter().map(|c| c.client_id.clone()))
        .collect()
}

#[test]
fn valid_client_is_compiled_with_a_secret_hash_only() {
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        vec![client(
            "team-a",
            "app",
            "2026-01-02T00:00:00Z",
            json!({"allowedScopes": ["openid"]}),
        )],
        vec![],
    ));
    let snapshot = &out.snapshots[&ObjectKey::new("idp-system", "signet")];
    assert_eq!(snapshot.clients.len(), 1);
    let compiled = &snapshot.clients[0];
    assert_eq!(compiled.client_id, "team-a.app");
    assert_eq!(
        compiled.secret_hashes,
        vec![SecretHash::of(b"secret-of-app", None)]
    );
    let text = serde_json::to_string(snapshot).unwrap();
    assert!(
        !text.contains("secret-of-app"),
        "no plaintext secret in the snapshot"
    );
    assert!(
        out.report(Kind::OidcClient, "team-a", "app")
            .unwrap()
            .included()
    );
}

#[test]
fn client_without_its_secret_yet_is_left_out_with_a_reason() {
    let mut input = inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        vec![client("team-a", "app", "2026-01-02T00:00:00Z", json!({}))],
        vec![],
    );
    input.secrets.clear();
    let out = compile(&input);
    assert!(client_ids(&out).is_empty());
    assert_eq!(
        reasons(&out, Kind::OidcClient, "team-a", "app"),
        vec!["SecretPending"]
    );
}

#[test]
fn referenced_secret_shorter_than_32_characters_is_refused() {
    let mut input = inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        vec![client(
            "team-a",
            "app",
            "2026-01-02T00:00:00Z",
            json!({"secret": {"existingSecretRef": {"name": "mine", "key": "s"}}}),
        )],
        vec![],
    );
    let short = SecretData {
        data: BTreeMap::from([("s".to_owned(), b"too-short".to_vec())]),
        ..Default::default()
    };
    input
        .secrets
        .insert(ObjectKey::new("team-a", "mine"), short);
    assert_eq!(
        reasons(&compile(&input), Kind::OidcClient, "team-a", "app"),
        vec!["SecretTooShort"]
    );

    let long = SecretData {
        data: BTreeMap::from([("s".to_owned(), vec![b'x'; 32])]),
        ..Default::default()
    };
    input.secrets.insert(ObjectKey::new("team-a", "mine"), long);
    assert!(
        compile(&input)
            .report(Kind::OidcClient, "team-a", "app")
            .unwrap()
            .included()
    );
}

#[test]
fn previous_secret_verifies_until_its_overlap_ends() {
    let mut input = inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        vec![client("team-a", "app", "2026-01-02T00:00:00Z", json!({}))],
        vec![],
    );
    let secret = input
        .secrets
        .get_mut(&ObjectKey::new("team-a", "app-oidc"))
        .unwrap();
    secret
        .data
        .insert(PREVIOUS_SECRET_KEY.to_owned(), b"old".to_vec());
    secret
        .annotations
        .insert(PREVIOUS_SECRET_EXPIRES.to_owned(), "2000".to_owned());
    input.now = 1_999;
    let during = compile(&input);
    let hashes = &during.snapshots.values().next().unwrap().clients[0].secret_hashes;
    assert_eq!(hashes.len(), 2);
    assert_eq!(hashes[1], SecretHash::of(b"old", Some(2000)));
    input.now = 2_000;
    let after = compile(&input);
    assert_eq!(
        after.snapshots.values().next().unwrap().clients[0]
            .secret_hashes
            .len(),
        1
    );
}

#[test]
fn older_client_keeps_its_id_and_the_newer_gets_a_conflict() {
    let ts = token_service(
        "idp-system",
        "signet",
        json!({"clientNamespaceSelector": {}, "customClientIdNamespaces": {}}),
    );
    let older = client(
        "team-a",
        "first",
        "2026-01-02T00:00:00Z",
        json!({"clientId": "shared-id"}),
    );
    let newer = client(
        "team-b",
        "second",
        "2026-01-03T00:00:00Z",
        json!({"clientId": "shared-id"}),
    );
    // Input order must not matter: the newer object comes first here.
    let out = compile(&inputs(vec![ts], vec![newer, older], vec![]));
    assert_eq!(client_ids(&out), vec!["shared-id"]);
    assert!(
        out.report(Kind::OidcClient, "team-a", "first")
            .unwrap()
            .included()
    );
    assert_eq!(
        reasons(&out, Kind::OidcClient, "team-b", "second"),
        vec!["ClientIdConflict"]
    );
}

#[test]
fn custom_client_id_needs_the_namespace_prefix_unless_allowed() {
    let clients = vec![
        client(
            "team-a",
            "prefixed",
            "2026-01-02T00:00:00Z",
            json!({"clientId": "team-a.custom"}),
        ),
        client(
            "team-a",
            "squatter",
            "2026-01-02T00:00:00Z",
            json!({"clientId": "team-b.app"}),
        ),
    ];
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        clients.clone(),
        vec![],
    ));
    assert!(
        out.report(Kind::OidcClient, "team-a", "prefixed")
            .unwrap()
            .included()
    );
    assert_eq!(
        reasons(&out, Kind::OidcClient, "team-a", "squatter"),
        vec!["ClientIdNotInNamespace"]
    );

    let allowing = token_service(
        "idp-system",
        "signet",
        json!({"clientNamespaceSelector": {"matchLabels": {"tenant": "yes"}}, "customClientIdNamespaces": {"matchLabels": {"tenant": "yes"}}}),
    );
    let mut clients = clients;
    for (name, id) in [
        ("workload-like", "system:serviceaccount:team-b:worker"),
        ("east-like", "east/system:serviceaccount:team-b:worker"),
    ] {
        clients.push(client(
            "team-a",
            name,
            "2026-01-02T00:00:00Z",
            json!({"clientId": id}),
        ));
    }
    let out = compile(&inputs(vec![allowing], clients, vec![]));
    assert!(
        out.report(Kind::OidcClient, "team-a", "squatter")
            .unwrap()
            .included()
    );
    // Even where custom ids are allowed, none passes for a workload: a machine's sub is its id.
    for name in ["workload-like", "east-like"] {
        assert_eq!(
            reasons(&out, Kind::OidcClient, "team-a", name),
            ["ClientIdReserved"]
        );
    }
}

#[test]
fn scope_name_and_audience_conflicts_go_to_the_newer_scope() {
    let scopes = vec![
        scope(
            "team-a",
            "orders",
            "2026-01-02T00:00:00Z",
            json!({"name": "orders.read", "audience": "https://orders"}),
        ),
        scope(
            "team-b",
            "orders-copy",
            "2026-01-03T00:00:00Z",
            json!({"name": "orders.read", "audience": "https://other"}),
        ),
        scope(
            "team-b",
            "same-aud",
            "2026-01-04T00:00:00Z",
            json!({"name": "billing.read", "audience": "https://orders"}),
        ),
    ];
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        vec![],
        scopes,
    ));
    assert!(
        out.report(Kind::ApiScope, "team-a", "orders")
            .unwrap()
            .included()
    );
    assert_eq!(
        reasons(&out, Kind::ApiScope, "team-b", "orders-copy"),
        vec!["ScopeNameConflict"]
    );
    assert_eq!(
        reasons(&out, Kind::ApiScope, "team-b", "same-aud"),
        vec!["AudienceConflict"]
    );
    let names: Vec<_> = out
        .snapshots
        .values()
        .next()
        .unwrap()
        .scopes
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names, vec!["orders.read"]);
}

#[test]
fn audience_equal_to_a_client_id_or_the_issuer_is_refused() {
    let scopes = vec![
        scope(
            "team-a",
            "as-client",
            "2026-01-02T00:00:00Z",
            json!({"name": "a", "audience": "team-a.app"}),
        ),
        scope(
            "team-a",
            "as-issuer",
            "2026-01-02T00:00:00Z",
            json!({"name": "b", "audience": ISSUER}),
        ),
    ];
    let clients = vec![client("team-a", "app", "2026-01-02T00:00:00Z", json!({}))];
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        clients,
        scopes,
    ));
    assert_eq!(
        reasons(&out, Kind::ApiScope, "team-a", "as-client"),
        vec!["AudienceIsClientId"]
    );
    assert_eq!(
        reasons(&out, Kind::ApiScope, "team-a", "as-issuer"),
        vec!["AudienceIsIssuer"]
    );
}

#[test]
fn cross_namespace_scope_needs_the_scopes_permission() {
    let scopes = vec![
        scope(
            "team-b",
            "private",
            "2026-01-02T00:00:00Z",
            json!({"name": "b.private", "audience": "https://b"}),
        ),
        scope(
            "team-b",
            "shared",
            "2026-01-02T00:00:00Z",
            json!({"name": "b.shared", "audience": "https://b-shared", "allowedClientNamespaces": {"matchLabels": {"tenant": "yes"}}}),
        ),
    ];
    let clients = vec![client(
        "team-a",
        "app",
        "2026-01-02T00:00:00Z",
        json!({"allowedScopes": ["b.private", "b.shared", "openid"]}),
    )];
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        clients,
        scopes,
    ));
    let report = out.report(Kind::OidcClient, "team-a", "app").unwrap();
    assert!(
        report.included(),
        "a refused scope does not drop the client"
    );
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].condition, ConditionType::ScopesResolved);
    assert!(
        report.problems[0].message.contains("b.private"),
        "{}",
        report.problems[0].message
    );
    let granted = &out.snapshots.values().next().unwrap().clients[0].allowed_scopes;
    assert_eq!(granted, &vec!["b.shared".to_owned(), "openid".to_owned()]);
}

#[test]
fn namespace_selector_decides_who_may_register() {
    let clients = vec![
        client("team-a", "tenant-app", "2026-01-02T00:00:00Z", json!({})),
        client("outsider", "app", "2026-01-02T00:00:00Z", json!({})),
    ];
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        clients,
        vec![],
    ));
    assert_eq!(client_ids(&out), vec!["team-a.tenant-app"]);
    assert_eq!(
        reasons(&out, Kind::OidcClient, "outsider", "app"),
        vec!["NoTokenService"]
    );
}

#[test]
fn object_selected_by_two_token_services_must_name_one() {
    let services = vec![
        token_service("idp-system", "one", tenants_selector()),
        token_service("idp-system", "two", tenants_selector()),
    ];
    let clients = vec![
        client("team-a", "unsure", "2026-01-02T00:00:00Z", json!({})),
        client(
            "team-a",
            "decided",
            "2026-01-02T00:00:00Z",
            json!({"tokenServiceRef": "idp-system/two"}),
        ),
    ];
    let out = compile(&inputs(services, clients, vec![]));
    assert_eq!(
        reasons(&out, Kind::OidcClient, "team-a", "unsure"),
        vec!["Ambiguous"]
    );
    assert_eq!(
        out.report(Kind::OidcClient, "team-a", "unsure")
            .unwrap()
            .problems[0]
            .condition,
        ConditionType::Ambiguous
    );
    assert!(
        out.snapshots[&ObjectKey::new("idp-system", "one")]
            .clients
            .is_empty()
    );
    assert_eq!(
        out.snapshots[&ObjectKey::new("idp-system", "two")].clients[0].client_id,
        "team-a.decided"
    );
}

#[test]
fn hash_is_stable_across_input_order_and_changes_with_content() {
    let services = vec![token_service("idp-system", "signet", tenants_selector())];
    let clients = vec![
        client(
            "team-a",
            "a",
            "2026-01-02T00:00:00Z",
            json!({"allowedScopes": ["openid", "email"]}),
        ),
        client("team-b", "b", "2026-01-03T00:00:00Z", json!({})),
    ];
    let scopes = vec![
        scope("team-a", "x", "2026-01-02T00:00:00Z", json!({"name": "x"})),
        scope("team-b", "y", "2026-01-02T00:00:00Z", json!({"name": "y"})),
    ];
    let forward = compile(&inputs(services.clone(), clients.clone(), scopes.clone()));
    let mut reversed_clients = clients.clone();
    reversed_clients.reverse();
    let mut reversed_scopes = scopes.clone();
    reversed_scopes.reverse();
    let backward = compile(&inputs(services.clone(), reversed_clients, reversed_scopes));
    let hash = |out: &Output| out.snapshots.values().next().unwrap().hash.clone();
    assert_eq!(hash(&forward), hash(&backward));
    assert_eq!(hash(&forward).len(), 64);

    let mut changed = clients;
    changed[1] = client(
        "team-b",
        "b",
        "2026-01-03T00:00:00Z",
        json!({"redirectUris": ["https://b.example/cb"]}),
    );
    assert_ne!(
        hash(&forward),
        hash(&compile(&inputs(services, changed, scopes)))
    );
}

#[test]
fn token_service_without_active_keys_is_not_ready_and_keys_come_from_status() {
    let ts = token_service(
        "idp-system",
        "signet",
        json!({"signingKeys": ["es"], "idTokenSigningAlg": "ES256"}),
    );
    let mut input = inputs(vec![ts], vec![], vec![]);
    let out = compile(&input);
    assert_eq!(
        reasons(&out, Kind::TokenService, "idp-system", "signet"),
        vec!["SigningKeyNotFound", "NoActiveKey"]
    );

    let key: SigningKey = serde_json::from_value(json!({
        "apiVersion": "signet.dev/v1alpha1", "kind": "SigningKey",
        "metadata": {"namespace": "idp-system", "name": "es"},
        "spec": {"algorithm": "ES256"},
        "status": {"keys": [
            {"kid": "k1", "phase": "Active", "created": "2026-01-01T00:00:00Z", "activates": "2026-01-01T00:00:00Z", "secretName": "es-k1"},
            {"kid": "k0", "phase": "Retired", "created": "2025-12-01T00:00:00Z", "activates": "2025-12-01T00:00:00Z", "secretName": "es-k0"}
        ]}
    }))
    .unwrap();
    input.signing_keys = vec![Arc::new(key)];
    for (kid, private) in [("k1", true), ("k0", true)] {
        let mut data = BTreeMap::from([(
            KEY_PUBLIC_JWK.to_owned(),
            format!(r#"{{"kid":"{kid}"}}"#).into_bytes(),
        )]);
        if private {
            data.insert(
                KEY_PRIVATE_PEM.to_owned(),
                b"-----BEGIN PRIVATE KEY-----".to_vec(),
            );
        }
        input.secrets.insert(
            ObjectKey::new("idp-system", &format!("es-{kid}")),
            SecretData {
                data,
                ..Default::default()
            },
        );
    }
    let out = compile(&input);
    assert!(reasons(&out, Kind::TokenService, "idp-system", "signet").is_empty());
    let keys = &out.snapshots.values().next().unwrap().keys;
    assert_eq!(
        keys.iter()
            .map(|k| (k.kid.as_str(), k.private_pem.is_some()))
            .collect::<Vec<_>>(),
        vec![("k0", false), ("k1", true)]
    );
}

#[test]
fn identity_provider_with_a_missing_secret_is_left_out_and_others_stay() {
    let ts = token_service(
        "idp-system",
        "signet",
        json!({"identityProviders": ["users", "broken"]}),
    );
    let idp = |name: &str, secret: &str| -> IdentityProvider {
        object(
            "IdentityProvider",
            "idp-system",
            name,
            "2026-01-01T00:00:00Z",
            json!({"type": "static", "static": {"usersSecretRef": {"name": secret, "key": "users.yaml"}}}),
        )
    };
    let mut input = inputs(vec![ts], vec![], vec![]);
    input.identity_providers = vec![
        Arc::new(idp("users", "users")),
        Arc::new(idp("broken", "nope")),
    ];
    let users = SecretData {
        data: BTreeMap::from([("users.yaml".to_owned(), b"- username: alice".to_vec())]),
        ..Default::default()
    };
    input
        .secrets
        .insert(ObjectKey::new("idp-system", "users"), users);
    let out = compile(&input);
    let names: Vec<_> = out
        .snapshots
        .values()
        .next()
        .unwrap()
        .identity_providers
        .iter()
        .map(|i| i.name.clone())
        .collect();
    assert_eq!(names, vec!["users"]);
    assert_eq!(
        reasons(&out, Kind::IdentityProvider, "idp-system", "broken"),
        vec!["SecretNotFound"]
    );
    assert_eq!(
        input.identity_providers[0].spec.provider_type,
        ProviderType::Static
    );
}

#[test]
fn examples_compile_into_a_snapshot() {
    let mut input = Inputs {
        now: 0,
        ..Default::default()
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for doc in serde_norway::Deserializer::from_str(&std::fs::read_to_string(&path).unwrap()) {
            let mut value: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
            value["metadata"]["namespace"] = json!("signet");
            let uid = format!("uid-{}", value["metadata"]["name"].as_str().unwrap());
            value["metadata"]["uid"] = json!(uid);
            match value["kind"].as_str().unwrap() {
                "TokenService" => input
                    .token_services
                    .push(Arc::new(serde_json::from_value(value).unwrap())),
                "OidcClient" => input
                    .clients
                    .push(Arc::new(serde_json::from_value(value).unwrap())),
                "ApiScope" => input
                    .scopes
                    .push(Arc::new(serde_json::from_value(value).unwrap())),
                "IdentityProvider" => input
                    .identity_providers
                    .push(Arc::new(serde_json::from_value(value).unwrap())),
                "SigningKey" => input
                    .signing_keys
                    .push(Arc::new(serde_json::from_value(value).unwrap())),
                "Secret" => {
                    let data = value["stringData"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
                        .collect();
                    let name = value["metadata"]["name"].as_str().unwrap();
                    input.secrets.insert(
                        ObjectKey::new("signet", name),
                        SecretData {
                            data,
                            ..Default::default()
                        },
                    );
                }
                other => panic!("unexpected kind {other}"),
            }
        }
    }
    for c in &input.clients {
        let data = BTreeMap::from([(CLIENT_SECRET_KEY.to_owned(), b"generated".to_vec())]);
        input.secrets.insert(
            ObjectKey::new("signet", &client_secret_name(c)),
            SecretData {
                data,
                controller_uid: c.uid(),
                ..Default::default()
            },
        );
    }
    let out = compile(&input);
    let snapshot = &out.snapshots[&ObjectKey::new("signet", "signet")];
    assert_eq!(snapshot.clients.len(), 4, "{:#?}", out.reports);
    let worker = snapshot
        .clients
        .iter()
        .find(|c| c.client_id == "signet.orders-worker")
        .unwrap();
    assert_eq!(worker.allowed_scopes, vec!["orders.read"]);
    assert_eq!(snapshot.identity_providers.len(), 1);
    // No keys yet: rotation fills SigningKey status in a later step.
    assert_eq!(
        reasons(&out, Kind::TokenService, "signet", "signet"),
        vec!["NoActiveKey"]
    );
}

#[test]
fn generated_secret_owned_by_someone_else_is_a_conflict() {
    let mut input = inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        vec![client("team-a", "app", "2026-01-02T00:00:00Z", json!({}))],
        vec![],
    );
    for owner in [None, Some("uid-of-another-object".to_owned())] {
        input
            .secrets
            .get_mut(&ObjectKey::new("team-a", "app-oidc"))
            .unwrap()
            .controller_uid = owner;
        let out = compile(&input);
        assert_eq!(
            reasons(&out, Kind::OidcClient, "team-a", "app"),
            vec!["SecretConflict"]
        );
        assert!(
            client_ids(&out).is_empty(),
            "a foreign Secret's value never authenticates the client"
        );
    }
}

#[test]
fn a_second_signing_key_of_the_same_algorithm_is_left_out() {
    let ts = token_service(
        "idp-system",
        "signet",
        json!({"signingKeys": ["a", "b"], "idTokenSigningAlg": "ES256"}),
    );
    let mut input = inputs(vec![ts], vec![], vec![]);
    let key = |name: &str| -> Arc<SigningKey> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "signet.dev/v1alpha1", "kind": "SigningKey",
                "metadata": {"namespace": "idp-system", "name": name},
                "spec": {"algorithm": "ES256"},
                "status": {"keys": [{"kid": format!("{name}-1"), "phase": "Active", "created": "2026-01-01T00:00:00Z",
                                     "activates": "2026-01-01T00:00:00Z", "secretName": format!("{name}-1")}]}
            }))
            .unwrap(),
        )
    };
    input.signing_keys = vec![key("a"), key("b")];
    for name in ["a-1", "b-1"] {
        let data = BTreeMap::from([
            (
                KEY_PUBLIC_JWK.to_owned(),
                format!(r#"{{"kid":"{name}"}}"#).into_bytes(),
            ),
            (KEY_PRIVATE_PEM.to_owned(), b"pem".to_vec()),
        ]);
        input.secrets.insert(
            ObjectKey::new("idp-system", name),
            SecretData {
                data,
                ..Default::default()
            },
        );
    }
    let out = compile(&input);
    let kids: Vec<_> = out
        .snapshots
        .values()
        .next()
        .unwrap()
        .keys
        .iter()
        .map(|k| k.kid.clone())
        .collect();
    assert_eq!(kids, vec!["a-1"]);
    assert_eq!(
        reasons(&out, Kind::TokenService, "idp-system", "signet"),
        vec!["DuplicateAlgorithm"]
    );
}

fn compiled_client<'a>(out: &'a Output, id: &str) -> &'a snapshot::Client {
    out.snapshots
        .values()
        .flat_map(|s| &s.clients)
        .find(|c| c.client_id == id)
        .unwrap()
}

#[test]
fn trust_is_granted_only_to_the_token_services_namespace_and_those_it_selects() {
    let trusted = json!({"trusted": true});
    let clients = vec![
        client(
            "idp-system",
            "portal",
            "2026-01-02T00:00:00Z",
            trusted.clone(),
        ),
        client("team-a", "self", "2026-01-02T00:00:00Z", trusted.clone()),
        client("team-b", "chosen", "2026-01-02T00:00:00Z", trusted),
    ];
    let mut ts = tenants_selector();
    merge(
        &mut ts,
        json!({"trustedClientNamespaces": {"matchLabels": {"kubernetes.io/metadata.name": "team-b"}}}),
    );
    let mut inputs = inputs(
        vec![token_service("idp-system", "signet", ts)],
        clients,
        vec![],
    );
    inputs
        .namespaces
        .get_mut("team-b")
        .unwrap()
        .insert("kubernetes.io/metadata.name".into(), "team-b".into());
    let out = compile(&inputs);
    assert!(compiled_client(&out, "idp-system.portal").trusted);
    assert!(compiled_client(&out, "team-b.chosen").trusted);
    let self_trusted = compiled_client(&out, "team-a.self");
    assert!(!self_trusted.trusted, "a tenant cannot trust itself");
    assert_eq!(
        reasons(&out, Kind::OidcClient, "team-a", "self"),
        vec!["TrustNotGranted"]
    );
    assert!(
        out.report(Kind::OidcClient, "team-a", "self")
            .unwrap()
            .included(),
        "the client still serves, without trust"
    );
}

#[test]
fn client_lifetimes_are_clamped_to_the_token_services_maximum() {
    let long = json!({"lifetimes": {"accessToken": "24h", "refreshTokenAbsolute": "8760h", "idToken": "10m"}});
    let clients = vec![client("idp-system", "app", "2026-01-02T00:00:00Z", long)];
    let defaults = json!({"lifetimes": {"accessToken": "15m"}});
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", defaults.clone())],
        clients.clone(),
        vec![],
    ));
    let lifetimes = compiled_client(&out, "idp-system.app").lifetimes;
    assert_eq!(lifetimes.access_token, 900, "no longer than the default");
    assert_eq!(lifetimes.refresh_token_absolute, 30 * 86400);
    assert_eq!(lifetimes.id_token, 600, "shortening is always allowed");
    let report = out.report(Kind::OidcClient, "idp-system", "app").unwrap();
    assert_eq!(report.problems[0].reason, "LifetimeClamped");
    assert!(
        report.problems[0]
            .message
            .contains("accessToken, refreshTokenAbsolute"),
        "{}",
        report.problems[0].message
    );

    let mut raised = defaults;
    merge(
        &mut raised,
        json!({"maxClientLifetimes": {"accessToken": "2h"}}),
    );
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", raised)],
        clients,
        vec![],
    ));
    let lifetimes = compiled_client(&out, "idp-system.app").lifetimes;
    assert_eq!(lifetimes.access_token, 7200, "up to the platform's ceiling");
    assert_eq!(lifetimes.refresh_token_absolute, 30 * 86400);
}

#[test]
fn static_claims_with_identity_names_are_dropped_in_any_case() {
    let claims = json!({"claims": {"team": "a", "email": "ceo@example.com", "Preferred_Username": "ceo", "iss": "https://evil", "upn": "x"}});
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", json!({}))],
        vec![client("idp-system", "app", "2026-01-02T00:00:00Z", claims)],
        vec![],
    ));
    let kept = &compiled_client(&out, "idp-system.app").claims;
    assert_eq!(kept.keys().collect::<Vec<_>>(), vec!["team"]);
    assert_eq!(
        reasons(&out, Kind::OidcClient, "idp-system", "app"),
        vec!["ReservedClaim"]
    );
}

#[test]
fn owned_scope_names_and_audiences_go_only_to_their_namespace_whatever_the_age() {
    let owners = json!({"apiOwners": [{"namespace": "team-b", "scopePrefixes": ["payments."], "audiencePrefixes": ["https://payments.example.com"]}]});
    let mut ts = tenants_selector();
    merge(&mut ts, owners);
    let scopes = vec![
        // The squatter is older than the owner's scope.
        scope(
            "team-a",
            "squat",
            "2026-01-01T00:00:00Z",
            json!({"name": "payments.read", "audience": "https://elsewhere.example.com"}),
        ),
        scope(
            "team-a",
            "squat-audience",
            "2026-01-01T00:00:00Z",
            json!({"name": "a.pay", "audience": "https://payments.example.com/v2"}),
        ),
        scope(
            "team-b",
            "owner",
            "2026-01-03T00:00:00Z",
            json!({"name": "payments.read", "audience": "https://payments.example.com"}),
        ),
    ];
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", ts)],
        vec![],
        scopes,
    ));
    assert_eq!(
        reasons(&out, Kind::ApiScope, "team-a", "squat"),
        vec!["ScopeNameOwned"]
    );
    assert_eq!(
        reasons(&out, Kind::ApiScope, "team-a", "squat-audience"),
        vec!["AudienceOwned"]
    );
    assert!(
        out.report(Kind::ApiScope, "team-b", "owner")
            .unwrap()
            .included()
    );
}

#[test]
fn resource_servers_resolve_to_client_ids() {
    let scopes = vec![scope(
        "team-a",
        "api",
        "2026-01-02T00:00:00Z",
        json!({"name": "a.read", "audience": "https://a", "resourceServers": [{"name": "api"}, {"name": "gateway", "namespace": "team-b"}, {"name": "missing"}]}),
    )];
    let clients = vec![
        client("team-a", "api", "2026-01-02T00:00:00Z", json!({})),
        client("team-b", "gateway", "2026-01-02T00:00:00Z", json!({})),
    ];
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        clients,
        scopes,
    ));
    let snapshot = out.snapshots.values().next().unwrap();
    assert_eq!(
        snapshot.scopes[0].resource_servers,
        vec!["team-a.api".to_owned(), "team-b.gateway".to_owned()]
    );
}

#[test]
fn a_newer_scope_copying_an_audience_declares_no_resource_servers() {
    let audience = json!("https://orders.example.com");
    let scopes = vec![
        scope(
            "team-b",
            "orders",
            "2026-01-01T00:00:00Z",
            json!({"name": "orders.read", "audience": audience, "resourceServers": [{"name": "orders-api"}]}),
        ),
        scope(
            "team-a",
            "copy",
            "2026-01-02T00:00:00Z",
            json!({"name": "a.copy", "audience": audience, "resourceServers": [{"name": "spy"}]}),
        ),
    ];
    let clients = vec![
        client("team-b", "orders-api", "2026-01-01T00:00:00Z", json!({})),
        client("team-a", "spy", "2026-01-01T00:00:00Z", json!({})),
    ];
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        clients,
        scopes,
    ));
    assert_eq!(
        reasons(&out, Kind::ApiScope, "team-a", "copy"),
        vec!["AudienceConflict"]
    );
    let snapshot = out.snapshots.values().next().unwrap();
    let servers: Vec<&String> = snapshot
        .scopes
        .iter()
        .filter(|s| s.audience.as_deref() == Some("https://orders.example.com"))
        .flat_map(|s| &s.resource_servers)
        .collect();
    assert_eq!(servers, vec!["team-b.orders-api"]);
}

#[test]
fn a_workload_client_names_service_accounts_of_its_own_namespace_only() {
    let workload = |name: &str, accounts: serde_json::Value| {
        client(
            "team-a",
            name,
            "2026-01-02T00:00:00Z",
            json!({"tokenEndpointAuthMethod": "kubernetes_service_account", "workloadIdentity": {"serviceAccounts": accounts}}),
        )
    };
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        vec![
            workload("worker", json!(["worker", "batch", "worker"])),
            // What CEL refuses at apply; standalone manifests reach compile() without it.
            workload("thief", json!(["system:serviceaccount:team-b:worker"])),
            workload("sneaky", json!(["../team-b/worker"])),
        ],
        vec![],
    ));
    let compiled = compiled_client(&out, "team-a.worker");
    assert_eq!(
        compiled.service_accounts,
        [
            "system:serviceaccount:team-a:batch",
            "system:serviceaccount:team-a:worker"
        ]
    );
    assert!(compiled.secret_hashes.is_empty(), "no secret at all");
    assert_eq!(
        compiled.auth_method,
        crate::v1alpha1::AuthMethod::PrivateKeyJwt,
        "written so that an older STS fails it closed"
    );
    assert!(compiled.jwks.is_none() && compiled.jwks_uri.is_none());
    for name in ["thief", "sneaky"] {
        assert_eq!(
            reasons(&out, Kind::OidcClient, "team-a", name),
            ["ServiceAccountNotInNamespace"],
            "{name}"
        );
    }
    assert_eq!(client_ids(&out), ["team-a.worker"]);
    assert_eq!(
        crate::compile::client_secret::status_secret_name(&workload("worker", json!(["w"]))),
        None,
        "no Secret is generated for it"
    );
}

/// A tenant that gives its workload client a JWK Set of its own as well does not get a second
/// way in: the snapshot keeps no keys for it, so no private_key_jwt assertion verifies (the STS
/// reads the method from the snapshot, which says private_key_jwt for older readers).
#[test]
fn a_workload_client_carries_no_keys_of_its_own() {
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        vec![client(
            "team-a",
            "worker",
            "2026-01-02T00:00:00Z",
            json!({
                "tokenEndpointAuthMethod": "kubernetes_service_account",
                "workloadIdentity": {"serviceAccounts": ["worker"]},
                "jwks": jwks,
            }),
        )],
        vec![],
    ));
    let compiled = compiled_client(&out, "team-a.worker");
    assert!(compiled.jwks.is_none() && compiled.jwks_uri.is_none());
}

/// A tenant can accept the tokens of another cluster only where the platform listed that
/// cluster on the TokenService and selected the tenant's namespace for it: naming an unlisted
/// cluster, or a listed one from an unselected namespace, keeps the client out of the snapshot.
#[test]
fn a_client_accepts_another_clusters_tokens_only_where_the_platform_trusts_it_for_its_namespace() {
    let workload = |ns: &str, name: &str, cluster: &str| {
        client(
            ns,
            name,
            "2026-01-02T00:00:00Z",
            json!({
                "tokenEndpointAuthMethod": "kubernetes_service_account",
                "workloadIdentity": {"serviceAccounts": ["worker"], "cluster": cluster},
            }),
        )
    };
    let mut spec = json!({
        "trustedClusters": [{
            "name": "east",
            "issuer": "https://east.clusters.example",
            "jwksUri": "https://east-api.example/openid/v1/jwks",
            "maxTokenLifetime": "10m",
            "clientNamespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}},
        }],
    });
    merge(&mut spec, tenants_selector());
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", spec)],
        vec![
            workload("team-a", "reporter", "east"),
            workload("team-a", "stranger", "west"),
            workload("team-b", "reporter", "east"),
        ],
        vec![],
    ));
    let compiled = compiled_client(&out, "team-a.reporter");
    assert_eq!(compiled.workload_cluster.as_deref(), Some("east"));
    assert_eq!(
        compiled.service_accounts,
        ["system:serviceaccount:team-a:worker"]
    );
    let snapshot = out.snapshots.values().next().unwrap();
    assert_eq!(
        snapshot.trusted_clusters,
        [snapshot::TrustedCluster {
            name: "east".into(),
            issuer: "https://east.clusters.example".into(),
            jwks_uri: Some("https://east-api.example/openid/v1/jwks".into()),
            ca_bundle: None,
            max_token_lifetime_secs: 600,
            allow_private_network: false,
        }]
    );
    for (ns, name) in [("team-a", "stranger"), ("team-b", "reporter")] {
        assert_eq!(
            reasons(&out, Kind::OidcClient, ns, name),
            ["ClusterNotTrusted"],
            "{ns}/{name}"
        );
    }
    assert_eq!(client_ids(&out), ["team-a.reporter"]);
}

/// An API's owner names who may act for people towards it; a name outside the namespaces its
/// `allowedClientNamespaces` admits is ignored with a condition (delegation widens no namespace
/// rule), and one that does not exist is left out. The exchanging client's grant travels as its
/// own field, so that its `grantTypes` hold only values an older STS knows.
#[test]
fn delegation_names_clients_the_owner_admits_and_the_grant_is_invisible_to_older_readers() {
    let exchange = json!({"grantTypes": ["urn:ietf:params:oauth:grant-type:token-exchange", "client_credentials"], "allowedScopes": ["pay.charge"]});
    let clients = vec![
        client(
            "team-a",
            "orders-api",
            "2026-01-02T00:00:00Z",
            exchange.clone(),
        ),
        client(
            "team-b",
            "refunds",
            "2026-01-02T00:00:00Z",
            exchange.clone(),
        ),
        client("idp-system", "web", "2026-01-02T00:00:00Z", exchange),
        client(
            "team-a",
            "browser",
            "2026-01-02T00:00:00Z",
            json!({"type": "public", "grantTypes": ["urn:ietf:params:oauth:grant-type:token-exchange"], "tokenEndpointAuthMethod": "none", "requirePkce": true}),
        ),
    ];
    let refs = json!([
        {"name": "orders-api", "namespace": "team-a"},
        {"name": "ghost", "namespace": "team-a"},
        {"name": "refunds"},
        {"name": "web", "namespace": "idp-system"},
    ]);
    let scopes = vec![scope(
        "team-b",
        "pay",
        "2026-01-02T00:00:00Z",
        json!({
            "name": "pay.charge",
            "audience": "https://pay",
            "allowedClientNamespaces": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}},
            "delegation": {"allowedClients": refs},
        }),
    )];
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", tenants_selector())],
        clients,
        scopes,
    ));
    let snapshot = out.snapshots.values().next().unwrap();
    assert_eq!(
        snapshot.scopes[0].delegation_clients,
        ["team-a.orders-api", "team-b.refunds"]
    );
    let report = out.report(Kind::ApiScope, "team-b", "pay").unwrap();
    assert!(report.included());
    assert_eq!(
        reasons(&out, Kind::ApiScope, "team-b", "pay"),
        ["DelegationNamespaceNotAllowed"]
    );
    assert!(report.problems[0].message.contains("idp-system/web"));

    let orders = compiled_client(&out, "team-a.orders-api");
    assert!(orders.token_exchange && orders.may_use(GrantType::TokenExchange));
    assert_eq!(orders.grant_types, [GrantType::ClientCredentials]);
    let json = serde_json::to_value(orders).unwrap();
    assert_eq!(json["grantTypes"], json!(["client_credentials"]));
    let browser = compiled_client(&out, "team-a.browser");
    assert!(
        !browser.may_use(GrantType::TokenExchange),
        "a public client never exchanges"
    );
    // What a schema 1.4 reader declares for clients (a frozen copy of that release's enum):
    // it reads every client of this snapshot, where a 1.4 `grantTypes` with the new value
    // would have failed the whole snapshot.
    #[derive(serde::Deserialize)]
    enum GrantType14 {
        #[serde(rename = "authorization_code")]
        AuthorizationCode,
        #[serde(rename = "client_credentials")]
        ClientCredentials,
        #[serde(rename = "refresh_token")]
        RefreshToken,
        #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
        DeviceCode,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Client14 {
        #[allow(dead_code)]
        grant_types: Vec<GrantType14>,
    }
    #[derive(serde::Deserialize)]
    struct Snapshot14 {
        clients: Vec<Client14>,
    }
    let read: Snapshot14 = serde_json::from_slice(&snapshot.to_json()).expect("a 1.4 reader");
    assert_eq!(read.clients.len(), snapshot.clients.len());
    let mut unsafe_for_14 = serde_json::to_value(orders).unwrap();
    unsafe_for_14["grantTypes"] = json!(["urn:ietf:params:oauth:grant-type:token-exchange"]);
    assert!(
        serde_json::from_value::<Client14>(unsafe_for_14).is_err(),
        "the fixture refuses what a 1.4 reader refuses"
    );
}

/// An owner's resource servers and delegation name an OidcClient, not an id: when the named
/// client is left out (here a client id conflict with an older client of a namespace allowed
/// custom ids), the client that holds the id it asked for gets neither introspection nor the
/// right to act for people.
#[test]
fn a_client_squatting_the_id_of_a_named_client_inherits_none_of_its_rights() {
    let mut ts = token_service("idp-system", "signet", tenants_selector());
    ts.spec.custom_client_id_namespaces = Some(
        serde_json::from_value(
            json!({"matchLabels": {"kubernetes.io/metadata.name": "idp-system"}}),
        )
        .unwrap(),
    );
    let exchange = json!({"grantTypes": ["urn:ietf:params:oauth:grant-type:token-exchange"]});
    let mut squatter = exchange.clone();
    squatter["clientId"] = json!("team-a.orders-api");
    let clients = vec![
        client("idp-system", "squatter", "2026-01-01T00:00:00Z", squatter),
        client("team-a", "orders-api", "2026-01-02T00:00:00Z", exchange),
    ];
    let named = json!([{"name": "orders-api", "namespace": "team-a"}]);
    let scopes = vec![scope(
        "team-b",
        "pay",
        "2026-01-02T00:00:00Z",
        json!({
            "name": "pay.charge",
            "audience": "https://pay",
            "allowedClientNamespaces": {"matchLabels": {"tenant": "yes"}},
            "resourceServers": named,
            "delegation": {"allowedClients": named},
        }),
    )];
    let out = compile(&inputs(vec![ts], clients, scopes));
    assert_eq!(
        reasons(&out, Kind::OidcClient, "team-a", "orders-api"),
        ["ClientIdConflict"]
    );
    assert_eq!(
        client_ids(&out),
        ["team-a.orders-api"],
        "held by the squatter"
    );
    let scope = &out.snapshots.values().next().unwrap().scopes[0];
    assert!(
        scope.resource_servers.is_empty(),
        "{:?}",
        scope.resource_servers
    );
    assert!(
        scope.delegation_clients.is_empty(),
        "{:?}",
        scope.delegation_clients
    );
}

/// A tenant cannot make its client's tokens look delegated, or tie them to another token's
/// revocation: `act`, `may_act` and `signet_origins` are the issuer's, in any letter case.
#[test]
fn static_claims_cannot_pose_as_a_delegation() {
    let claims = json!({"claims": {"team": "a", "act": "{\"sub\":\"payments\"}", "May_Act": "x", "signet_origins": "jti"}});
    let out = compile(&inputs(
        vec![token_service("idp-system", "signet", json!({}))],
        vec![client("idp-system", "app", "2026-01-02T00:00:00Z", claims)],
        vec![],
    ));
    let kept = &compiled_client(&out, "idp-system.app").claims;
    assert_eq!(kept.keys().collect::<Vec<_>>(), vec!["team"]);
    assert_eq!(
        reasons(&out, Kind::OidcClient, "idp-system", "app"),
        vec!["ReservedClaim"]
    );
}

#[test]
fn a_sentinel_store_carries_its_topology_both_passwords_the_wait_setting_and_its_ca() {
    let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let redis = json!({"store": {"type": "redis", "redis": {
        "urlSecretRef": {"name": "redis", "key": "url"},
        "caBundle": ca,
        "sentinel": {"masterName": "mymaster", "addresses": ["s-0:26379", "s-1:26379"],
            "username": "watcher", "passwordSecretRef": {"name": "sentinels", "key": "password"}},
        "waitForReplicas": {"replicas": 2, "timeout": "1500us"},
    }}});
    let ts = token_service("idp-system", "signet", redis);
    let mut input = inputs(vec![ts.clone()], vec![], vec![]);
    let referenced = input.referenced_secrets();
    assert!(referenced.contains(&ObjectKey::new("idp-system", "redis")));
    assert!(referenced.contains(&ObjectKey::new("idp-system", "sentinels")));

    // Without the sentinels' Secret the store is compiled without the password, and says so.
    let url = |s: &str| SecretData {
        data: BTreeMap::from([("url".to_owned(), s.as_bytes().to_vec())]),
        ..Default::default()
    };
    input.secrets.insert(
        ObjectKey::new("idp-system", "redis"),
        url("redis://:data-pass@x"),
    );
    let out = compile(&input);
    assert!(
        reasons(&out, Kind::TokenService, "idp-system", "signet").contains(&"StoreSecretNotFound")
    );

    let password = SecretData {
        data: BTreeMap::from([("password".to_owned(), b"sentinel-pass".to_vec())]),
        ..Default::default()
    };
    input
        .secrets
        .insert(ObjectKey::new("idp-system", "sentinels"), password);
    let out = compile(&input);
    assert!(
        !reasons(&out, Kind::TokenService, "idp-system", "signet").contains(&"StoreSecretNotFound")
    );
    let store = &out.snapshots[&ObjectKey::new("idp-system", "signet")].store;
    assert_eq!(store.redis_url.as_ref().unwrap().0, "redis://:data-pass@x");
    assert_eq!(
        store.topology,
        Some(snapshot::RedisTopology::Sentinel {
            master_name: "mymaster".into(),
            addresses: vec!["s-0:26379".into(), "s-1:26379".into()],
            username: Some("watcher".into()),
            password: Some(snapshot::Redacted("sentinel-pass".into())),
            tls: false,
        })
    );
    // 1.5 ms is 1 ms whole; a sub-millisecond timeout would still be 1, never WAIT's 0.
    assert_eq!(
        store.wait_for_replicas,
        Some(snapshot::WaitForReplicas {
            replicas: 2,
            timeout_ms: 1
        })
    );
    assert_eq!(store.ca_bundle.as_deref(), Some(ca));
    // No password in the snapshot's Debug form (it reaches logs).
    assert!(!format!("{store:?}").contains("sentinel-pass"));
}
