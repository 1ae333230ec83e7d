//! Tenancy attacks over raw HTTP against a standalone STS: what a tenant that owns one
//! namespace, or a person signed in through one provider, must not get. Each test drives the
//! attack; docs/security.md ("who may grant what") states the rules.

mod common;

use std::path::Path;
use std::time::Duration;

use signet_tests::browserless::{Person, VERIFIER, param};
use signet_tests::{http, wait_for};

use common::{Standalone, code_params};

const ALICE: (&str, &str) = ("alice", "correct horse battery staple");
const WEB: &str = "default.web-app";
const CALLBACK: &str = "https://app.example.com/callback";
const PARTNER_CALLBACK: &str = "https://partners.example.com/callback";

/// A second static provider (bob, same password as alice), clients that allow only it, a
/// tenant namespace whose client declares itself trusted with long lifetimes and identity
/// claims, and a client that may request the orders scope without being the orders API.
const EXTRA: &str = r#"
apiVersion: signet.dev/v1alpha1
kind: IdentityProvider
metadata: {name: partners}
spec:
  type: static
  static: {usersSecretRef: {name: partner-users, key: users.yaml}}
---
apiVersion: v1
kind: Secret
metadata: {name: partner-users}
stringData:
  users.yaml: |
    - username: bob
      passwordHash: $argon2id$v=19$m=65536,t=3,p=4$ixFIyCpo0OA0QnJjvECYRg$3w/btbKOd8uYMjP3dCzrpXZ/xIksutauDrvXnUNW1j8
      sub: bob-partner
---
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: partner-portal}
spec:
  grantTypes: [authorization_code]
  redirectUris: ["https://partners.example.com/callback"]
  allowedScopes: [openid]
  tokenEndpointAuthMethod: client_secret_post
  allowedIdentityProviders: [partners]
  trusted: true
---
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: partner-tv}
spec:
  type: public
  grantTypes: ["urn:ietf:params:oauth:grant-type:device_code"]
  allowedScopes: [openid]
  allowedIdentityProviders: [partners]
---
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
  labels: {signet.dev/tenant: "true"}
---
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: self-trusted, namespace: team-a}
spec:
  grantTypes: [authorization_code, refresh_token]
  redirectUris: ["https://team-a.example.com/callback"]
  allowedScopes: [openid, offline_access]
  tokenEndpointAuthMethod: client_secret_post
  trusted: true
  lifetimes: {accessToken: 24h, refreshTokenAbsolute: 8760h}
---
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: claimer}
spec:
  grantTypes: [client_credentials]
  allowedScopes: [orders.read]
  tokenEndpointAuthMethod: client_secret_post
  claims: {email: ceo@example.com, preferred_username: ceo, upn: ceo@example.com, Name: CEO}
---
apiVersion: signet.dev/v1alpha1
kind: ApiScope
metadata: {name: spy, namespace: team-a, creationTimestamp: "2030-01-01T00:00:00Z"}
spec:
  name: team-a.spy
  audience: https://orders.example.com
  resourceServers: [{name: spy}]
---
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: spy, namespace: team-a}
spec:
  grantTypes: [client_credentials]
  tokenEndpointAuthMethod: client_secret_post
---
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: snooper}
spec:
  grantTypes: [client_credentials]
  allowedScopes: [orders.read]
  tokenEndpointAuthMethod: client_secret_post
"#;

async fn start(test: &str) -> anyhow::Result<Standalone> {
    Standalone::start_edited(test, EXTRA, |manifests| {
        edit(&manifests.join("token-service.yaml"), |ts| {
            ts.replace(
                "identityProviders: [local-users]",
                "identityProviders: [local-users, partners]",
            )
        })
    })
    .await
}

fn edit(path: &Path, change: impl Fn(&str) -> String) {
    let before = std::fs::read_to_string(path).unwrap();
    let after = change(&before);
    assert_ne!(
        before,
        after,
        "the edit of {} changed nothing",
        path.display()
    );
    std::fs::write(path, after).unwrap();
}

impl Standalone {
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<http::Response> {
        http::post_form(&self.addr, path, form, &[]).await
    }

