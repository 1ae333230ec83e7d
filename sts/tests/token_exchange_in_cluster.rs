//! Token exchange (RFC 8693) on the real control plane, with the operator and the STS as
//! processes (`common::cluster`):
//!
//! - tenancy: the orders team's API cannot exchange a person's token into the payments team's
//!   API until the payments team's ApiScope allows it (`delegation.allowedClients`); applying
//!   that opt-in makes the very same request succeed;
//! - a workload's own identity: a pod's ServiceAccount token (minted by kube-apiserver,
//!   reviewed by it) becomes a Signet token whose `sub` is that ServiceAccount; another
//!   ServiceAccount's token is refused.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use common::cluster::{create_service_account, create_token, credentials, deploy_in, deploy_with};
use common::code_params;
use signet_tests::browserless::{Person, VERIFIER, param};
use signet_tests::{TestNamespace, http, label, shared, signet_api, signet_object, wait_for};

const TIMEOUT: Duration = Duration::from_secs(90);
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CALLBACK: &str = "https://shop.example.test/callback";
const PAYMENTS: &str = "https://payments.example.test";
const ALICE: (&str, &str) = ("alice", "correct horse battery staple");

/// The payload of a JWT, unverified (the tests read what the STS issued).
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

async fn create(
    client: &kube::Client,
    ns: &str,
    kind: &str,
    name: &str,
    spec: Value,
) -> anyhow::Result<()> {
    signet_api(client, ns, kind)
        .create(&PostParams::default(), &signet_object(kind, name, spec))
        .await?;
    Ok(())
}

/// orders-api (client_secret_post) exchanges `person` for a payments token.
async fn exchange(
    addr: &str,
    orders_api: &(String, String),
    person: &str,
) -> anyhow::Result<http::Response> {
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("client_id", orders_api.0.as_str()),
        ("client_secret", orders_api.1.as_str()),
        ("subject_token", person),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", PAYMENTS),
    ];
    http::post_form(addr, "/token", &form, &[]).await
}

/// Alice signs in to `shop` (client_secret_basic) for `scope`: the access token.
async fn person_token(addr: &str, shop: &(String, String), scope: &str) -> anyhow::Result<String> {
    let mut alice = Person::default();
    let location = alice
        .sign_in(
            addr,
            &code_params(&shop.0, CALLBACK, scope),
            ALICE.0,
            ALICE.1,
        )
        .await?;
    let code = param(&location, "code").ok_or_else(|| anyhow::anyhow!("no code: {location}"))?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", shop.0, shop.1));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ];
    let auth = format!("Basic {basic}");
    let response = http::post_form(addr, "/token", &form, &[("Authorization", &auth)]).await?;
    anyhow::ensure!(response.status == 200, "{}", response.body);
    Ok(response.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test]
async fn a_team_exchanges_into_another_teams_api_only_once_that_team_allows_it()
-> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let platform = TestNamespace::create(&client, "delegation-platform")
        .await?
        .name;
    let orders = TestNamespace::create(&client, "delegation-orders")
        .await?
        .name;
    let payments = TestNamespace::create(&client, "delegation-payments")
        .await?
        .name;
    for team in [&orders, &payments] {
        label(
            &client,
            team,
            BTreeMap::from([("signet.dev/tenant", "true")]),
        )
        .await?;
    }
    let names_in = |names: &[&str]| json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": names}]});
    // The orders team: its API (people's tokens are addressed to orders-api) and orders-api.
    create(
        &client,
        &orders,
        "ApiScope",
        "orders-place",
        json!({
            "name": "orders.place",
            "audience": "https://orders.example.test",
            "resourceServers": [{"name": "orders-api"}],
            "allowedClientNamespaces": names_in(&[&platform]),
        }),
    )
    .await?;
    create(
        &client,
        &orders,
        "OidcClient",
        "orders-api",
        json!({
            "grantTypes": [TOKEN_EXCHANGE],
            "tokenEndpointAuthMethod": "client_secret_post",
        }),
    )
    .await?;
    // The payments team shares its scope with the shop and the orders team, but delegates nothing.
    create(
        &client,
        &payments,
        "ApiScope",
        "payments-charge",
        json!({
            "name": "payments.charge",
            "audience": PAYMENTS,
            "allowedClientNamespaces": names_in(&[&platform, &orders]),
        }),
    )
    .await?;
    // The platform's shop signs people in for both.
    create(
        &client,
        &platform,
        "OidcClient",
        "shop",
        json!({
            "grantTypes": ["authorization_code"],
            "redirectUris": [CALLBACK],
            "allowedScopes": ["openid", "orders.place", "payments.charge"],
            "trusted": true,
        }),
    )
    .await?;
    let deployed = deploy_with(
        cluster.kubectl(),
        &cluster.kubeconfig,
        &client,
        &platform,
        "delegation-tenancy",
        &[],
        &[&orders, &payments],
    )
    .await?;
    let addr = deployed.addr.clone();
    let shop = credentials(
        &Api::<Secret>::namespaced(client.clone(), &platform),
        "shop-oidc",
        TIMEOUT,
    )
    .await?;
    let orders_api = credentials(
        &Api::<Secret>::namespaced(client.clone(), &orders),
        "orders-api-oidc",
        TIMEOUT,
    )
    .await?;
    // Once the shop is served, alice's token is addressed to the orders API and to payments.
    let person = wait_for("alice's token from the shop", TIMEOUT, || async {
        Ok(
            person_token(&addr, &shop, "openid orders.place payments.charge")
                .await
                .ok(),
        )
    })
    .await?;
    let refused = wait_for("orders-api in the snapshot", TIMEOUT, || async {
        let r = exchange(&addr, &orders_api, &person).await?;
        Ok(
            (r.json()["error"] != "unauthorized_client" && r.json()["error"] != "invalid_client")
                .then_some(r),
        )
    })
    .await?;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(
        refused.json()["error"],
        "invalid_target",
        "{}",
        refused.body
    );

    // The orders team cannot grant itself the payments API: the ApiScope is not its to change.
    let as_orders = signet_tests::namespaced_service_account_kubeconfig(
        &client,
        &cluster.kubeconfig,
        &orders,
        "orders-admin",
        json!([{"apiGroups": ["signet.dev"], "resources": ["apiscopes", "oidcclients"], "verbs": ["*"]}]),
    )
    .await?;
    let tenant = signet_tests::client_for(&as_orders).await?;
    let opt_in = json!({"spec": {"delegation": {"allowedClients": [{"name": "orders-api", "namespace": orders}]}}});
    let denied = signet_api(&tenant, &payments, "ApiScope")
        .patch(
            "payments-charge",
            &PatchParams::default(),
            &Patch::Merge(&opt_in),
        )
        .await;
    assert!(
        matches!(&denied, Err(kube::Error::Api(e)) if e.code == 403),
        "a tenant's identity may not change another team's ApiScope: {denied:?}"
    );

    // The payments team opts in; the same request now succeeds.
    signet_api(&client, &payments, "ApiScope")
        .patch(
            "payments-charge",
            &PatchParams::default(),
            &Patch::Merge(&opt_in),
        )
        .await?;
    let granted = wait_for("the exchange allowed", TIMEOUT, || async {
        let r = exchange(&addr, &orders_api, &person).await?;
        Ok((r.status == 200).then_some(r))
    })
    .await?;
    let token = payload(granted.json()["access_token"].as_str().unwrap_or_default());
    assert_eq!(token["aud"], PAYMENTS);
    assert_eq!(token["sub"], payload(&person)["sub"]);
    assert_eq!(token["act"], json!({"sub": orders_api.0}));
    assert_eq!(granted.json()["issued_token_type"], ACCESS_TOKEN);
    Ok(())
}

