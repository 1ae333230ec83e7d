//! The device flow over raw HTTP (RFC 8628): the codes, polling answers, approval and denial
//! on the verification page, single redemption, expiry, and slowed user-code guessing.

mod common;

use std::time::{Duration, Instant};

use signet_tests::browserless::Person;
use signet_tests::http;

use common::{memory_manifests, replica, test_dir};

const ALICE: (&str, &str) = ("alice", "correct horse battery staple");
const CLI: &str = "default.cli";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A device client whose codes expire after one second.
const SHORT: &str = r#"apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: tv}
spec:
  type: public
  grantTypes: ["urn:ietf:params:oauth:grant-type:device_code"]
  allowedScopes: [openid]
  lifetimes: {deviceCode: 1s}
"#;

async fn start(test: &str) -> anyhow::Result<(signet_tests::Process, String)> {
    let dir = test_dir(test);
    memory_manifests(&dir.join("manifests"), SHORT);
    replica(&dir.join("manifests"), &dir.join("state"), test).await
}

async fn authorize(addr: &str, client: &str, scope: &str) -> anyhow::Result<serde_json::Value> {
    let response = http::post_form(
        addr,
        "/device_authorization",
        &[("client_id", client), ("scope", scope)],
        &[],
    )
    .await?;
    anyhow::ensure!(response.status == 200, "{}", response.body);
    Ok(response.json())
}

async fn poll(addr: &str, client: &str, device_code: &str) -> anyhow::Result<http::Response> {
    http::post_form(
        addr,
        "/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client),
        ],
        &[],
    )
    .await
}

fn error(response: &http::Response) -> String {
    response.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_device_is_approved_in_the_browser_and_redeems_once() -> anyhow::Result<()> {
    let (_sts, addr) = start("device-approve").await?;
    let codes = authorize(&addr, CLI, "openid offline_access").await?;
    let user_code = codes["user_code"].as_str().unwrap();
    assert!(
        user_code.len() == 9 && user_code.chars().nth(4) == Some('-'),
        "{user_code}"
    );
    let discovery = http::get(&addr, "/.well-known/openid-configuration")
        .await?
        .json();
    let issuer = discovery["issuer"].as_str().unwrap();
    assert_eq!(
        discovery["device_authorization_endpoint"],
        format!("{issuer}/device_authorization")
    );
    assert_eq!(codes["verification_uri"], format!("{issuer}/device"));
    assert_eq!(
        codes["verification_uri_complete"],
        format!("{issuer}/device?user_code={user_code}")
    );
    assert_eq!(
        (
            codes["interval"].as_i64(),
            codes["expires_in"].as_i64().is_some()
        ),
        (Some(5), true)
    );
    let device_code = codes["device_code"].as_str().unwrap();

    // Polling before the person answers: pending, and slow_down when too eager.
    let waiting = authorize(&addr, CLI, "openid").await?;
    let waiting = waiting["device_code"].as_str().unwrap();
    let first = poll(&addr, CLI, waiting).await?;
    assert_eq!(error(&first), "authorization_pending", "{}", first.body);
    let eager = poll(&addr, CLI, waiting).await?;
    assert_eq!(error(&eager), "slow_down", "polled within the interval");

    // The person types the code in lower case without the dash: still found.
    let mut alice = Person::default();
    let typed = user_code.replace('-', "").to_lowercase();
    let done = alice
        .approve_device(&addr, &typed, ALICE.0, ALICE.1, "allow")
        .await?;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Device connected"));

    let tokens = poll(&addr, CLI, device_code).await?;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let tokens = tokens.json();
    assert!(tokens["access_token"].is_string() && tokens["id_token"].is_string());
    assert!(
        tokens["refresh_token"].is_string(),
        "offline_access for a refresh client"
    );
    let again = poll(&addr, CLI, device_code).await?;
    assert_eq!(
        error(&again),
        "invalid_grant",
        "redeemed once: {}",
        again.body
    );

    // The user code is spent: entering it again finds nothing.
    let reused = alice
        .get(&addr, &format!("/device?user_code={user_code}"))
        .await?;
    assert_eq!(reused.status, 400, "{}", reused.body);
    Ok(())
}

#[tokio::test]
async fn denial_and_expiry_are_answered_as_rfc_8628_says() -> anyhow::Result<()> {
    let (_sts, addr) = start("device-deny").await?;
    let codes = authorize(&addr, CLI, "openid offline_access").await?;
    let mut alice = Person::default();
    let page = alice
        .approve_device(
            &addr,
            codes["user_code"].as_str().unwrap(),
            ALICE.0,
            ALICE.1,
            "deny",
        )
        .await?;
    assert!(page.body.contains("Request denied"), "{}", page.body);
    let denied = poll(&addr, CLI, codes["device_code"].as_str().unwrap()).await?;
    assert_eq!(error(&denied), "access_denied", "{}", denied.body);

    let short = authorize(&addr, "default.tv", "openid").await?;
    // The tv's codes live one second; waiting past that is the scenario.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = poll(&addr, "default.tv", short["device_code"].as_str().unwrap()).await?;
    assert_eq!(error(&expired), "expired_token", "{}", expired.body);
    let wrong_client = poll(&addr, CLI, short["device_code"].as_str().unwrap()).await?;
    assert_eq!(error(&wrong_client), "invalid_grant");
    Ok(())
}

#[tokio::test]
async fn guessing_user_codes_is_slowed_down() -> anyhow::Result<()> {
    let (_sts, addr) = start("device-guess").await?;
    let codes = authorize(&addr, CLI, "openid offline_access").await?;
    let guesser = Person::default();
    for guess in ["BCDF-GHJK", "LMNP-QRST", "VWXZ-BCDF"] {
        let r = guesser
            .get(&addr, &format!("/device?user_code={guess}"))
            .await?;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains("not right"));
    }
    // After three misses, every lookup from this address waits first, even the right code:
    // a lower bound the server enforces, not a measurement of speed.
    let started = Instant::now();
    let right = guesser
        .get(
            &addr,
            &format!("/device?user_code={}", codes["user_code"].as_str().unwrap()),
        )
        .await?;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        right.status, 303,
        "the right code still works, after the delay"
    );
    Ok(())
}