    async fn machine_token(&self, client_id: &str) -> anyhow::Result<http::Response> {
        let secret = self.secret(client_id);
        self.post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", &secret),
            ],
        )
        .await
    }

    async fn introspect(&self, caller: &str, token: &str) -> anyhow::Result<serde_json::Value> {
        let secret = self.secret(caller);
        Ok(self
            .post(
                "/introspect",
                &[
                    ("token", token),
                    ("client_id", caller),
                    ("client_secret", &secret),
                ],
            )
            .await?
            .json())
    }

    /// Alice signs in to the web app (offline_access: consent, then a refresh token).
    async fn web_tokens(&self, alice: &mut Person) -> anyhow::Result<serde_json::Value> {
        let scope = "openid offline_access orders.read";
        let location = alice
            .sign_in(
                &self.addr,
                &code_params(WEB, CALLBACK, scope),
                ALICE.0,
                ALICE.1,
            )
            .await?;
        let code = param(&location, "code").ok_or_else(|| anyhow::anyhow!("{location}"))?;
        let response = http::post_form(
            &self.addr,
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ],
            &[("Authorization", &self.basic(WEB))],
        )
        .await?;
        anyhow::ensure!(response.status == 200, "{}", response.body);
        Ok(response.json())
    }

    async fn refresh(&self, refresh_token: &str) -> anyhow::Result<http::Response> {
        http::post_form(
            &self.addr,
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            &[("Authorization", &self.basic(WEB))],
        )
        .await
    }

    /// Changes a manifest and waits until the STS serves the recompiled snapshot.
    async fn change(&self, file: &str, change: impl Fn(&str) -> String) -> anyhow::Result<()> {
        let before = http::get(&self.addr, "/readyz").await?.body;
        edit(&self.manifests.join(file), change);
        wait_for(
            "the changed manifests served",
            Duration::from_secs(30),
            || async {
                let now = http::get(&self.addr, "/readyz").await?.body;
                anyhow::ensure!(!now.contains("refused"), "{now}");
                Ok((now != before).then_some(()))
            },
        )
        .await
    }
}

/// Item 1: a session made through one provider gives no code, and approves no device, for a
/// client that allows only another provider; the person is asked to sign in again.
#[tokio::test]
async fn a_session_of_another_provider_gets_no_code_and_approves_no_device() -> anyhow::Result<()> {
    let sts = start("tenancy-idp").await?;
    let mut alice = Person::default();
    sts.web_tokens(&mut alice).await?;
    assert!(
        alice.session().is_some(),
        "alice holds a local-users session"
    );

    let response = alice
        .authorize(
            &sts.addr,
            &code_params("default.partner-portal", PARTNER_CALLBACK, "openid"),
        )
        .await?;
    let location = response.header("location").unwrap_or_default();
    assert_eq!(response.status, 303, "{}", response.body);
    assert!(
        location.starts_with("/login"),
        "a local-users session must not give a partner-portal code: {location}"
    );
    // The login page offers only the partners provider; alice's password is refused there.
    let page = alice.get(&sts.addr, location).await?;
    assert!(!page.body.contains("local-users"), "{}", page.body);

    // The device flow: alice's session is not enough to approve partner-tv's code.
    let device = sts
        .post(
            "/device_authorization",
            &[("client_id", "default.partner-tv"), ("scope", "openid")],
        )
        .await?
        .json();
    let user_code = device["user_code"].as_str().unwrap();
    let path = format!("/device?{}", http::query(&[("user_code", user_code)]));
    let page = alice.get(&sts.addr, &path).await?;
    assert_eq!(
        page.status, 303,
        "the approval form must not show for a session of another provider: {}",
        page.body
    );
    assert!(
        page.header("location")
            .unwrap_or_default()
            .starts_with("/login"),
        "{:?}",
        page.headers
    );
    Ok(())
}

/// Item 2: a tenant's self-declared `trusted` client still asks for consent (offline_access
/// included), and its lifetimes are clamped to the TokenService's.
#[tokio::test]
async fn a_tenant_cannot_trust_itself_or_extend_its_lifetimes() -> anyhow::Result<()> {
    let sts = start("tenancy-trust").await?;
    let mut alice = Person::default();
    sts.web_tokens(&mut alice).await?; // signed in; web-app consented
    let callback = "https://team-a.example.com/callback";
    let response = alice
        .authorize(
            &sts.addr,
            &code_params("team-a.self-trusted", callback, "openid offline_access"),
        )
        .await?;
    let location = response.header("location").unwrap_or_default().to_owned();
    assert!(
        location.starts_with("/consent"),
        "a tenant's self-declared trust must not skip consent: {location}"
    );
    let allowed = alice.consent(&sts.addr, &location, "allow").await?;
    let code = param(allowed.header("location").unwrap_or_default(), "code").unwrap();
    let secret = sts.secret("team-a.self-trusted");
    let tokens = sts
        .post(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", callback),
                ("code_verifier", VERIFIER),
                ("client_id", "team-a.self-trusted"),
                ("client_secret", &secret),
            ],
        )
        .await?;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    // The examples' TokenService gives access tokens 15m; the tenant asked for 24h.
    assert_eq!(tokens.json()["expires_in"], 900, "{}", tokens.body);
    Ok(())
}

