//! No secret material (client secrets, private keys, upstream secrets) appears in any status,
//! Event or log line of a run that creates and rotates client secrets.

mod common;

use common::*;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use signet_tests::{TestNamespace, shared, signet_api, wait_for};

#[tokio::test]
async fn no_secret_material_in_status_events_or_logs() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "secrecy").await?.name;
    apply_examples(&cluster, &ns);
    let mut secrets_to_hide = Vec::new();
    let operator = start_operator(&cluster.kubeconfig, &[&ns], &ns)?;
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

    // Rotate one client's secret so a previous secret exists too.
    let annotate = json!({"metadata": {"annotations": {"signet.dev/rotate-secret": "once"}}});
    signet_api(&client, &ns, "OidcClient")
        .patch("web-app", &PatchParams::default(), &Patch::Merge(&annotate))
        .await?;
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let rotated = wait_for("the rotated secret", TIMEOUT, || async {
        Ok(api
            .get("web-app-oidc")
            .await?
            .data
            .filter(|d| d.contains_key("previous_client_secret")))
    })
    .await?;
    for key in ["client_secret", "previous_client_secret"] {
        secrets_to_hide.push(String::from_utf8(rotated[key].0.clone())?);
    }
    // The private keys the operator generated: the base64 body of each PEM.
    let keys = api
        .list(&ListParams::default().labels("signet.dev/signing-key"))
        .await?;
    assert_eq!(keys.items.len(), 2, "one key version per SigningKey");
    for key in keys.items {
        let pem = String::from_utf8(key.data.unwrap()["private.pem"].0.clone())?;
        secrets_to_hide.extend(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .map(str::to_owned),
        );
    }
    let worker = api.get("orders-worker-oidc").await?.data.unwrap();
    secrets_to_hide.push(String::from_utf8(worker["client_secret"].0.clone())?);
    secrets_to_hide.push("replace-me-with-the-upstream-client-secret".into());
    wait_for_snapshot(&client, &ns, "the rotation in the snapshot", |s| {
        s.clients
            .iter()
            .any(|c| c.name == "web-app" && c.secret_hashes.len() == 2)
    })
    .await?;

    let mut seen = String::new();
    for kind in [
        "TokenService",
        "OidcClient",
        "ApiScope",
        "IdentityProvider",
        "SigningKey",
    ] {
        for object in signet_api(&client, &ns, kind)
            .list(&ListParams::default())
            .await?
        {
            seen.push_str(&object.data["status"].to_string());
        }
    }
    let events = Api::<Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await?;
    assert!(!events.items.is_empty(), "the run recorded Events");
    seen.push_str(&serde_json::to_string(&events.items)?);
    let log = operator.output();
    assert!(
        log.contains("client Secret written"),
        "the log covers the secret writes"
    );
    seen.push_str(&log);

    // Metrics: bounded labels (kinds and results), never object names.
    let addr = metrics_addr(&operator).expect("the operator logs its metrics address");
    assert_eq!(http_get(&addr, "/readyz").await?.0, 200);
    let (status, metrics) = http_get(&addr, "/metrics").await?;
    assert_eq!(status, 200);
    assert!(
        // No STS runs here, so nothing is served: every client counts as not ready.
        metrics
            .contains(r#"signet_operator_reconciles_total{kind="OidcClient",result="not_ready"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("signet_operator_snapshot_bytes"),
        "{metrics}"
    );
    for name in ["web-app", "orders-worker", &ns] {
        assert!(
            !metrics.contains(name),
            "object name {name} in a metric label"
        );
    }
    seen.push_str(&metrics);

    for secret in &secrets_to_hide {
        assert!(secret.len() >= 20, "a distinctive value: {secret}");
        assert!(
            !seen.contains(secret.as_str()),
            "secret material leaked into status, Events or logs"
        );
    }
    Ok(())
}
