//! The authorization code flow of the example web app, without a browser: a person signed in
//! once asks for codes (`GET /authorize` with the session cookie, consent given), and the app
//! redeems each with PKCE.

use signet_tests::browserless::{CHALLENGE, Person, VERIFIER, param};
use signet_tests::http;

/// The example confidential web app (client_secret_basic).
pub const WEB: &str = "default.web-app";

/// One of its redirect URIs.
pub const CALLBACK: &str = "https://app.example.com/callback";

/// An authorization request of the web app for a code with PKCE.
pub const CODE_REQUEST: [(&str, &str); 6] = [
    ("client_id", WEB),
    ("redirect_uri", CALLBACK),
    ("response_type", "code"),
    ("scope", "openid"),
    ("code_challenge", CHALLENGE),
    ("code_challenge_method", "S256"),
];

/// Signs the example user alice in and consents, once: her later authorizations answer with
/// a code at once.
pub async fn signed_in(addr: &str) -> anyhow::Result<Person> {
    let mut person = Person::default();
    let first = person
        .sign_in(addr, &CODE_REQUEST, "alice", "correct horse battery staple")
        .await?;
    anyhow::ensure!(first.contains("code="), "sign-in: {first}");
    Ok(person)
}

/// One code for the web app from `person`'s session.
pub async fn code(addr: &str, person: &Person) -> anyhow::Result<String> {
    let answer = person.authorize(addr, &CODE_REQUEST).await?;
    let location = answer.header("location").unwrap_or_default();
    param(location, "code")
        .ok_or_else(|| anyhow::anyhow!("/authorize: {} {location} {}", answer.status, answer.body))
}

/// Redeems `code` at the token endpoint, the app authenticated by `basic` (an Authorization
/// header value); fails unless tokens come back.
pub async fn redeem(addr: &str, basic: &str, code: &str) -> anyhow::Result<()> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ];
    let answer = http::post_form(addr, "/token", &form, &[("Authorization", basic)]).await?;
    anyhow::ensure!(
        answer.status == 200,
        "redemption: {} {}",
        answer.status,
        answer.body
    );
    Ok(())
}
