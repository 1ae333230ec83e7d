//! Two STS replicas on one redis: a reference token issued by one is introspected and revoked
//! through the other; failed sign-ins at one count at the other; with redis down, stateful
//! requests fail closed and recover.

mod common;

use std::time::Duration;

use common::{client_secret, code_params, redis_manifests, replica, replica_with, test_dir};
use signet_tests::{RedisServer, http, wait_for};

/// A client whose access tokens are reference tokens, kept in the store.
const REFERENCE_CLIENT: &str = "---\napiVersion: signet.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: reporter}\nspec: {grantTypes: [client_credentials], allowedScopes: [orders.read], tokenEndpointAuthMethod: client_secret_post, accessTokenFormat: reference}\n";

#[tokio::test]
async fn any_replica_serves_any_request() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let redis_port = redis.port;

    let dir = test_dir("shared-store");
    redis_manifests(&dir.join("manifests"), redis_port, REFERENCE_CLIENT);
    // One state folder: the replicas share keys and client secrets, as pods share a snapshot.
    let state = dir.join("state");
    let (a, addr_a) = replica(&dir.join("manifests"), &state, "sts-a").await?;
    let (_b, addr_b) = replica(&dir.join("manifests"), &state, "sts-b").await?;
    assert!(
        a.output().contains("redis store connected"),
        "{}",
        a.output()
    );

    let secret = client_secret(&state, "default.reporter");
    let auth = [
        ("client_id", "default.reporter"),
        ("client_secret", secret.as_str()),
    ];
    fn with<'a>(
        auth: &[(&'a str, &'a str)],
        extra: &[(&'a str, &'a str)],
    ) -> Vec<(&'a str, &'a str)> {
        auth.iter().chain(extra).copied().collect()
    }

    let issued = http::post_form(
        &addr_a,
        "/token",
        &with(&auth, &[("grant_type", "client_credentials")]),
        &[],
    )
    .await?;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let token = issued.json()["access_token"].as_str().unwrap().to_owned();
    let at_b = http::post_form(
        &addr_b,
        "/introspect",
        &with(&auth, &[("token", &token)]),
        &[],
    )
    .await?;
    assert_eq!(
        at_b.json()["active"],
        true,
        "replica B resolves A's reference token: {}",
        at_b.body
    );
    let revoked =
        http::post_form(&addr_b, "/revoke", &with(&auth, &[("token", &token)]), &[]).await?;
    assert_eq!(revoked.status, 200);
    let at_a = http::post_form(
        &addr_a,
        "/introspect",
        &with(&auth, &[("token", &token)]),
        &[],
    )
    .await?;
    assert_eq!(
        at_a.json(),
        serde_json::json!({"active": false}),
        "revoked at B, inactive at A"
    );
    Ok(())
}

#[tokio::test]
async fn redis_down_fails_closed_and_recovers_without_a_restart() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let redis_port = redis.port;
    let dir = test_dir("redis-down");
    redis_manifests(&dir.join("manifests"), redis_port, REFERENCE_CLIENT);
    let state = dir.join("state");
    let (_sts, addr) = replica(&dir.join("manifests"), &state, "sts-redis-down").await?;
    let worker = client_secret(&state, "default.orders-worker");
    let reporter = client_secret(&state, "default.reporter");
    let token = |id: &'static str, secret: String| {
        let addr = addr.clone();
        async move {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret.as_str()),
            ];
            http::post_form(&addr, "/token", &form, &[]).await
        }
    };
    let jwt = token("default.orders-worker", worker.clone()).await?.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    drop(redis);
    // Stateless work goes on: client_credentials with a secret and a JWT.
    let machine = token("default.orders-worker", worker.clone()).await?;
    assert_eq!(machine.status, 200, "{}", machine.body);
    // Stateful work fails closed with an OAuth error: a reference token, introspection (it
    // must consult the deny list) and revocation.
    let reference = token("default.reporter", reporter.clone()).await?;
    assert_eq!(
        (reference.status, reference.json()["error"].clone()),
        (503, "temporarily_unavailable".into()),
        "{}",
        reference.body
    );
    let form = [
        ("client_id", "default.orders-worker"),
        ("client_secret", worker.as_str()),
        ("token", jwt.as_str()),
    ];
    let introspection = http::post_form(&addr, "/introspect", &form, &[]).await?;
    assert_eq!(introspection.status, 503, "{}", introspection.body);
    let revocation = http::post_form(&addr, "/revoke", &form, &[]).await?;
    assert_eq!(revocation.status, 503, "{}", revocation.body);

    // Redis comes back on the same port: the STS recovers by itself.
    let _redis = RedisServer::start_on(redis_port).await?;
    wait_for(
        "reference tokens again",
        Duration::from_secs(60),
        || async {
            Ok((token("default.reporter", reporter.clone()).await?.status == 200).then_some(()))
        },
    )
    .await?;
    let introspection = http::post_form(&addr, "/introspect", &form, &[]).await?;
    assert_eq!(
        introspection.json()["active"],
        true,
        "{}",
        introspection.body
    );
    Ok(())
}

