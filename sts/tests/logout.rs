//! RP-initiated logout over raw HTTP: redirects only to registered addresses, never on a bad
//! hint, confirmation without a hint, the session really ends (its cookie is worthless
//! afterwards), and a back-channel receiver that is down gets retries and a failure metric.
//! A live receiver validating the logout token with jose is in tests/node.

mod common;

use std::path::Path;
use std::time::Duration;

use signet_tests::browserless::{CHALLENGE, Person, VERIFIER, hidden, param};
use signet_tests::{Process, free_port, http, wait_for};

use common::{client_secret, copy_examples, test_dir};

const ALICE: (&str, &str) = ("alice", "correct horse battery staple");
const WEB: &str = "default.web-app";
const CALLBACK: &str = "https://app.example.com/callback";
const AFTER: &str = "https://app.example.com/";

/// A client whose back-channel receiver is not listening.
fn extra(dead_port: u16) -> String {
    format!(
        r#"apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {{name: portal}}
spec:
  grantTypes: [authorization_code]
  redirectUris: ["https://portal.example.com/callback"]
  allowedScopes: [openid]
  tokenEndpointAuthMethod: client_secret_post
  backChannelLogoutUri: https://127.0.0.1:{dead_port}/logout
"#
    )
}

struct Sts {
    _process: Process,
    addr: String,
    metrics: String,
    state: std::path::PathBuf,
}

async fn start(test: &str) -> anyhow::Result<Sts> {
    let dir = test_dir(test);
    let manifests = dir.join("manifests");
    copy_examples(&manifests);
    // Back-channel targets on loopback are allowed, as tests need.
    let ts = std::fs::read_to_string(manifests.join("token-service.yaml"))?;
    std::fs::write(
        manifests.join("token-service.yaml"),
        ts.replacen("spec:\n", "spec:\n  allowPrivateNetworkTargets: true\n", 1),
    )?;
    std::fs::write(manifests.join("extra.yaml"), extra(free_port()))?;
    let state = dir.join("state");
    let (port, metrics_port) = (free_port(), free_port());
    let addr = format!("127.0.0.1:{port}");
    let metrics = format!("127.0.0.1:{metrics_port}");
    let args = vec![
        format!("--manifests={}", manifests.display()),
        format!("--state-dir={}", state.display()),
        format!("--listen={addr}"),
        format!("--metrics-addr={metrics}"),
    ];
    let process = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_signet-sts")),
        test,
        &args,
        &[],
    )?;
    signet_tests::wait_ready(&addr).await?;
    Ok(Sts {
        _process: process,
        addr,
        metrics,
        state,
    })
}

impl Sts {
    /// Signs alice in to the web app; returns her ID token.
    async fn id_token(&self, alice: &mut Person) -> anyhow::Result<String> {
        let params = [
            ("client_id", WEB),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        let location = alice.sign_in(&self.addr, &params, ALICE.0, ALICE.1).await?;
        let code = param(&location, "code").unwrap();
        // The web app authenticates with HTTP Basic.
        let basic = http::basic_auth(WEB, &client_secret(&self.state, WEB));
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ];
        let tokens =
            http::post_form(&self.addr, "/token", &form, &[("Authorization", &basic)]).await?;
        anyhow::ensure!(tokens.status == 200, "{}", tokens.body);
        Ok(tokens.json()["id_token"].as_str().unwrap().to_owned())
    }

