//! Sign-in over raw HTTP against one standalone STS: the security cases of the authorization
//! code flow (redirects, codes, PKCE, CSRF, refresh reuse) and userinfo. The same flows with
//! real client libraries and Chromium are in tests/node/sts-signin.test.mjs.

mod common;

use signet_tests::browserless::{Person, VERIFIER, param};
use signet_tests::http;

use common::{Standalone, client_secret, code_params};

const ALICE: (&str, &str) = ("alice", "correct horse battery staple");
const WEB: &str = "default.web-app";
const CALLBACK: &str = "https://app.example.com/callback";

/// Two more clients: another confidential web app, and one that does not require PKCE.
const EXTRA: &str = r#"
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: other-web}
spec:
  grantTypes: [authorization_code, refresh_token]
  redirectUris: ["https://other.example.com/callback"]
  allowedScopes: [openid, offline_access]
  tokenEndpointAuthMethod: client_secret_post
  trusted: true
---
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: legacy-web}
spec:
  grantTypes: [authorization_code]
  redirectUris: ["https://legacy.example.com/callback"]
  allowedScopes: [openid]
  tokenEndpointAuthMethod: client_secret_post
  requirePkce: false
  lifetimes: {authorizationCode: 1s}
"#;

async fn start(test: &str) -> anyhow::Result<Standalone> {
    Standalone::start(test, EXTRA).await
}

fn web_params(scope: &'static str) -> Vec<(&'static str, &'static str)> {
    code_params(WEB, CALLBACK, scope)
}

impl Standalone {
    /// Signs alice in for the web app and returns the code.
    async fn code(&self, person: &mut Person, scope: &'static str) -> anyhow::Result<String> {
        let location = person
            .sign_in(&self.addr, &web_params(scope), ALICE.0, ALICE.1)
            .await?;
        anyhow::ensure!(location.starts_with(CALLBACK), "{location}");
        param(&location, "code").ok_or_else(|| anyhow::anyhow!("no code in {location}"))
    }

    /// Signs alice in to the web app and redeems the code: the token response.
    async fn tokens(
        &self,
        person: &mut Person,
        scope: &'static str,
    ) -> anyhow::Result<serde_json::Value> {
        let code = self.code(person, scope).await?;
        let form = [
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ];
        let response = self.redeem(WEB, &form).await?;
        anyhow::ensure!(response.status == 200, "{}", response.body);
        Ok(response.json())
    }

    async fn redeem(
        &self,
        client_id: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<http::Response> {
        let auth = self.basic(client_id);
        let mut all = vec![("grant_type", "authorization_code")];
        all.extend_from_slice(form);
        http::post_form(&self.addr, "/token", &all, &[("Authorization", &auth)]).await
    }

    async fn introspect(&self, token: &str) -> anyhow::Result<serde_json::Value> {
        let auth = self.basic(WEB);
        Ok(http::post_form(
            &self.addr,
            "/introspect",
            &[("token", token)],
            &[("Authorization", &auth)],
        )
        .await?
        .json())
    }
}

#[tokio::test]
async fn open_redirect_attempts_get_an_error_page_and_no_redirect() -> anyhow::Result<()> {
    let sts = start("open-redirect").await?;
    let person = Person::default();
    for uri in [
        "https://evil.example/callback",
        "https://app.example.com/callback/extra",
        "https://app.example.com/callback/",
        "https://APP.EXAMPLE.COM/callback",
        "https://app.example.com/CALLBACK",
        "https://app.example.com@evil.example/callback",
        "https://evil.example/?https://app.example.com/callback",
        "https%3A%2F%2Fapp.example.com%2Fcallback",
        "https://app.example.com/%63allback",
        "https://app.example.com/callback%2F..%2F..%2Fevil",
        "http://127.0.0.1:3001/callback",
    ] {
        let mut params = web_params("openid");
        params.retain(|(k, _)| *k != "redirect_uri");
        params.push(("redirect_uri", uri));
        let response = person.authorize(&sts.addr, &params).await?;
        assert_eq!(response.status, 400, "{uri}: {}", response.body);
        assert_eq!(response.header("location"), None, "{uri}: never a redirect");
        assert!(
            response.body.contains("correlation id"),
            "{}",
            response.body
        );
        assert!(
            response
                .header("content-security-policy")
                .is_some_and(|c| c.contains("frame-ancestors 'none'")),
            "{:?}",
            response.headers
        );
    }
    Ok(())
}

#[tokio::test]
async fn codes_are_bound_to_client_redirect_and_verifier() -> anyhow::Result<()> {
    let sts = start("code-binding").await?;
    let mut alice = Person::default();
    let invalid_grant =
        |r: &http::Response| r.status == 400 && r.json()["error"] == "invalid_grant";

    let code = sts.code(&mut alice, "openid").await?;
    let other = client_secret(&sts.state, "default.other-web");
    let stolen = http::post_form(
        &sts.addr,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://other.example.com/callback"),
            ("code_verifier", VERIFIER),
            ("client_id", "default.other-web"),
            ("client_secret", &other),
        ],
        &[],
    )
    .await?;
    assert!(
        invalid_grant(&stolen),
        "another client's code: {}",
        stolen.body
    );

