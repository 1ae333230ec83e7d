//! A thief holding a stolen code (issue 19, item 6). A code presented by the wrong client, or
//! with the wrong verifier, is spent and recorded: the real client's redemption then gets
//! `invalid_grant` saying the code was used, and the log says why it was spent. Raw HTTP
//! against one standalone STS. The replay that lands while the first redemption is still
//! issuing is tested deterministically in `authorization_code::grant`'s unit tests.

mod common;

use signet_tests::browserless::{Person, VERIFIER, param};
use signet_tests::http;

use common::{Standalone, code_params};

const ALICE: (&str, &str) = ("alice", "correct horse battery staple");
const WEB: &str = "default.web-app";
const CALLBACK: &str = "https://app.example.com/callback";

/// A second confidential client, the thief's.
const THIEF: &str = r#"
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: thief}
spec:
  grantTypes: [authorization_code]
  redirectUris: ["https://thief.example.com/callback"]
  allowedScopes: [openid]
  tokenEndpointAuthMethod: client_secret_post
"#;

async fn code(sts: &Standalone, alice: &mut Person) -> anyhow::Result<String> {
    let location = alice
        .sign_in(
            &sts.addr,
            &code_params(WEB, CALLBACK, "openid"),
            ALICE.0,
            ALICE.1,
        )
        .await?;
    param(&location, "code").ok_or_else(|| anyhow::anyhow!("no code in {location}"))
}

async fn redeem(sts: &Standalone, code: &str, verifier: &str) -> anyhow::Result<http::Response> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier),
    ];
    let auth = sts.basic(WEB);
    http::post_form(&sts.addr, "/token", &form, &[("Authorization", &auth)]).await
}

fn assert_used(response: &http::Response, what: &str) {
    assert_eq!(response.status, 400, "{what}: {}", response.body);
    assert_eq!(response.json()["error"], "invalid_grant", "{what}");
    let description = response.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        description.contains("already used"),
        "{what}: the code is recorded as used, not unknown: {description}"
    );
}

#[tokio::test]
async fn a_code_presented_wrongly_is_spent_and_recorded() -> anyhow::Result<()> {
    let sts = Standalone::start("code-spent", THIEF).await?;
    let mut alice = Person::default();

    // The wrong verifier (a thief without the PKCE secret) spends the code.
    let stolen = code(&sts, &mut alice).await?;
    let wrong = redeem(&sts, &stolen, &"x".repeat(43)).await?;
    assert_eq!(wrong.json()["error"], "invalid_grant", "{}", wrong.body);
    assert_used(
        &redeem(&sts, &stolen, VERIFIER).await?,
        "after a wrong verifier",
    );

    // So does another client presenting it.
    let stolen = code(&sts, &mut alice).await?;
    let thief_secret = sts.secret("default.thief");
    let by_thief = http::post_form(
        &sts.addr,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &stolen),
            ("redirect_uri", "https://thief.example.com/callback"),
            ("code_verifier", VERIFIER),
            ("client_id", "default.thief"),
            ("client_secret", &thief_secret),
        ],
        &[],
    )
    .await?;
    assert_eq!(
        by_thief.json()["error"],
        "invalid_grant",
        "{}",
        by_thief.body
    );
    assert_used(
        &redeem(&sts, &stolen, VERIFIER).await?,
        "after another client",
    );

    // The log says why each was spent.
    let log = sts.process.output();
    assert!(
        log.matches("authorization code spent").count() >= 2,
        "a log line for each spent code:\n{log}"
    );

    // A good redemption still works once, and its replay is recorded too.
    let good = code(&sts, &mut alice).await?;
    assert_eq!(redeem(&sts, &good, VERIFIER).await?.status, 200);
    assert_used(&redeem(&sts, &good, VERIFIER).await?, "a replay");
    Ok(())
}
