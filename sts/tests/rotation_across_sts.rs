//! Acceptance item 3 across the STS: in the cluster, with second-scale key durations, a jose
//! verifier whose JWKS cache lives as long as the JWKS max-age verifies every token issued
//! during three rotations; with propagationTime shorter than the max-age, the same verifier
//! fails (the negative control that shows the test bites).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;
use signet_tests::{
    Process, TestNamespace, repo_root, shared, signet_api, signet_object, wait_for,
};

const MAX_AGE: u64 = 3;
const TIMEOUT: Duration = Duration::from_secs(90);

/// Runs one TokenService with the given propagationTime and returns the verifier's summary.
async fn run(
    client: &Client,
    kubeconfig: &Path,
    name: &str,
    propagation: &str,
) -> anyhow::Result<serde_json::Value> {
    let ns = TestNamespace::create(client, name).await?.name;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let create = |kind: &str, name: &str, spec: serde_json::Value| {
        let (client, ns, kind, name) =
            (client.clone(), ns.clone(), kind.to_owned(), name.to_owned());
        async move {
            signet_api(&client, &ns, &kind)
                .create(&PostParams::default(), &signet_object(&kind, &name, spec))
                .await
        }
    };
    create(
        "TokenService",
        "signet",
        json!({
            "issuer": issuer, "jwksMaxAge": format!("{MAX_AGE}s"), "signingKeys": ["key"],
            "idTokenSigningAlg": "ES256", "accessTokenSigningAlg": "ES256",
        }),
    )
    .await?;
    create("SigningKey", "key", json!({"algorithm": "ES256", "rotationInterval": "8s", "propagationTime": propagation, "retentionTime": "20s"})).await?;
    create(
        "ApiScope",
        "api",
        json!({"name": "api.read", "audience": "https://api.example"}),
    )
    .await?;
    create("OidcClient", "machine", json!({"grantTypes": ["client_credentials"], "allowedScopes": ["api.read"], "tokenEndpointAuthMethod": "client_secret_post"})).await?;

    let kc = kubeconfig.to_string_lossy().into_owned();
    let _operator = Process::spawn(
        &signet_tests::workspace_bin("signet-operator"),
        &format!("operator-{name}"),
        &[
            format!("--namespaces={ns}"),
            format!("--lease-namespace={ns}"),
            "--lease-name=op".into(),
            "--metrics-addr=127.0.0.1:0".into(),
        ],
        &[("KUBECONFIG", &kc)],
    )?;
    let addr = format!("127.0.0.1:{port}");
    let _sts = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_signet-sts")),
        &format!("sts-{name}"),
        &[
            "--token-service=signet".into(),
            format!("--namespace={ns}"),
            format!("--listen={addr}"),
            "--metrics-addr=127.0.0.1:0".into(),
        ],
        &[("KUBECONFIG", &kc)],
    )?;
    signet_tests::wait_ready(&addr).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = wait_for("the client Secret", TIMEOUT, || async {
        Ok(secrets.get_opt("machine-oidc").await?)
    })
    .await?;
    let data = secret.data.unwrap_or_default();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();

    // Three rotations take about 3 x 8 s; run a little longer.
    let output = tokio::task::spawn_blocking({
        let (issuer, id, secret) = (issuer.clone(), text("client_id"), text("client_secret"));
        move || {
            Command::new("node")
                .arg(repo_root().join("tests/node/verifier.mjs"))
                .args([
                    &issuer,
                    &id,
                    &secret,
                    "https://api.example",
                    "30",
                    &MAX_AGE.to_string(),
                ])
                .output()
        }
    })
    .await??;
    assert!(
        output.status.success(),
        "verifier: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    println!("{name}: {summary}");
    Ok(summary)
}

#[tokio::test]
async fn verifier_never_fails_across_rotations_and_the_negative_control_does() -> anyhow::Result<()>
{
    let cluster = shared().await?;
    let client = cluster.client().await?;
    // propagationTime = max-age + 2 s of skew; the negative control announces keys for a
    // fifteenth of the max-age, so a cache fetched just before an announcement misses the key
    // at nearly every rotation (at a third, three rotations could all miss the window).
    let (good, bad) = tokio::join!(
        run(&client, &cluster.kubeconfig, "rotation-ok", "5s"),
        run(&client, &cluster.kubeconfig, "rotation-too-fast", "200ms"),
    );
    let (good, bad) = (good?, bad?);
    assert!(
        good["kids"].as_array().unwrap().len() >= 4,
        "three rotations: {good}"
    );
    assert_eq!(good["failed"], 0, "no verification failed: {good}");
    assert!(good["errors"].as_array().unwrap().is_empty(), "{good}");
    assert!(
        bad["kids"].as_array().unwrap().len() >= 4,
        "three rotations: {bad}"
    );
    assert!(
        bad["failed"].as_u64().unwrap() > 0,
        "the negative control must fail: {bad}"
    );
    Ok(())
}
