//! Upgrade safety on the real control plane: an operator that writes the snapshot as the next
//! minor schema would (members this STS does not know, at several depths), and an STS of this
//! build, which must serve it with no refusal.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
mod common;

use common::cluster::{credentials, deploy_with, token};
use signet_tests::{TestNamespace, http, shared, signet_api, wait_for};

const TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn an_sts_serves_the_snapshot_of_a_newer_minor_operator() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "sts-newer-minor")
        .await?
        .name;
    let deployed = deploy_with(
        cluster.kubectl(),
        &cluster.kubeconfig,
        &client,
        &ns,
        "sts-newer-minor",
        &[("SIGNET_TESTING_NEWER_MINOR", "1")],
        &[],
    )
    .await?;

    // What the operator wrote really is a newer minor with unknown members.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let written = secrets.get("signet-snapshot").await?;
    let annotations = written.metadata.annotations.unwrap_or_default();
    let hash = annotations["signet.dev/snapshot-hash"].clone();
    let schema = &annotations["signet.dev/schema-version"];
    assert_ne!(
        schema,
        signet_crds::snapshot::SCHEMA_VERSION,
        "a newer minor"
    );
    assert!(schema.starts_with("1."), "{schema}");
    let mut json = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&written.data.unwrap()["snapshot.json.gz"].0[..]),
        &mut json,
    )?;
    let text = String::from_utf8(json)?;
    for field in ["futureSetting", "futureClientField", "futureKeyField"] {
        assert!(text.contains(field), "the written snapshot carries {field}");
    }

    // The STS serves exactly that hash, and the TokenService reports the same one.
    let readyz = wait_for("the STS serving the newer minor", TIMEOUT, || async {
        let r = http::get(&deployed.addr, "/readyz").await?;
        Ok(r.body.contains(&hash).then_some(r))
    })
    .await?;
    assert_eq!(readyz.status, 200);
    assert_eq!(readyz.body, format!("ok: snapshot {hash}"));
    // The operator writes the status after the Secret, so it may come a moment later.
    let api = signet_api(&client, &ns, "TokenService");
    wait_for(
        "the TokenService status naming that hash",
        TIMEOUT,
        || async {
            let ts = api.get("signet").await?;
            Ok((ts.data["status"]["snapshotHash"] == hash.as_str()).then_some(()))
        },
    )
    .await?;

    let (id, secret) = credentials(&secrets, "orders-worker-oidc", TIMEOUT).await?;
    let issued = token(&deployed.addr, &id, &secret).await?;
    assert_eq!(issued.status, 200, "{}", issued.body);

    // The operator's very first snapshot may precede its signing keys ("no active ES256
    // key"), as on any fresh install; no snapshot is refused for its hash, schema or JSON.
    let metrics = http::get(&deployed.metrics_addr, "/metrics").await?.body;
    let counted: u64 = metrics
        .lines()
        .find(|l| l.starts_with("signet_sts_snapshots_refused_total"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .expect("the refusal counter is exported");
    let log = deployed.sts.output();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("snapshot refused"))
        .collect();
    assert_eq!(refusals.len() as u64, counted, "{log}");
    for line in refusals {
        assert!(line.contains("reason=no active"), "refused: {line}");
    }
    Ok(())
}
