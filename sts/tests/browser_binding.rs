//! Every interaction is bound to the browser that started it (RFC 6749 §10.12; issue 16, item
//! 1). The attacker starts an interaction in their own browser, reads its id and CSRF token
//! from the page as anyone may, and makes the victim's browser send the form (a page the
//! victim visits can post forms anywhere). Each such form is refused with a page that says so,
//! and changes nothing: no session, code, consent, device approval or sign-out. Raw HTTP, one
//! cookie jar per browser; the same attacks from a same-site page in real Chromium are in
//! tests/node/sts-browser-binding.test.mjs.

mod common;

use signet_tests::browserless::{Person, hidden, param};
use signet_tests::http;

use common::{Standalone, code_params};

const ALICE: (&str, &str) = ("alice", "correct horse battery staple");
const MALLORY: (&str, &str) = ("mallory", "correct horse battery staple");
const WEB: &str = "default.web-app";
const WEB_CALLBACK: &str = "https://app.example.com/callback";
const CLI: &str = "default.cli";
const CLI_CALLBACK: &str = "http://127.0.0.1:7777/callback";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The examples, with the attacker as a second local user (same password hash as alice).
async fn start(test: &str) -> anyhow::Result<Standalone> {
    Standalone::start_edited(test, "", |dir| {
        let file = dir.join("identity-provider.yaml");
        let mut users = std::fs::read_to_string(&file).unwrap();
        let alice_hash = users
            .lines()
            .find_map(|l| l.trim().strip_prefix("passwordHash: "))
            .unwrap()
            .to_owned();
        users.push_str(&format!(
            "    - username: mallory\n      passwordHash: {alice_hash}\n      sub: mallory-attacker\n"
        ));
        std::fs::write(file, users).unwrap();
    })
    .await
}

/// The refusal every test expects: a 403 page that says why, and no cookie for the session.
fn assert_refused(response: &http::Response, what: &str) {
    assert_eq!(response.status, 403, "{what}: {}", response.body);
    assert!(
        response.body.contains("started in another browser"),
        "{what}: {}",
        response.body
    );
    assert_eq!(response.header("location"), None, "{what}: no redirect");
    assert!(
        !response
            .headers
            .iter()
            .any(|(n, v)| n == "set-cookie" && v.contains("session")),
        "{what}: the session cookie is left alone: {:?}",
        response.headers
    );
}

/// The `interaction` and `csrf` fields of the page at `location`, as its browser sees them.
async fn form_of(sts: &Standalone, person: &Person, location: &str) -> (String, String) {
    let page = person.get(&sts.addr, location).await.unwrap();
    assert_eq!(page.status, 200, "{location}: {}", page.body);
    (
        hidden(&page.body, "interaction").unwrap(),
        hidden(&page.body, "csrf").unwrap(),
    )
}

/// Alice signs in to the web app (login and consent): her browser holds a session.
async fn alice_signed_in(sts: &Standalone) -> Person {
    let mut alice = Person::default();
    let location = alice
        .sign_in(
            &sts.addr,
            &code_params(WEB, WEB_CALLBACK, "openid"),
            ALICE.0,
            ALICE.1,
        )
        .await
        .unwrap();
    assert!(location.contains("code="), "{location}");
    alice
}

/// Where a silent authorization request of the web app sends `person`: a code while the
/// session lives, `login_required` once it is gone.
async fn silent(sts: &Standalone, person: &Person) -> String {
    let mut params = code_params(WEB, WEB_CALLBACK, "openid");
    params.push(("prompt", "none"));
    let response = person.authorize(&sts.addr, &params).await.unwrap();
    response.header("location").unwrap_or_default().to_owned()
}