/// Guessing alice's password at both replicas, with a budget of three failures per username
/// and address: the fourth guess is refused, at either replica.
#[tokio::test]
async fn failed_sign_ins_at_one_replica_count_at_the_other() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let dir = test_dir("shared-login-failures");
    redis_manifests(&dir.join("manifests"), redis.port, "");
    let state = dir.join("state");
    let budget = ["--login-failures-per-user-address=3"];
    let (_a, addr_a) = replica_with(&dir.join("manifests"), &state, "sts-a", &budget).await?;
    let (_b, addr_b) = replica_with(&dir.join("manifests"), &state, "sts-b", &budget).await?;

    let mut browser = signet_tests::browserless::Person::default();
    let params = code_params(
        "default.web-app",
        "https://app.example.com/callback",
        "openid",
    );
    let started = browser.authorize(&addr_a, &params).await?;
    let login = browser
        .get(&addr_a, started.header("location").unwrap_or_default())
        .await?;
    assert_eq!(login.status, 200, "{}", login.body);
    let field = |name| signet_tests::browserless::hidden(&login.body, name).unwrap_or_default();
    let (interaction, csrf) = (field("interaction"), field("csrf"));
    let mut guess = async |addr: &str, password: &str| {
        let form = [
            ("interaction", interaction.as_str()),
            ("csrf", csrf.as_str()),
            ("username", "alice"),
            ("password", password),
        ];
        browser.post(addr, "/login", &form).await.map(|r| r.status)
    };
    for i in 0..3 {
        let addr = if i % 2 == 0 { &addr_a } else { &addr_b };
        assert_eq!(guess(addr, "wrong").await?, 401, "guess {i}");
    }
    assert_eq!(guess(&addr_a, "wrong").await?, 429);
    assert_eq!(
        guess(&addr_b, "correct horse battery staple").await?,
        429,
        "refused unchecked at the other replica too"
    );
    Ok(())
}

/// A redis whose `maxmemory-policy` may evict keys keeps the STS unready, says why on /readyz
/// and counts the refusal; once the server is set to `noeviction`, the next load serves.
#[tokio::test]
async fn a_store_that_may_evict_keys_is_refused_until_it_is_set_to_noeviction() -> anyhow::Result<()>
{
    let redis = RedisServer::start_with(
        signet_tests::free_port(),
        &["--maxmemory-policy", "allkeys-lru"],
    )
    .await?;
    let dir = test_dir("evicting-store");
    let manifests = dir.join("manifests");
    redis_manifests(&manifests, redis.port, "");
    let addr = format!("127.0.0.1:{}", signet_tests::free_port());
    let metrics = format!("127.0.0.1:{}", signet_tests::free_port());
    let sts = signet_tests::Process::spawn(
        std::path::Path::new(env!("CARGO_BIN_EXE_signet-sts")),
        "sts-evicting",
        &[
            format!("--manifests={}", manifests.display()),
            format!("--state-dir={}", dir.join("state").display()),
            format!("--listen={addr}"),
            format!("--metrics-addr={metrics}"),
        ],
        &[],
    )?;
    let why = "maxmemory-policy is allkeys-lru";
    wait_for(
        "/readyz to give the refusal",
        Duration::from_secs(30),
        || async {
            let ready = http::get(&addr, "/readyz").await?;
            Ok((ready.status == 503 && ready.body.contains(why)).then_some(()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", sts.output()))?;
    let refused: f64 = http::get(&metrics, "/metrics")
        .await?
        .body
        .lines()
        .find_map(|l| l.strip_prefix("signet_sts_snapshots_refused_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the refusal counter is exported");
    assert!(refused >= 1.0, "refusals counted: {refused}");
    let token = http::post_form(
        &addr,
        "/token",
        &[("grant_type", "client_credentials")],
        &[],
    )
    .await?;
    assert_eq!(token.status, 503, "nothing is served: {}", token.body);

    let client = redis::Client::open(redis.url())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query_async(&mut connection)
        .await?;
    // Any change to the folder makes the STS load it again, and connect again.
    let api_scope = manifests.join("api-scope.yaml");
    let text = std::fs::read_to_string(&api_scope)?;
    std::fs::write(&api_scope, format!("{text}\n# touched\n"))?;
    wait_for("the STS to serve", Duration::from_secs(30), || async {
        Ok((http::get(&addr, "/readyz").await?.status == 200).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", sts.output()))?;
    Ok(())
}
