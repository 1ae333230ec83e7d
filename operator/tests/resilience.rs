//! The operator under restarts, bad input and hand edits: clear conditions, no crash loop, no
//! needless writes.

mod common;

use std::collections::BTreeMap;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use signet_tests::{TestNamespace, shared, signet_api, signet_object, wait_for};

/// resourceVersion of every object in `ns` that the operator could write, by kind/name.
async fn versions(client: &Client, ns: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for kind in [
        "TokenService",
        "OidcClient",
        "ApiScope",
        "IdentityProvider",
        "SigningKey",
    ] {
        for o in signet_api(client, ns, kind)
            .list(&ListParams::default())
            .await?
        {
            out.insert(
                format!("{kind}/{}", o.metadata.name.unwrap()),
                o.metadata.resource_version.unwrap(),
            );
        }
    }
    for s in Api::<Secret>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?
    {
        out.insert(
            format!("Secret/{}", s.metadata.name.unwrap()),
            s.metadata.resource_version.unwrap(),
        );
    }
    Ok(out)
}

/// Waits until every Signet object in `ns` has a status for its current generation.
async fn all_observed(client: &Client, ns: &str) -> anyhow::Result<()> {
    wait_for("every observedGeneration current", TIMEOUT, || async {
        for kind in ["TokenService", "OidcClient", "ApiScope", "IdentityProvider"] {
            for o in signet_api(client, ns, kind)
                .list(&ListParams::default())
                .await?
            {
                if o.data["status"]["observedGeneration"] != json!(o.metadata.generation) {
                    return Ok(None);
                }
            }
        }
        Ok(Some(()))
    })
    .await
}

#[tokio::test]
async fn restart_writes_nothing_when_nothing_changed() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "idempotence").await?.name;
    apply_examples(&cluster, &ns);
    let mut operator = start_operator(&cluster.kubeconfig, &[&ns], &ns)?;
    wait_for_snapshot(&client, &ns, "four clients", |s| s.clients.len() == 4).await?;
    all_observed(&client, &ns).await?;
    wait_for_condition(
        &client,
        &ns,
        "TokenService",
        "signet",
        "Ready",
        "True",
        None,
    )
    .await?;
    let exit = operator.terminate()?;
    assert!(
        exit.success(),
        "SIGTERM ends the operator cleanly: {exit:?}"
    );
    assert!(
        operator.output().contains("Lease released"),
        "{}",
        operator.output()
    );
    let before = versions(&client, &ns).await?;

    let restarted = start_operator(&cluster.kubeconfig, &[&ns], &ns)?;
    // Its first full pass after taking the Lease must write nothing.
    let first_pass = wait_for("the restarted operator's first pass", TIMEOUT, || async {
        Ok(restarted
            .output()
            .lines()
            .find(|l| l.contains("reconcile pass complete"))
            .map(str::to_owned))
    })
    .await?;
    assert!(first_pass.contains("writes=0"), "{first_pass}");
    assert_eq!(
        versions(&client, &ns).await?,
        before,
        "no object changed after the restart"
    );
    // A change made now lands, so the operator is live, and it is the only change.
    let patch = json!({"spec": {"displayName": "Renamed"}});
    signet_api(&client, &ns, "OidcClient")
        .patch("spa", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    wait_for_snapshot(&client, &ns, "the renamed client", |s| {
        s.clients
            .iter()
            .any(|c| c.name == "spa" && c.display_name.as_deref() == Some("Renamed"))
    })
    .await?;
    all_observed(&client, &ns).await?;
    let after = versions(&client, &ns).await?;
    let changed: Vec<_> = before
        .keys()
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect();
    // The client itself, the snapshot, and the TokenService's status that records the hash.
    assert_eq!(
        changed,
        vec![
            "OidcClient/spa",
            "Secret/signet-snapshot",
            "TokenService/signet"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn bad_input_gives_conditions_and_hand_edits_are_undone() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "bad-input").await?.name;
    let create = |kind: &'static str, name: &'static str, spec: serde_json::Value| {
        let client = client.clone();
        let ns = ns.clone();
        async move {
            signet_api(&client, &ns, kind)
                .create(&PostParams::default(), &signet_object(kind, name, spec))
                .await
        }
    };
    create(
        "TokenService",
        "signet",
        json!({"issuer": "https://id.example.com", "identityProviders": ["users"]}),
    )
    .await?;
    let by_reference = |secret: &str| json!({"grantTypes": ["client_credentials"], "secret": {"existingSecretRef": {"name": secret, "key": "s"}}});
    create("OidcClient", "missing", by_reference("nowhere")).await?;
    create("OidcClient", "short", by_reference("short")).await?;
    create(
        "OidcClient",
        "good",
        json!({"grantTypes": ["client_credentials"]}),
    )
    .await?;
    create("IdentityProvider", "users", json!({"type": "static", "static": {"usersSecretRef": {"name": "users", "key": "users.yaml"}}})).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let short: Secret = serde_json::from_value(
        json!({"metadata": {"name": "short"}, "stringData": {"s": "too short"}}),
    )?;
    secrets.create(&PostParams::default(), &short).await?;
    let mut operator = start_operator(&cluster.kubeconfig, &[&ns], &ns)?;

    wait_for_condition(
        &client,
        &ns,
        "OidcClient",
        "missing",
        "SecretReady",
        "False",
        Some("SecretNotFound"),
    )
    .await?;
    wait_for_condition(
        &client,
        &ns,
        "OidcClient",
        "short",
        "SecretReady",
        "False",
        Some("SecretTooShort"),
    )
    .await?;
    wait_for_condition(
        &client,
        &ns,
        "IdentityProvider",
        "users",
        "Ready",
        "False",
        Some("SecretNotFound"),
    )
    .await?;
    wait_for_condition(&client, &ns, "OidcClient", "good", "Compiled", "True", None).await?;

    // Fixing the input fixes the condition.
    let long = json!({"stringData": {"s": "a-referenced-secret-of-32-characters-or-more"}});
    secrets
        .patch("short", &PatchParams::default(), &Patch::Merge(&long))
        .await?;
    wait_for_condition(
        &client,
        &ns,
        "OidcClient",
        "short",
        "Compiled",
        "True",
        None,
    )
    .await?;

    // A snapshot edited by hand is restored.
    let good = wait_for_snapshot(&client, &ns, "two clients", |s| s.clients.len() == 2).await?;
    let tamper = json!({"data": {"snapshot.json.gz": "dGFtcGVyZWQ="}});
    secrets
        .patch(
            "signet-snapshot",
            &PatchParams::default(),
            &Patch::Merge(&tamper),
        )
        .await?;
    let restored = wait_for_snapshot(&client, &ns, "the restored snapshot", |_| true).await?;
    assert_eq!(restored.hash, good.hash);

    // The TokenService goes while clients remain: they say so; the operator keeps running.
    signet_api(&client, &ns, "TokenService")
        .delete("signet", &DeleteParams::default())
        .await?;
    wait_for_condition(
        &client,
        &ns,
        "OidcClient",
        "good",
        "Ready",
        "False",
        Some("NoTokenService"),
    )
    .await?;
    wait_for("the snapshot Secret to be collected", TIMEOUT, || async {
        Ok(secrets
            .get_opt("signet-snapshot")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    assert!(
        operator.terminate()?.success(),
        "the operator was still running and exits cleanly"
    );
    Ok(())
}