/// The subject a code of the web app was issued for.
async fn sub_of_code(sts: &Standalone, location: &str) -> String {
    let code = param(location, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", WEB_CALLBACK),
        ("code_verifier", signet_tests::browserless::VERIFIER),
    ];
    let auth = sts.basic(WEB);
    let tokens = http::post_form(&sts.addr, "/token", &form, &[("Authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let id_token = tokens.json()["id_token"].as_str().unwrap().to_owned();
    http::jwt_claims(&id_token)["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_login_form_from_another_browser_signs_nobody_in_and_keeps_the_victims_session()
-> anyhow::Result<()> {
    let sts = start("binding-login").await?;
    let mut alice = alice_signed_in(&sts).await;
    let alice_session = alice.session();

    // Mallory starts a sign-in in her own browser and reads the login form.
    let mut mallory = Person::default();
    let started = mallory
        .authorize(&sts.addr, &code_params(WEB, WEB_CALLBACK, "openid"))
        .await?;
    let login = started.header("location").unwrap_or_default().to_owned();
    assert!(login.starts_with("/login?"), "{login}");
    let (interaction, csrf) = form_of(&sts, &mallory, &login).await;

    // Alice's browser is made to open that page, and to post it with Mallory's password.
    assert_refused(&alice.get(&sts.addr, &login).await?, "the login page");
    let forged = alice
        .post(
            &sts.addr,
            "/login",
            &[
                ("interaction", interaction.as_str()),
                ("csrf", csrf.as_str()),
                ("username", MALLORY.0),
                ("password", MALLORY.1),
            ],
        )
        .await?;
    assert_refused(&forged, "POST /login");

    // Alice is still herself, silently, in the session she had.
    assert_eq!(alice.session(), alice_session);
    let location = silent(&sts, &alice).await;
    assert!(location.contains("code="), "{location}");
    assert_eq!(sub_of_code(&sts, &location).await, "6f1c2a4e-alice");

    // Nothing was spent: Mallory finishes her own sign-in in her own browser.
    let done = mallory
        .log_in(&sts.addr, &login, MALLORY.0, MALLORY.1)
        .await?;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(mallory.session().is_some());
    Ok(())
}

#[tokio::test]
async fn a_consent_form_from_another_browser_issues_no_code_and_remembers_nothing()
-> anyhow::Result<()> {
    let sts = start("binding-consent").await?;
    let mut alice = alice_signed_in(&sts).await;

    // Mallory asks for a code of the CLI with her own PKCE pair and offline access (which an
    // untrusted client gets only with consent), and reads the interaction's form fields from
    // its login page.
    let mallory = Person::default();
    let params = code_params(CLI, CLI_CALLBACK, "openid offline_access");
    let started = mallory.authorize(&sts.addr, &params).await?;
    let login = started.header("location").unwrap_or_default().to_owned();
    let (interaction, csrf) = form_of(&sts, &mallory, &login).await;

    // Alice's browser, signed in, is made to allow it.
    let forged = alice
        .post(
            &sts.addr,
            "/consent",
            &[
                ("interaction", interaction.as_str()),
                ("csrf", csrf.as_str()),
                ("decision", "allow"),
            ],
        )
        .await?;
    assert_refused(&forged, "POST /consent");

    // No consent was remembered: Alice's own request for the CLI still asks her.
    let own = alice.authorize(&sts.addr, &params).await?;
    let next = own.header("location").unwrap_or_default();
    assert!(next.starts_with("/consent?"), "{} {next}", own.status);
    Ok(())
}

#[tokio::test]
async fn a_device_approval_from_another_browser_leaves_the_device_waiting() -> anyhow::Result<()> {
    let sts = start("binding-device").await?;
    let mut alice = alice_signed_in(&sts).await;

    // Mallory's device asks for a code; she opens the verification page in her own browser,
    // which sends her to sign in, and reads the interaction's form fields there.
    let codes = http::post_form(
        &sts.addr,
        "/device_authorization",
        &[("client_id", CLI), ("scope", "openid")],
        &[],
    )
    .await?
    .json();
    let user_code = codes["user_code"].as_str().unwrap();
    let device_code = codes["device_code"].as_str().unwrap();
    let mallory = Person::default();
    let page = mallory
        .get(
            &sts.addr,
            &format!("/device?{}", http::query(&[("user_code", user_code)])),
        )
        .await?;
    let login = page.header("location").unwrap_or_default().to_owned();
    assert!(login.starts_with("/login?"), "{} {login}", page.status);
    let (interaction, csrf) = form_of(&sts, &mallory, &login).await;

    // Alice's browser, signed in, is made to approve Mallory's device.
    let forged = alice
        .post(
            &sts.addr,
            "/device",
            &[
                ("interaction", interaction.as_str()),
                ("csrf", csrf.as_str()),
                ("decision", "allow"),
            ],
        )
        .await?;
    assert_refused(&forged, "POST /device");

    let polled = http::post_form(
        &sts.addr,
        "/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", CLI),
        ],
        &[],
    )
    .await?;
    assert_eq!(
        polled.json()["error"],
        "authorization_pending",
        "{}",
        polled.body
    );
    Ok(())
}

#[tokio::test]
async fn a_logout_confirmation_from_another_browser_signs_nobody_out() -> anyhow::Result<()> {
    let sts = start("binding-logout").await?;
    let mut alice = alice_signed_in(&sts).await;
    let alice_session = alice.session();

    // Mallory, signed in herself, asks to sign out without a hint: the confirmation page.
    let mut mallory = Person::default();
    let location = mallory
        .sign_in(
            &sts.addr,
            &code_params(WEB, WEB_CALLBACK, "openid"),
            MALLORY.0,
            MALLORY.1,
        )
        .await?;
    assert!(location.contains("code="), "{location}");
    let (interaction, csrf) = form_of(&sts, &mallory, "/end_session").await;

    // Alice's browser is made to confirm it.
    let forged = alice
        .post(
            &sts.addr,
            "/end_session/confirm",
            &[
                ("interaction", interaction.as_str()),
                ("csrf", csrf.as_str()),
            ],
        )
        .await?;
    assert_refused(&forged, "POST /end_session/confirm");
    assert_eq!(alice.session(), alice_session);
    let after = silent(&sts, &alice).await;
    assert!(after.contains("code="), "still signed in: {after}");
    Ok(())
}