/// Item 3: static claims named like identity claims never reach a token.
#[tokio::test]
async fn static_claims_cannot_forge_identity_claims() -> anyhow::Result<()> {
    let sts = start("tenancy-claims").await?;
    // Standalone admits objects as the API server would: the claimer is refused whole, so it
    // gets no credentials file and no token at all.
    if !sts.state.join("clients/default.claimer.json").exists() {
        let r = sts
            .post(
                "/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", "default.claimer"),
                    ("client_secret", "guess"),
                ],
            )
            .await?;
        assert_eq!(r.status, 401, "{}", r.body);
        return Ok(());
    }
    let response = sts.machine_token("default.claimer").await?;
    // Either the client is refused outright (standalone validates like kubectl apply) or its
    // tokens lack the forged claims; never a token that carries them.
    if response.status == 200 {
        let claims = http::jwt_claims(response.json()["access_token"].as_str().unwrap());
        for name in ["email", "preferred_username", "upn", "Name"] {
            assert!(claims.get(name).is_none(), "forged {name}: {claims}");
        }
    } else {
        assert_eq!(response.status, 401, "{}", response.body);
    }
    Ok(())
}

/// Item 5: a client that may request a scope learns nothing about other clients' tokens for
/// that audience; the declared resource server and the token's own client do.
#[tokio::test]
async fn introspection_answers_only_callers_entitled_to_the_token() -> anyhow::Result<()> {
    let sts = start("tenancy-introspect").await?;
    let worker = sts.machine_token("default.orders-worker").await?.json();
    let worker_token = worker["access_token"].as_str().unwrap();
    let snooped = sts.introspect("default.snooper", worker_token).await?;
    assert_eq!(
        snooped,
        serde_json::json!({"active": false}),
        "a client that merely may request orders.read learns nothing"
    );
    let own = sts
        .introspect("default.orders-worker", worker_token)
        .await?;
    assert_eq!(own["active"], true, "{own}");

    // The orders API's declared resource server (orders-worker, examples/api-scope.yaml)
    // introspects another client's token for its audience.
    let snooper = sts.machine_token("default.snooper").await?.json();
    let snooper_token = snooper["access_token"].as_str().unwrap();
    let seen = sts
        .introspect("default.orders-worker", snooper_token)
        .await?;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["client_id"], "default.snooper");

    // A tenant that copies the orders audience into an ApiScope of its own, naming itself its
    // resource server, gets a Conflict (the older scope keeps the audience) and no view.
    let spied = sts.introspect("team-a.spy", worker_token).await?;
    assert_eq!(spied, serde_json::json!({"active": false}));
    Ok(())
}

/// Item 6: a removed person's refresh tokens and session stop working.
#[tokio::test]
async fn a_removed_person_can_neither_refresh_nor_use_the_session() -> anyhow::Result<()> {
    let sts = start("tenancy-removed-user").await?;
    let mut alice = Person::default();
    let tokens = sts.web_tokens(&mut alice).await?;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    sts.change("identity-provider.yaml", |f| {
        f.replace("- username: alice", "- username: alice-gone")
            .replace("sub: 6f1c2a4e-alice", "sub: someone-else")
    })
    .await?;
    let refused = sts.refresh(&refresh).await?;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.json()["error"], "invalid_grant");
    let response = alice
        .authorize(&sts.addr, &code_params(WEB, CALLBACK, "openid"))
        .await?;
    assert!(
        response
            .header("location")
            .unwrap_or_default()
            .starts_with("/login"),
        "a removed person's session gives no code: {:?}",
        response.headers
    );
    Ok(())
}

/// Item 6: a scope the client lost (its own list, or the API owner's namespace selector) is
/// gone from refreshed tokens.
#[tokio::test]
async fn a_refresh_carries_no_scope_the_client_lost() -> anyhow::Result<()> {
    let sts = start("tenancy-lost-scope").await?;
    let mut alice = Person::default();
    let tokens = sts.web_tokens(&mut alice).await?;
    assert!(tokens["scope"].as_str().unwrap().contains("orders.read"));
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    sts.change("clients.yaml", |f| {
        f.replace(
            "allowedScopes: [openid, profile, email, offline_access, orders.read]",
            "allowedScopes: [openid, profile, email, offline_access]",
        )
    })
    .await?;
    let refreshed = sts.refresh(&refresh).await?;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let body = refreshed.json();
    assert!(
        !body["scope"].as_str().unwrap().contains("orders.read"),
        "{body}"
    );
    let claims = http::jwt_claims(body["access_token"].as_str().unwrap());
    assert_ne!(claims["aud"], "https://orders.example.com", "{claims}");
    assert!(
        !claims["aud"]
            .as_array()
            .is_some_and(|a| a.contains(&"https://orders.example.com".into())),
        "{claims}"
    );
    // The rotated refresh token does not bring it back either.
    let next = body["refresh_token"].as_str().unwrap();
    let again = sts.refresh(next).await?.json();
    assert!(!again["scope"].as_str().unwrap().contains("orders.read"));
    Ok(())
}