    /// Whether alice still has a session: prompt=none gives a code, or login_required.
    async fn silent(&self, person: &Person) -> anyhow::Result<String> {
        let params = [
            ("client_id", WEB),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
            ("state", "s"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        let response = person.authorize(&self.addr, &params).await?;
        Ok(response.header("location").unwrap_or_default().to_owned())
    }
}

fn end_session(id_token: &str, redirect: &str) -> String {
    format!(
        "/end_session?{}",
        http::query(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", redirect),
            ("state", "bye")
        ])
    )
}

#[tokio::test]
async fn logout_with_a_hint_redirects_with_state_and_the_session_is_gone() -> anyhow::Result<()> {
    let sts = start("logout-hint").await?;
    let mut alice = Person::default();
    let id_token = sts.id_token(&mut alice).await?;
    assert!(sts.silent(&alice).await?.contains("code="), "signed in");
    let stale = alice.clone();

    let response = alice.get(&sts.addr, &end_session(&id_token, AFTER)).await?;
    assert_eq!(response.status, 303, "{}", response.body);
    assert_eq!(
        response.header("location"),
        Some("https://app.example.com/?state=bye")
    );
    assert!(
        response
            .header("set-cookie")
            .is_some_and(|c| c.starts_with("signet_session=;") && c.contains("Max-Age=0")),
        "{:?}",
        response.headers
    );
    // The cookie as it was before logout: replayed, it is worth nothing.
    let replayed = sts.silent(&stale).await?;
    assert!(
        replayed.contains("error=login_required") && replayed.contains("state=s"),
        "{replayed}"
    );
    Ok(())
}

#[tokio::test]
async fn bad_logout_requests_never_redirect() -> anyhow::Result<()> {
    let sts = start("logout-bad").await?;
    let mut alice = Person::default();
    let id_token = sts.id_token(&mut alice).await?;
    // A hint signed by another key: same claims, foreign signature.
    let foreign = {
        let key = signet_crds::keygen::generate(signet_crds::v1alpha1::Algorithm::RS256, None)?;
        let signer = signet_sts::jose::Signer::from_pem(
            &key.kid,
            signet_crds::v1alpha1::Algorithm::RS256,
            &key.private_pem,
        )?;
        signer.sign("JWT", &http::jwt_claims(&id_token))
    };
    for (what, path) in [
        (
            "unregistered",
            end_session(&id_token, "https://evil.example/"),
        ),
        (
            "extended",
            end_session(&id_token, "https://app.example.com/extra"),
        ),
        (
            "trailing text",
            end_session(&id_token, "https://app.example.com/?next=evil"),
        ),
        ("foreign hint", end_session(&foreign, AFTER)),
        ("garbage hint", end_session("not.a.jwt", AFTER)),
    ] {
        let response = alice.get(&sts.addr, &path).await?;
        assert_eq!(response.status, 400, "{what}: {}", response.body);
        assert_eq!(response.header("location"), None, "{what}");
    }
    assert!(
        sts.silent(&alice).await?.contains("code="),
        "still signed in after refused requests"
    );
    Ok(())
}

#[tokio::test]
async fn without_a_hint_the_person_confirms_and_a_dead_receiver_is_retried_then_counted()
-> anyhow::Result<()> {
    let sts = start("logout-confirm").await?;
    let mut alice = Person::default();
    // A session that also visited the portal, whose back-channel receiver is down.
    sts.id_token(&mut alice).await?;
    let portal = [
        ("client_id", "default.portal"),
        ("redirect_uri", "https://portal.example.com/callback"),
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    assert!(
        alice
            .sign_in(&sts.addr, &portal, ALICE.0, ALICE.1)
            .await?
            .contains("code=")
    );

    let page = alice.get(&sts.addr, "/end_session").await?;
    assert_eq!(page.status, 200, "a confirmation page: {}", page.body);
    assert!(
        sts.silent(&alice).await?.contains("code="),
        "not signed out by a mere link"
    );
    let interaction = hidden(&page.body, "interaction").unwrap();
    let csrf = hidden(&page.body, "csrf").unwrap();
    let forged = alice
        .post(
            &sts.addr,
            "/end_session/confirm",
            &[("interaction", &interaction), ("csrf", "forged")],
        )
        .await?;
    assert_eq!(forged.status, 403);
    let confirmed = alice
        .post(
            &sts.addr,
            "/end_session/confirm",
            &[("interaction", &interaction), ("csrf", &csrf)],
        )
        .await?;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert!(confirmed.body.contains("You are signed out"));
    assert!(sts.silent(&alice).await?.contains("error=login_required"));

    // Four attempts over about seven seconds, then the failure counts.
    let failed = wait_for(
        "the failed delivery to be counted",
        Duration::from_secs(30),
        || async {
            let metrics = http::get(&sts.metrics, "/metrics").await?.body;
            Ok(metrics
                .lines()
                .find(|l| l.starts_with("signet_sts_backchannel_logout_failed_total "))
                .filter(|l| l.ends_with(" 1"))
                .map(str::to_owned))
        },
    )
    .await?;
    assert!(failed.ends_with(" 1"));
    Ok(())
}
