//! Revoking a refresh token, or presenting a rotated one again, ends its family, and with it
//! every access token the family issued that is still alive (RFC 7009 §2.1 SHOULD; RFC 9700
//! §4.14.2; issue 19, item 7): introspection says they are inactive at once. For JWT and for
//! reference access tokens. Raw HTTP against one standalone STS.

mod common;

use signet_tests::browserless::{Person, VERIFIER, param};
use signet_tests::http;

use common::{Standalone, code_params};

const ALICE: (&str, &str) = ("alice", "correct horse battery staple");
const CALLBACK: &str = "https://app.example.com/callback";

/// The web app again, issuing reference access tokens.
const REFERENCE: &str = r#"
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: ref-web}
spec:
  grantTypes: [authorization_code, refresh_token]
  redirectUris: ["https://app.example.com/callback"]
  allowedScopes: [openid, offline_access, orders.read]
  tokenEndpointAuthMethod: client_secret_basic
  accessTokenFormat: reference
  trusted: true
"#;

struct Family<'a> {
    sts: &'a Standalone,
    client: &'static str,
    /// Access tokens in the order issued.
    access: Vec<String>,
    /// The refresh token of the last issuance, and the one before it.
    refresh: Vec<String>,
}

impl<'a> Family<'a> {
    /// Signs alice in for `client` and redeems the code.
    async fn start(sts: &'a Standalone, client: &'static str) -> anyhow::Result<Self> {
        let mut alice = Person::default();
        let location = alice
            .sign_in(
                &sts.addr,
                &code_params(client, CALLBACK, "openid offline_access orders.read"),
                ALICE.0,
                ALICE.1,
            )
            .await?;
        let code = param(&location, "code").ok_or_else(|| anyhow::anyhow!("{location}"))?;
        let mut family = Self {
            sts,
            client,
            access: vec![],
            refresh: vec![],
        };
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ];
        family.token(&form).await?;
        Ok(family)
    }

    async fn token(&mut self, form: &[(&str, &str)]) -> anyhow::Result<http::Response> {
        let auth = self.sts.basic(self.client);
        let response =
            http::post_form(&self.sts.addr, "/token", form, &[("Authorization", &auth)]).await?;
        if response.status == 200 {
            let body = response.json();
            self.access
                .push(body["access_token"].as_str().unwrap().to_owned());
            self.refresh
                .push(body["refresh_token"].as_str().unwrap().to_owned());
        }
        Ok(response)
    }

    /// Rotates the last refresh token.
    async fn rotate(&mut self) -> anyhow::Result<()> {
        let last = self.refresh.last().unwrap().clone();
        let r = self
            .token(&[("grant_type", "refresh_token"), ("refresh_token", &last)])
            .await?;
        anyhow::ensure!(r.status == 200, "{}", r.body);
        Ok(())
    }

    /// Whether introspection says `token` is active (asked by its own client).
    async fn active(&self, token: &str) -> anyhow::Result<bool> {
        let auth = self.sts.basic(self.client);
        let r = http::post_form(
            &self.sts.addr,
            "/introspect",
            &[("token", token)],
            &[("Authorization", &auth)],
        )
        .await?;
        anyhow::ensure!(r.status == 200, "{}", r.body);
        Ok(r.json()["active"] == true)
    }

    async fn assert_all_access(&self, active: bool, what: &str) -> anyhow::Result<()> {
        for (i, token) in self.access.iter().enumerate() {
            assert_eq!(
                self.active(token).await?,
                active,
                "{}: access token {i} of {what}",
                self.client
            );
        }
        Ok(())
    }
}

async fn revoking_the_refresh_token_ends_the_access_tokens(
    sts: &Standalone,
    client: &'static str,
) -> anyhow::Result<()> {
    let mut family = Family::start(sts, client).await?;
    family.rotate().await?;
    family.assert_all_access(true, "a live family").await?;
    let last = family.refresh.last().unwrap().clone();
    let auth = sts.basic(client);
    let revoked = http::post_form(
        &sts.addr,
        "/revoke",
        &[("token", &last), ("token_type_hint", "refresh_token")],
        &[("Authorization", &auth)],
    )
    .await?;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    family
        .assert_all_access(false, "a family whose refresh token was revoked")
        .await
}

async fn a_reused_refresh_token_ends_the_access_tokens(
    sts: &Standalone,
    client: &'static str,
) -> anyhow::Result<()> {
    let mut family = Family::start(sts, client).await?;
    family.rotate().await?;
    // The first refresh token again: it leaked.
    let first = family.refresh[0].clone();
    let reused = family
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &first)])
        .await?;
    assert_eq!(reused.json()["error"], "invalid_grant", "{}", reused.body);
    family
        .assert_all_access(false, "a family whose rotated token came back")
        .await
}

#[tokio::test]
async fn ending_a_refresh_family_ends_its_live_access_tokens() -> anyhow::Result<()> {
    let sts = Standalone::start("family-revocation", REFERENCE).await?;
    for client in ["default.web-app", "default.ref-web"] {
        revoking_the_refresh_token_ends_the_access_tokens(&sts, client).await?;
        a_reused_refresh_token_ends_the_access_tokens(&sts, client).await?;
    }
    Ok(())
}

/// A tenant's client that rotates its family as fast as it can cannot make the family's list
/// of access tokens (rewritten at every rotation) grow without bound: past the cap the oldest
/// access tokens are denied, the newest stay active.
#[tokio::test]
async fn a_family_keeps_a_bounded_number_of_live_access_tokens() -> anyhow::Result<()> {
    let sts = Standalone::start("family-bounded", "").await?;
    let mut family = Family::start(&sts, "default.web-app").await?;
    for _ in 0..70 {
        family.rotate().await?;
    }
    assert!(
        !family.active(&family.access[0]).await?,
        "the oldest of 71 live access tokens is denied"
    );
    let newest = family.access.last().unwrap();
    assert!(family.active(newest).await?, "the newest is active");
    assert!(
        family
            .active(&family.access[family.access.len() - 32])
            .await?
    );
    Ok(())
}
