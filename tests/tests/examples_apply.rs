//! Every manifest in examples/ is accepted by the real API server, through the built kubectl
//! with server-side apply, in a namespace of the test's own.

use signet_tests::{TestNamespace, repo_root, shared, signet_api};

/// `kubectl apply --server-side` of the manifests at `path` in `ns`, which must succeed.
fn apply_server_side(
    cluster: &signet_tests::SharedCluster,
    ns: &str,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let out = cluster
        .kubectl()
        .args(["apply", "--server-side", "--field-manager", "signet-tests"])
        .args(["-n", ns, "-f"])
        .arg(path)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn every_example_is_accepted_by_server_side_apply() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "examples").await?;
    let examples = repo_root().join("examples");

    apply_server_side(&cluster, &ns.name, &examples)?;

    // Each Signet object of each file now exists in the namespace.
    let mut expected = 0;
    for entry in std::fs::read_dir(&examples)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for doc in serde_norway::Deserializer::from_str(&std::fs::read_to_string(&path)?) {
            let value: serde_json::Value = serde::Deserialize::deserialize(doc)?;
            if value["apiVersion"] != "signet.dev/v1alpha1" {
                continue;
            }
            let kind = value["kind"].as_str().unwrap();
            let name = value["metadata"]["name"].as_str().unwrap();
            signet_api(&client, &ns.name, kind).get(name).await?;
            expected += 1;
        }
    }
    assert!(
        expected >= 5,
        "examples hold at least one object per kind, found {expected}"
    );
    Ok(())
}

/// examples/teams/ (namespaced: two team namespaces, a shared ApiScope, a client) is accepted
/// too; its namespaces are removed afterwards.
#[tokio::test]
async fn the_team_examples_are_accepted_by_server_side_apply() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let teams = repo_root().join("examples/teams");
    // Files apply in name order: the namespaces first.
    let out = cluster
        .kubectl()
        .args([
            "apply",
            "--server-side",
            "--field-manager",
            "signet-tests",
            "-f",
        ])
        .arg(&teams)
        .output()?;
    let cleanup = cluster
        .kubectl()
        .args(["delete", "namespace", "orders", "shop", "--wait=false"])
        .output();
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = cluster.client().await?;
    signet_api(&client, "orders", "ApiScope")
        .get("orders-write")
        .await?;
    signet_api(&client, "shop", "OidcClient")
        .get("orders-sync")
        .await?;
    cleanup?;
    Ok(())
}

/// examples/workload/ (a ServiceAccount, its OidcClient, a Deployment that projects the token) is
/// accepted in a namespace.
#[tokio::test]
async fn the_workload_example_is_accepted_by_server_side_apply() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = signet_tests::TestNamespace::create(&client, "workload-example")
        .await?
        .name;
    apply_server_side(&cluster, &ns, &repo_root().join("examples/workload"))?;
    let applied = signet_api(&client, &ns, "OidcClient")
        .get("orders-reporter")
        .await?;
    assert_eq!(
        applied.data["spec"]["workloadIdentity"]["serviceAccounts"],
        serde_json::json!(["orders-reporter"])
    );
    Ok(())
}

/// examples/delegation/ (token exchange: three ApiScopes, two of them delegating, and the
/// clients) is accepted as well.
#[tokio::test]
async fn the_delegation_example_is_accepted_by_server_side_apply() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "delegation-example")
        .await?
        .name;
    apply_server_side(&cluster, &ns, &repo_root().join("examples/delegation"))?;
    let payments = signet_api(&client, &ns, "ApiScope")
        .get("payments-charge")
        .await?;
    assert_eq!(
        payments.data["spec"]["delegation"]["allowedClients"],
        serde_json::json!([{"name": "orders-api"}])
    );
    let orders_api = signet_api(&client, &ns, "OidcClient")
        .get("orders-api")
        .await?;
    assert_eq!(
        orders_api.data["spec"]["grantTypes"],
        serde_json::json!(["urn:ietf:params:oauth:grant-type:token-exchange"])
    );
    Ok(())
}