#[tokio::test]
async fn a_workload_exchanges_its_service_account_token_for_a_token_of_its_own_identity()
-> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "exchange-workload")
        .await?
        .name;
    let (deployed, issuer) = deploy_in(&cluster, &client, &ns, "exchange-workload").await?;
    let addr = deployed.addr.clone();
    for name in ["reporter", "other"] {
        create_service_account(&client, &ns, name).await?;
    }
    create(
        &client,
        &ns,
        "OidcClient",
        "reporter",
        json!({
            "grantTypes": ["client_credentials", TOKEN_EXCHANGE],
            "allowedScopes": ["orders.read"],
            "tokenEndpointAuthMethod": "kubernetes_service_account",
            "workloadIdentity": {"serviceAccounts": ["reporter"]},
        }),
    )
    .await?;
    let own = create_token(
        cluster.kubectl(),
        &["-n", &ns, "reporter", "--audience", &issuer],
    )?;
    let other = create_token(
        cluster.kubectl(),
        &["-n", &ns, "other", "--audience", &issuer],
    )?;
    let client_id = format!("{ns}.reporter");
    let exchange = |subject: String| {
        let (addr, client_id, own) = (addr.clone(), client_id.clone(), own.clone());
        async move {
            let form = [
                ("grant_type", TOKEN_EXCHANGE),
                ("client_id", client_id.as_str()),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", own.as_str()),
                ("subject_token", subject.as_str()),
                ("subject_token_type", JWT),
                ("audience", "https://orders.example.com"),
            ];
            http::post_form(&addr, "/token", &form, &[]).await
        }
    };
    let issued = wait_for("the workload client served", TIMEOUT, || async {
        let r = exchange(own.clone()).await?;
        Ok((r.status == 200).then_some(r))
    })
    .await?;
    let token = payload(issued.json()["access_token"].as_str().unwrap_or_default());
    assert_eq!(token["sub"], format!("system:serviceaccount:{ns}:reporter"));
    assert_eq!(token["aud"], "https://orders.example.com");
    assert_eq!(token["client_id"], client_id);
    assert_eq!(token["scope"], "orders.read");
    assert!(
        token["act"].is_null(),
        "its own identity: nobody acts for anyone"
    );
    assert!(
        token["exp"].as_i64().unwrap() <= payload(&own)["exp"].as_i64().unwrap(),
        "no longer than the subject token"
    );

    // Another ServiceAccount of the namespace, which the client does not name, is no subject.
    let refused = exchange(other).await?;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.json()["error"], "invalid_request");
    Ok(())
}
