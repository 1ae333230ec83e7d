//! Fields that cannot change after creation: an OidcClient's clientId (set, changed or
//! removed) and a SigningKey's algorithm.

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use signet_tests::{TestNamespace, refused_fields, shared, signet_api, signet_object};

fn assert_refused_on(
    result: Result<kube::api::DynamicObject, kube::Error>,
    field: &str,
    what: &str,
) {
    let error = result
        .err()
        .unwrap_or_else(|| panic!("{what}: the update was accepted"));
    let (code, fields) =
        refused_fields(&error).unwrap_or_else(|| panic!("{what}: not an API refusal: {error}"));
    assert_eq!(code, 422, "{what}: {error}");
    assert!(
        fields.iter().any(|f| f == field),
        "{what}: refused on {fields:?}, not on {field}"
    );
}

#[tokio::test]
async fn client_id_cannot_be_set_changed_or_removed_after_creation() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "client-id-immutable").await?;
    let api = signet_api(&client, &ns.name, "OidcClient");
    let base = json!({"grantTypes": ["client_credentials"]});
    let merge = |spec: serde_json::Value| Patch::Merge(json!({ "spec": spec }));

    api.create(
        &PostParams::default(),
        &signet_object("OidcClient", "without-id", base.clone()),
    )
    .await?;
    let set = api
        .patch(
            "without-id",
            &PatchParams::default(),
            &merge(json!({"clientId": format!("{}.late", ns.name)})),
        )
        .await;
    assert_refused_on(set, "spec.clientId", "setting clientId after creation");

    let mut with_id = base.clone();
    with_id["clientId"] = json!(format!("{}.fixed", ns.name));
    api.create(
        &PostParams::default(),
        &signet_object("OidcClient", "with-id", with_id),
    )
    .await?;
    let change = api
        .patch(
            "with-id",
            &PatchParams::default(),
            &merge(json!({"clientId": format!("{}.other", ns.name)})),
        )
        .await;
    assert_refused_on(change, "spec.clientId", "changing clientId");
    let remove = api
        .patch(
            "with-id",
            &PatchParams::default(),
            &merge(json!({"clientId": null})),
        )
        .await;
    assert_refused_on(remove, "spec.clientId", "removing clientId");

    // Near miss: other fields of the same object still change.
    api.patch(
        "with-id",
        &PatchParams::default(),
        &merge(json!({"displayName": "Renamed"})),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn signing_key_algorithm_cannot_change() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "algorithm-immutable").await?;
    let api = signet_api(&client, &ns.name, "SigningKey");
    api.create(
        &PostParams::default(),
        &signet_object("SigningKey", "key", json!({"algorithm": "ES256"})),
    )
    .await?;

    let change = api
        .patch(
            "key",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"algorithm": "RS256"}})),
        )
        .await;
    assert_refused_on(change, "spec.algorithm", "changing the algorithm");

    // Near miss: the rotation interval is not immutable.
    api.patch(
        "key",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"rotationInterval": "48h"}})),
    )
    .await?;
    Ok(())
}
