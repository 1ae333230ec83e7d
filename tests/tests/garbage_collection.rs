//! The control plane's controller manager is live: owner references are garbage-collected and
//! namespace deletion completes. Later tests rely on both (client Secrets owned by their
//! OidcClient; a namespace per test).

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use serde_json::json;
use signet_tests::{TestNamespace, shared, signet_api, signet_object, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn dependents_of_a_deleted_owner_are_collected() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "garbage-collection").await?;
    let clients = signet_api(&client, &ns.name, "OidcClient");
    let owner = clients
        .create(
            &PostParams::default(),
            &signet_object(
                "OidcClient",
                "owner",
                json!({"grantTypes": ["client_credentials"]}),
            ),
        )
        .await?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let dependent = ConfigMap {
        metadata: ObjectMeta {
            name: Some("dependent".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "signet.dev/v1alpha1".into(),
                kind: "OidcClient".into(),
                name: "owner".into(),
                uid: owner
                    .metadata
                    .uid
                    .clone()
                    .expect("created objects have a uid"),
                controller: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        },
        ..Default::default()
    };
    maps.create(&PostParams::default(), &dependent).await?;

    clients.delete("owner", &DeleteParams::background()).await?;
    wait_for(
        "the dependent ConfigMap to be collected",
        TIMEOUT,
        || async { Ok(maps.get_opt("dependent").await?.is_none().then_some(())) },
    )
    .await
}

#[tokio::test]
async fn namespace_deletion_completes_with_signet_objects_inside() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "namespace-deletion").await?;
    signet_api(&client, &ns.name, "SigningKey")
        .create(
            &PostParams::default(),
            &signet_object("SigningKey", "key", json!({})),
        )
        .await?;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(&ns.name, &DeleteParams::default())
        .await?;
    wait_for("the namespace to be gone", TIMEOUT, || async {
        Ok(namespaces.get_opt(&ns.name).await?.is_none().then_some(()))
    })
    .await
}