    let code = sts.code(&mut alice, "openid").await?;
    let r = sts
        .redeem(
            WEB,
            &[
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:3000/callback"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await?;
    assert!(invalid_grant(&r), "mismatched redirect_uri: {}", r.body);

    let code = sts.code(&mut alice, "openid").await?;
    let r = sts
        .redeem(
            WEB,
            &[
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", "x".repeat(43).as_str()),
            ],
        )
        .await?;
    assert!(invalid_grant(&r), "wrong verifier: {}", r.body);

    let code = sts.code(&mut alice, "openid").await?;
    let r = sts
        .redeem(WEB, &[("code", &code), ("redirect_uri", CALLBACK)])
        .await?;
    assert!(invalid_grant(&r), "missing verifier: {}", r.body);

    let code = sts.code(&mut alice, "openid").await?;
    let good = sts
        .redeem(
            WEB,
            &[
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ],
        )
        .await?;
    assert_eq!(good.status, 200, "the right verifier works: {}", good.body);
    assert_eq!(good.header("cache-control"), Some("no-store"));

    // PKCE downgrade: a code issued without a challenge, redeemed with a verifier.
    let legacy = client_secret(&sts.state, "default.legacy-web");
    let legacy_params = [
        ("client_id", "default.legacy-web"),
        ("redirect_uri", "https://legacy.example.com/callback"),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    let legacy_code = |location: String| param(&location, "code").unwrap();
    let code = legacy_code(
        alice
            .sign_in(&sts.addr, &legacy_params, ALICE.0, ALICE.1)
            .await?,
    );
    let legacy_redeem = |code: String, verifier: Option<&'static str>| {
        let (addr, legacy) = (sts.addr.clone(), legacy.clone());
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                (
                    "redirect_uri",
                    "https://legacy.example.com/callback".to_owned(),
                ),
                ("client_id", "default.legacy-web".to_owned()),
                ("client_secret", legacy),
            ];
            if let Some(v) = verifier {
                form.push(("code_verifier", v.to_owned()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http::post_form(&addr, "/token", &form, &[]).await
        }
    };
    let r = legacy_redeem(code, Some(VERIFIER)).await?;
    assert!(invalid_grant(&r), "PKCE downgrade: {}", r.body);

    // Expiry: this client's codes live one second; the wait is the scenario itself.
    let code = legacy_code(
        alice
            .sign_in(&sts.addr, &legacy_params, ALICE.0, ALICE.1)
            .await?,
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = legacy_redeem(code, None).await?;
    assert!(invalid_grant(&r), "expired code: {}", r.body);
    let code = legacy_code(
        alice
            .sign_in(&sts.addr, &legacy_params, ALICE.0, ALICE.1)
            .await?,
    );
    assert_eq!(
        legacy_redeem(code, None).await?.status,
        200,
        "a fresh one works"
    );
    Ok(())
}

#[tokio::test]
async fn a_code_used_twice_revokes_what_its_first_use_issued() -> anyhow::Result<()> {
    let sts = start("code-twice").await?;
    let mut alice = Person::default();
    let code = sts.code(&mut alice, "openid offline_access").await?;
    let form = [
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ];
    let first = sts.redeem(WEB, &form).await?;
    assert_eq!(first.status, 200, "{}", first.body);
    let access = first.json()["access_token"].as_str().unwrap().to_owned();
    let refresh = first.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(sts.introspect(&access).await?["active"], true);

    let second = sts.redeem(WEB, &form).await?;
    assert_eq!(second.json()["error"], "invalid_grant", "{}", second.body);
    assert_eq!(
        sts.introspect(&access).await?,
        serde_json::json!({"active": false})
    );
    let auth = sts.basic(WEB);
    let refreshed = http::post_form(
        &sts.addr,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        &[("Authorization", &auth)],
    )
    .await?;
    assert_eq!(
        refreshed.json()["error"],
        "invalid_grant",
        "{}",
        refreshed.body
    );
    Ok(())
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_are_refused() -> anyhow::Result<()> {
    let sts = start("csrf").await?;
    let mut alice = Person::default();
    let response = alice.authorize(&sts.addr, &web_params("openid")).await?;
    let location = response.header("location").unwrap().to_owned();
    let page = alice.get(&sts.addr, &location).await?;
    let interaction = signet_tests::browserless::hidden(&page.body, "interaction").unwrap();
    for csrf in [None, Some("wrong"), Some("")] {
        let mut form = vec![
            ("interaction", interaction.as_str()),
            ("username", ALICE.0),
            ("password", ALICE.1),
        ];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        let r = alice.post(&sts.addr, "/login", &form).await?;
        assert_eq!(r.status, 403, "csrf {csrf:?}: {}", r.body);
        assert!(alice.session().is_none(), "no session without the token");
    }
    // The same form with the token signs in.
    let r = alice.log_in(&sts.addr, &location, ALICE.0, ALICE.1).await?;
    assert_eq!(r.status, 303);
    assert!(alice.session().is_some());
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_a_message_and_no_session() -> anyhow::Result<()> {
    let sts = start("wrong-password").await?;
    let mut mallory = Person::default();
    let response = mallory.authorize(&sts.addr, &web_params("openid")).await?;
    let location = response.header("location").unwrap().to_owned();
    for (user, password) in [
        ("alice", "wrong"),
        ("nobody", "correct horse battery staple"),
    ] {
        let r = mallory.log_in(&sts.addr, &location, user, password).await?;
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r.body.contains("role=\"alert\""), "{}", r.body);
        assert!(r.body.contains("username or password is not right"));
        assert!(mallory.session().is_none());
    }
    Ok(())
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family() -> anyhow::Result<()> {
    let sts = start("refresh").await?;
    let mut alice = Person::default();
    let code = sts
        .code(&mut alice, "openid offline_access orders.read")
        .await?;
    let tokens = sts
        .redeem(
            WEB,
            &[
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ],
        )
        .await?
        .json();
    let auth = sts.basic(WEB);
    let refresh = |token: String, scope: Option<&'static str>| {
        let (addr, auth) = (sts.addr.clone(), auth.clone());
        async move {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ];
            if let Some(scope) = scope {
                form.push(("scope", scope));
            }
            http::post_form(&addr, "/token", &form, &[("Authorization", &auth)]).await
        }
    };
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let r1 = refresh(first.clone(), Some("openid orders.read")).await?;
    assert_eq!(r1.status, 200, "{}", r1.body);
    assert_eq!(r1.json()["scope"], "openid orders.read", "scope may shrink");
    let second = r1.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first, "rotated");
    let grown = refresh(second.clone(), Some("openid email")).await?;
    assert_eq!(
        grown.json()["error"],
        "invalid_scope",
        "never grow: {}",
        grown.body
    );
    // `grown` was refused before the token was used: it still works once.
    let r2 = refresh(second.clone(), None).await?;
    assert_eq!(r2.status, 200, "{}", r2.body);
    assert_eq!(
        r2.json()["scope"],
        "openid offline_access orders.read",
        "the shrink did not stick"
    );
    let third = r2.json()["refresh_token"].as_str().unwrap().to_owned();

    // Another client cannot use it.
    let other = client_secret(&sts.state, "default.other-web");
    let stolen = http::post_form(
        &sts.addr,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &third),
            ("client_id", "default.other-web"),
            ("client_secret", &other),
        ],
        &[],
    )
    .await?;
    assert_eq!(stolen.json()["error"], "invalid_grant", "{}", stolen.body);

    // Replaying the first (rotated) token revokes the family: the newest stops working.
    let replay = refresh(first, None).await?;
    assert_eq!(replay.json()["error"], "invalid_grant", "{}", replay.body);
    let newest = refresh(third, None).await?;
    assert_eq!(
        newest.json()["error"],
        "invalid_grant",
        "family revoked: {}",
        newest.body
    );
    Ok(())
}

#[tokio::test]
async fn userinfo_gives_claims_by_scope_and_refuses_other_tokens() -> anyhow::Result<()> {
    let sts = start("userinfo").await?;
    let mut alice = Person::default();
    let tokens = sts.tokens(&mut alice, "openid email").await?;
    let access = tokens["access_token"].as_str().unwrap();
    let bearer = format!("Bearer {access}");
    let info = http::get_with(&sts.addr, "/userinfo", &[("Authorization", &bearer)]).await?;
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(
        info.json(),
        serde_json::json!({"sub": "6f1c2a4e-alice", "email": "alice@example.com", "email_verified": true}),
        "email scope only: no profile claims"
    );
    let posted = http::post(
        &sts.addr,
        "/userinfo",
        "application/x-www-form-urlencoded",
        b"",
        &[("Authorization", &bearer)],
    )
    .await?;
    assert_eq!(posted.json(), info.json());

    let worker = client_secret(&sts.state, "default.orders-worker");
    let machine = http::post_form(
        &sts.addr,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "default.orders-worker"),
            ("client_secret", &worker),
        ],
        &[],
    )
    .await?
    .json();
    let machine_bearer = format!("Bearer {}", machine["access_token"].as_str().unwrap());
    let revoke_auth = sts.basic(WEB);
    http::post_form(
        &sts.addr,
        "/revoke",
        &[("token", access)],
        &[("Authorization", &revoke_auth)],
    )
    .await?;
    for (what, header) in [
        ("machine token", machine_bearer.as_str()),
        ("revoked", bearer.as_str()),
        ("garbage", "Bearer abc.def.ghi"),
    ] {
        let r = http::get_with(&sts.addr, "/userinfo", &[("Authorization", header)]).await?;
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert!(
            r.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer error=\"invalid_token\"")),
            "{what}: {:?}",
            r.headers
        );
    }
    Ok(())
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_family_and_only_its_client_may() -> anyhow::Result<()> {
    let sts = start("revoke-refresh").await?;
    let mut alice = Person::default();
    let tokens = sts.tokens(&mut alice, "openid offline_access").await?;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let auth = sts.basic(WEB);
    let refresh = |token: String| {
        let (addr, auth) = (sts.addr.clone(), auth.clone());
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ];
            http::post_form(&addr, "/token", &form, &[("Authorization", &auth)]).await
        }
    };
    let rotated = refresh(first.clone()).await?.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another client's revocation is answered 200 and changes nothing.
    let other = client_secret(&sts.state, "default.other-web");
    let foreign = http::post_form(
        &sts.addr,
        "/revoke",
        &[
            ("token", &rotated),
            ("client_id", "default.other-web"),
            ("client_secret", &other),
        ],
        &[],
    )
    .await?;
    assert_eq!(foreign.status, 200);
    assert_eq!(refresh(rotated.clone()).await?.status, 200, "still usable");
    let current = {
        // That use rotated it again; revoke the newest through its own client.
        sts.tokens(&mut alice, "openid offline_access").await?["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let revoked = http::post_form(
        &sts.addr,
        "/revoke",
        &[("token", &current)],
        &[("Authorization", &auth)],
    )
    .await?;
    assert_eq!(revoked.status, 200);
    let after = refresh(current).await?;
    assert_eq!(after.json()["error"], "invalid_grant", "{}", after.body);
    let garbage = http::post_form(
        &sts.addr,
        "/revoke",
        &[("token", "garbage")],
        &[("Authorization", &auth)],
    )
    .await?;
    assert_eq!(garbage.status, 200);
    Ok(())
}
