//! The STS in a cluster: the operator and the STS run as processes against the test control
//! plane; the STS reads only its snapshot Secrets, by name (a Role with resourceNames), and
//! serves what `kubectl apply` declares.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
mod common;

use common::cluster::{credentials, deploy, token};
use signet_tests::{TestNamespace, shared, signet_api, signet_object, wait_for};

const TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn applied_clients_get_tokens_from_the_sts_and_deleted_ones_do_not() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "sts-in-cluster").await?.name;
    let applied = Instant::now();
    let deployed = deploy(
        cluster.kubectl(),
        &cluster.kubeconfig,
        &client,
        &ns,
        "sts-in-cluster",
    )
    .await?;
    let addr = deployed.addr.clone();

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let (id, secret) = credentials(&secrets, "orders-worker-oidc", TIMEOUT).await?;
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
    let (late_id, late_secret) = credentials(&secrets, "late-oidc", TIMEOUT).await?;
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
        !deployed.sts.output().contains(&late_secret),
        "no secret in the STS log"
    );
    Ok(())
}
