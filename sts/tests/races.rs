//! Single-use items redeemed concurrently through two STS processes sharing one redis: exactly
//! one redemption wins every round. Each kind of single-use item joins this file with its flow.

mod common;

use serde_json::json;
use signet_crds::keygen;
use signet_crds::v1alpha1::Algorithm;
use signet_sts::jose::Signer;
use signet_tests::browserless::{CHALLENGE, Person, VERIFIER, param};
use signet_tests::race::exactly_one_wins;
use signet_tests::redis_topologies::{Cluster, Sentinels};
use signet_tests::{RedisServer, http};

use common::{SharedStore, memory_manifests, replica, store_manifests, test_dir};

const ROUNDS: usize = 200;

#[tokio::test]
async fn a_client_assertion_jti_is_spent_once_across_two_replicas() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    assertion_race(Some(&SharedStore::server(&redis.url())), "race-jti").await
}

/// Every race of this file on one Sentinel set (one primary, two replicas, three sentinels),
/// writes waiting for both replicas: the rules hold at the primary the sentinels name.
#[tokio::test]
async fn every_single_use_rule_holds_across_two_replicas_on_sentinel() -> anyhow::Result<()> {
    let set = Sentinels::start().await?;
    every_race(
        &SharedStore::sentinel(&set).waiting_for(2, "300ms"),
        "sentinel",
    )
    .await
}

/// Every race of this file on a Redis Cluster (three primaries with a replica each): each
/// item's key lives in one slot, so its atomic command runs at that slot's primary.
#[tokio::test]
async fn every_single_use_rule_holds_across_two_replicas_on_cluster() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    every_race(&SharedStore::cluster(&cluster), "cluster").await
}

async fn every_race(store: &SharedStore, topology: &str) -> anyhow::Result<()> {
    assertion_race(Some(store), &format!("race-jti-{topology}")).await?;
    code_and_refresh_race(store, &format!("race-signin-{topology}")).await?;
    device_race(store, &format!("race-device-{topology}")).await
}

/// Negative control: replicas with the per-process memory store both accept the same
/// assertion, and the harness notices. (This is why the chart refuses two memory replicas.)
#[tokio::test]
async fn the_race_bites_when_replicas_do_not_share_a_store() -> anyhow::Result<()> {
    let error = assertion_race(None, "race-jti-memory")
        .await
        .expect_err("two memory-store replicas cannot agree on a jti");
    assert!(error.to_string().contains("2 of 2"), "{error}");
    Ok(())
}

/// Two replicas (on `store`, else each with its memory store) are sent the same client
/// assertion at once, `ROUNDS` times.
async fn assertion_race(store: Option<&SharedStore>, test: &str) -> anyhow::Result<()> {
    let dir = test_dir(test);
    let key = keygen::generate(Algorithm::ES256, None)?;
    let signer = format!(
        "---\napiVersion: signet.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: signer}}\nspec:\n  grantTypes: [client_credentials]\n  allowedScopes: [orders.read]\n  tokenEndpointAuthMethod: private_key_jwt\n  jwks: {{keys: [{}]}}\n",
        key.public_jwk
    );
    match store {
        Some(store) => store_manifests(&dir.join("manifests"), store, &signer),
        None => memory_manifests(&dir.join("manifests"), &signer),
    }
    let state = dir.join("state");
    let (_a, addr_a) = replica(&dir.join("manifests"), &state, "sts-race-a").await?;
    let (_b, addr_b) = replica(&dir.join("manifests"), &state, "sts-race-b").await?;
    let addrs = [addr_a, addr_b];

    let client_key = Signer::from_pem(&key.kid, Algorithm::ES256, &key.private_pem)?;
    let issuer = issuer_of(&addrs[0]).await?;
    // One assertion per round, sent to both replicas at once.
    let assertions: Vec<String> = (0..ROUNDS)
        .map(|_| {
            let now = k8s_openapi::jiff::Timestamp::now().as_second();
            let claims = json!({
                "iss": "default.signer", "sub": "default.signer", "aud": issuer,
                "iat": now, "exp": now + 300, "jti": keygen::client_secret(),
            });
            client_key.sign("JWT", &claims)
        })
        .collect();

    exactly_one_wins(ROUNDS, |round, side| {
        let addr = addrs[side].clone();
        let assertion = assertions[round].clone();
        async move {
            let form = [
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ];
            let response = http::post_form(&addr, "/token", &form, &[]).await?;
            match response.status {
                200 => Ok(true),
                401 => Ok(false),
                other => anyhow::bail!("unexpected {other}: {}", response.body),
            }
        }
    })
    .await
}

/// The issuer both replicas announce (they serve the same manifests).
async fn issuer_of(addr: &str) -> anyhow::Result<String> {
    let discovery = http::get(addr, "/.well-known/openid-configuration").await?;
    Ok(discovery.json()["issuer"].as_str().unwrap().to_owned())
}

const WEB: &str = "default.web-app";
const CALLBACK: &str = "https://app.example.com/callback";

