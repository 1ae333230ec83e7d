//! The STS in a cluster: the operator and the STS run as processes against the test control
//! plane; the STS reads only its snapshot Secrets, by name (a Role with resourceNames), and
//! serves what `kubectl apply` declares.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use signet_tests::{
    Process, TestNamespace, http, namespaced_service_account_kubeconfig, shared, signet_api,
    signet_object, wait_for,
};

const TIMEOUT: Duration = Duration::from_secs(90);

async fn token(addr: &str, id: &str, secret: &str) -> anyhow::Result<http::Response> {
    http::post_form(
        addr,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ],
        &[],
    )
    .await
}

async fn credentials(secrets: &Api<Secret>, name: &str) -> anyhow::Result<(String, String)> {
    let secret = wait_for(&format!("Secret {name}"), TIMEOUT, || async {
        Ok(secrets.get_opt(name).await?)
    })
    .await?;
    let data = secret.data.unwrap_or_default();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    Ok((text("client_id"), text("client_secret")))
}

#[tokio::test]
async fn applied_clients_get_tokens_from_the_sts_and_deleted_ones_do_not() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "sts-in-cluster").await?.name;
    let applied = Instant::now();
    let out = cluster
        .kubectl()
        .args(["apply", "--server-side", "-n", &ns, "-f"])
        .arg(signet_tests::repo_root().join("examples"))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let kubeconfig = cluster.kubeconfig.to_string_lossy().into_owned();
    let _operator = Process::spawn(
        &signet_tests::workspace_bin("signet-operator"),
        "operator-sts-in-cluster",
        &[
            format!("--namespaces={ns}"),
            format!("--lease-namespace={ns}"),
            "--lease-name=op".into(),
            "--metrics-addr=127.0.0.1:0".into(),
        ],
        &[("KUBECONFIG", &kubeconfig)],
    )?;

    // The STS's identity may read its snapshot Secrets by name and nothing else.
    let mut names = vec!["signet-snapshot".to_owned()];
    names.extend((0..8).map(|i| format!("signet-snapshot-{i}")));
    let rules = json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"], "resourceNames": names}]);
    let sts_kubeconfig =
        namespaced_service_account_kubeconfig(&client, &cluster.kubeconfig, &ns, "sts", rules)
            .await?;
    let port = signet_tests::free_port();
    let addr = format!("127.0.0.1:{port}");
    let sts = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_signet-sts")),
        "sts-in-cluster",
        &[
            "--token-service=signet".into(),
            format!("--namespace={ns}"),
            format!("--listen={addr}"),
            "--metrics-addr=127.0.0.1:0".into(),
        ],
        &[("KUBECONFIG", &sts_kubeconfig.to_string_lossy())],
    )?;
    signet_tests::wait_ready(&addr).await?;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let (id, secret) = credentials(&secrets, "orders-worker-oidc").await?;
    let first = token(&addr, &id, &secret).await?;
    assert_eq!(first.status, 200, "{}", first.body);
    println!("examples applied -> first token: {:?}", applied.elapsed());

    // A client applied now gets tokens once the operator has compiled it.
    let created = Instant::now();
    let spec = json!({"grantTypes": ["client_credentials"], "allowedScopes": ["orders.read"], "tokenEndpointAuthMethod": "client_secret_post"});
    signet_api(&client, &ns, "OidcClient")
        .create(
            &PostParams::default(),
            &signet_object("OidcClient", "late", spec),
        )
        .await?;
    let (late_id, late_secret) = credentials(&secrets, "late-oidc").await?;
    wait_for("a token for the new client", TIMEOUT, || async {
        Ok((token(&addr, &late_id, &late_secret).await?.status == 200).then_some(()))
    })
    .await?;
    println!(
        "OidcClient created -> its first token: {:?}",
        created.elapsed()
    );

    // Deleted: refused.
    signet_api(&client, &ns, "OidcClient")
        .delete("late", &DeleteParams::default())
        .await?;
    let refused = wait_for("the deleted client refused", TIMEOUT, || async {
        let r = token(&addr, &late_id, &late_secret).await?;
        Ok((r.status == 401).then_some(r))
    })
    .await?;
    assert_eq!(refused.json()["error"], "invalid_client");
    assert!(
        !sts.output().contains(&late_secret),
        "no secret in the STS log"
    );
    Ok(())
}
