//! Metric label sets stay bounded: a run with 1,000 distinct clients and bad requests adds no
//! series beyond those a run with a handful makes.

use std::path::Path;

use signet_tests::{Process, free_port, http};

fn manifests(dir: &Path, clients: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut yaml = String::from(
        "apiVersion: signet.dev/v1alpha1\nkind: TokenService\nmetadata: {name: signet}\nspec: {issuer: \"http://127.0.0.1:1\", signingKeys: [key], idTokenSigningAlg: ES256}\n---\n\
         apiVersion: signet.dev/v1alpha1\nkind: SigningKey\nmetadata: {name: key}\nspec: {algorithm: ES256}\n---\n\
         apiVersion: signet.dev/v1alpha1\nkind: ApiScope\nmetadata: {name: api}\nspec: {name: api.read, audience: \"https://api.example\"}\n",
    );
    for i in 0..clients {
        yaml.push_str(&format!(
            "---\napiVersion: signet.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: c{i}}}\nspec: {{grantTypes: [client_credentials], allowedScopes: [api.read], tokenEndpointAuthMethod: client_secret_post}}\n"
        ));
    }
    std::fs::write(dir.join("all.yaml"), yaml).unwrap();
}

/// The series on /metrics (sample lines, not comments).
async fn series(metrics: &str) -> anyhow::Result<usize> {
    let body = http::get(metrics, "/metrics").await?.body;
    Ok(body
        .lines()
        .filter(|l| l.starts_with("signet_sts_"))
        .count())
}

#[tokio::test]
async fn series_do_not_grow_with_clients_or_bad_requests() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("signet-metrics-{}", std::process::id()));
    manifests(&dir.join("manifests"), 1000);
    let (port, metrics_port) = (free_port(), free_port());
    let addr = format!("127.0.0.1:{port}");
    let metrics = format!("127.0.0.1:{metrics_port}");
    let state = dir.join("state");
    let args = vec![
        format!("--manifests={}", dir.join("manifests").display()),
        format!("--state-dir={}", state.display()),
        format!("--listen={addr}"),
        format!("--metrics-addr={metrics}"),
    ];
    let _sts = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_signet-sts")),
        "sts-metrics",
        &args,
        &[],
    )?;
    signet_tests::wait_ready(&addr).await?;
    let run = |range: std::ops::Range<usize>| {
        let (addr, state) = (addr.clone(), state.clone());
        async move {
            for i in range {
                let id = format!("default.c{i}");
                let creds: serde_json::Value = serde_json::from_slice(&std::fs::read(
                    state.join(format!("clients/{id}.json")),
                )?)?;
                let secret = creds["client_secret"].as_str().unwrap().to_owned();
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                    ("client_secret", secret.as_str()),
                ];
                assert_eq!(
                    http::post_form(&addr, "/token", &form, &[]).await?.status,
                    200
                );
                // And bad requests of every kind the public sees: a wrong secret, an unknown
                // path, an unknown client.
                let wrong = [
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                    ("client_secret", "x"),
                ];
                http::post_form(&addr, "/token", &wrong, &[]).await?;
                http::get(&addr, &format!("/no/such/path/{i}")).await?;
                let stranger = format!("stranger-{i}");
                let unknown = [
                    ("grant_type", "client_credentials"),
                    ("client_id", stranger.as_str()),
                    ("client_secret", "x"),
                ];
                http::post_form(&addr, "/token", &unknown, &[]).await?;
            }
            anyhow::Ok(())
        }
    };
    run(0..5).await?;
    let few = series(&metrics).await?;
    run(5..1000).await?;
    let many = series(&metrics).await?;
    assert!(few > 0);
    assert_eq!(few, many, "series grew with the number of clients or paths");
    Ok(())
}