fn web_params(scope: &'static str) -> [(&'static str, &'static str); 6] {
    [
        ("client_id", WEB),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", scope),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

fn basic(state: &std::path::Path) -> String {
    http::basic_auth(WEB, &common::client_secret(state, WEB))
}

/// `count` codes for alice, alternating between the replicas, without further logins.
async fn codes(
    alice: &Person,
    addrs: &[String; 2],
    scope: &'static str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut codes = Vec::with_capacity(count);
    for i in 0..count {
        let response = alice.authorize(&addrs[i % 2], &web_params(scope)).await?;
        let location = response.header("location").unwrap_or_default();
        codes.push(param(location, "code").ok_or_else(|| anyhow::anyhow!("no code: {location}"))?);
    }
    Ok(codes)
}

async fn redeem(addr: &str, auth: &str, code: &str) -> anyhow::Result<http::Response> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ];
    http::post_form(addr, "/token", &form, &[("Authorization", auth)]).await
}

/// 200 outcome: true; invalid_grant: false; anything else fails the test.
fn won(response: &http::Response) -> anyhow::Result<bool> {
    match (response.status, response.json()["error"].as_str()) {
        (200, _) => Ok(true),
        (400, Some("invalid_grant")) => Ok(false),
        _ => anyhow::bail!("unexpected {}: {}", response.status, response.body),
    }
}

#[tokio::test]
async fn codes_and_refresh_tokens_redeem_once_and_sessions_span_replicas() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    code_and_refresh_race(&SharedStore::server(&redis.url()), "race-signin").await
}

async fn code_and_refresh_race(store: &SharedStore, test: &str) -> anyhow::Result<()> {
    let dir = test_dir(test);
    store_manifests(&dir.join("manifests"), store, "");
    let state = dir.join("state");
    let (_a, addr_a) = replica(&dir.join("manifests"), &state, "sts-signin-a").await?;
    let (_b, addr_b) = replica(&dir.join("manifests"), &state, "sts-signin-b").await?;
    let addrs = [addr_a, addr_b];
    let auth = basic(&state);

    // A session made at A (with consent to offline_access) is honoured at B: no login page.
    let mut alice = Person::default();
    let first = alice
        .sign_in(
            &addrs[0],
            &web_params("openid offline_access"),
            "alice",
            "correct horse battery staple",
        )
        .await?;
    assert!(first.starts_with(CALLBACK), "{first}");
    let at_b = alice
        .authorize(&addrs[1], &web_params("openid offline_access"))
        .await?;
    let location = at_b.header("location").unwrap_or_default();
    assert!(
        location.starts_with(CALLBACK) && location.contains("code="),
        "B honours A's session and consent: {location}"
    );

    // The same code from both replicas at once.
    let race_codes = codes(&alice, &addrs, "openid", ROUNDS).await?;
    exactly_one_wins(ROUNDS, |round, side| {
        let (addr, auth, code) = (addrs[side].clone(), auth.clone(), race_codes[round].clone());
        async move { won(&redeem(&addr, &auth, &code).await?) }
    })
    .await?;

    // The same refresh token from both replicas at once.
    let mut refresh_tokens = Vec::with_capacity(ROUNDS);
    for (i, code) in codes(&alice, &addrs, "openid offline_access", ROUNDS)
        .await?
        .iter()
        .enumerate()
    {
        let tokens = redeem(&addrs[i % 2], &auth, code).await?.json();
        refresh_tokens.push(tokens["refresh_token"].as_str().unwrap().to_owned());
    }
    exactly_one_wins(ROUNDS, |round, side| {
        let (addr, auth, token) = (
            addrs[side].clone(),
            auth.clone(),
            refresh_tokens[round].clone(),
        );
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ];
            won(&http::post_form(&addr, "/token", &form, &[("Authorization", &auth)]).await?)
        }
    })
    .await
}

#[tokio::test]
async fn an_approved_device_code_redeems_once_across_two_replicas() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    device_race(&SharedStore::server(&redis.url()), "race-device").await
}

async fn device_race(store: &SharedStore, test: &str) -> anyhow::Result<()> {
    let dir = test_dir(test);
    store_manifests(&dir.join("manifests"), store, "");
    let state = dir.join("state");
    let (_a, addr_a) = replica(&dir.join("manifests"), &state, "sts-device-a").await?;
    let (_b, addr_b) = replica(&dir.join("manifests"), &state, "sts-device-b").await?;
    let addrs = [addr_a, addr_b];

    // Each round: a device asks at one replica, alice approves at the other.
    let mut alice = Person::default();
    let mut device_codes = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let form = [("client_id", "default.cli"), ("scope", "openid")];
        let codes = http::post_form(&addrs[i % 2], "/device_authorization", &form, &[])
            .await?
            .json();
        let user_code = codes["user_code"].as_str().unwrap();
        let page = alice
            .approve_device(
                &addrs[(i + 1) % 2],
                user_code,
                "alice",
                "correct horse battery staple",
                "allow",
            )
            .await?;
        anyhow::ensure!(page.status == 200, "{}", page.body);
        device_codes.push(codes["device_code"].as_str().unwrap().to_owned());
    }
    exactly_one_wins(ROUNDS, |round, side| {
        let (addr, code) = (addrs[side].clone(), device_codes[round].clone());
        async move {
            let form = [
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", code.as_str()),
                ("client_id", "default.cli"),
            ];
            won(&http::post_form(&addr, "/token", &form, &[]).await?)
        }
    })
    .await
}
