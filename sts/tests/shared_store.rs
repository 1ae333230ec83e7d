//! Two STS replicas on one redis: a reference token issued by one is introspected and revoked
//! through the other, and a client assertion spent at one is refused at the other.

use std::path::Path;
use std::time::Duration;

use signet_tests::{Process, RedisServer, free_port, http, repo_root, wait_for};

fn manifests(dir: &Path, redis_port: u16) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != "token-service.yaml" {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let ts = std::fs::read_to_string(repo_root().join("examples/token-service.yaml")).unwrap();
    let ts = ts.replace(
        "  store:\n    type: memory\n",
        "  store:\n    type: redis\n    redis:\n      urlSecretRef: {name: redis, key: url}\n",
    );
    assert!(
        ts.contains("type: redis"),
        "the example's store section changed"
    );
    let secret = format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: redis}}\nstringData: {{url: \"redis://127.0.0.1:{redis_port}\"}}\n"
    );
    let reference = "---\napiVersion: signet.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: reporter}\nspec: {grantTypes: [client_credentials], allowedScopes: [orders.read], tokenEndpointAuthMethod: client_secret_post, accessTokenFormat: reference}\n";
    std::fs::write(
        dir.join("token-service.yaml"),
        format!("{ts}{secret}{reference}"),
    )
    .unwrap();
}

async fn replica(dir: &Path, state: &Path, name: &str) -> anyhow::Result<(Process, String)> {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let args = vec![
        format!("--manifests={}", dir.display()),
        format!("--state-dir={}", state.display()),
        format!("--listen={addr}"),
        "--metrics-addr=127.0.0.1:0".into(),
    ];
    let process = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_signet-sts")),
        name,
        &args,
        &[],
    )?;
    signet_tests::wait_ready(&addr).await?;
    Ok((process, addr))
}

#[tokio::test]
async fn any_replica_serves_any_request() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let redis_port = redis.port;

    let dir = std::env::temp_dir().join(format!("signet-shared-store-{}", std::process::id()));
    manifests(&dir.join("manifests"), redis_port);
    // One state folder: the replicas share keys and client secrets, as pods share a snapshot.
    let state = dir.join("state");
    let (a, addr_a) = replica(&dir.join("manifests"), &state, "sts-a").await?;
    let (_b, addr_b) = replica(&dir.join("manifests"), &state, "sts-b").await?;
    assert!(
        a.output().contains("redis store connected"),
        "{}",
        a.output()
    );

    let creds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("clients/default.reporter.json"))?)?;
    let secret = creds["client_secret"].as_str().unwrap();
    let auth = [("client_id", "default.reporter"), ("client_secret", secret)];
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
    let dir = std::env::temp_dir().join(format!("signet-redis-down-{}", std::process::id()));
    manifests(&dir.join("manifests"), redis_port);
    let state = dir.join("state");
    let (_sts, addr) = replica(&dir.join("manifests"), &state, "sts-redis-down").await?;
    let creds = |name: &str| -> anyhow::Result<String> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(
            state.join(format!("clients/default.{name}.json")),
        )?)?;
        Ok(v["client_secret"].as_str().unwrap().to_owned())
    };
    let (worker, reporter) = (creds("orders-worker")?, creds("reporter")?);
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
