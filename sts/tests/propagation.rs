//! Propagation confirmed in status (issue 22), on the real control plane with the operator and
//! three STS processes: `kubectl wait --for=condition=Ready` returns only once every live
//! replica serves the object's current generation, so each replica issues for it right after
//! the wait, with no retry. A frozen replica (SIGSTOP) holds Ready at False until its report
//! expires, then drops out; let go (SIGCONT), it catches up and rejoins. A replica that refuses
//! the snapshot makes Ready False with reason SnapshotRefused, naming it; stopped, its report is
//! withdrawn and Ready is True again at once. kstatus (sigs.k8s.io/cli-utils' own rules) reads
//! the object as Current only when served, InProgress while it waits, Failed on a refusal.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use common::cluster::{credentials, deploy_with, spawn_sts, token};
use common::code_params;
use signet_tests::browserless::Person;
use signet_tests::{TestNamespace, http, shared, signet_api, signet_object, wait_for, wait_ready};

const TIMEOUT: Duration = Duration::from_secs(90);
const FIRST: &str = "https://first.example.com/callback";
const SECOND: &str = "https://second.example.com/callback";
const THIRD: &str = "https://third.example.com/callback";

/// The condition `type_` of OidcClient `app`, once it says `status` (and `reason`, if given)
/// for the object's current generation, and what kstatus (sigs.k8s.io/cli-utils, as Flux and
/// kpt read objects) says of the object in that very state.
async fn app_condition(
    client: &kube::Client,
    ns: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> anyhow::Result<(Value, String)> {
    let api = signet_api(client, ns, "OidcClient");
    let what = format!("app {type_}={status} {reason:?}");
    let (condition, object) = wait_for(&what, TIMEOUT, || async {
        let app = api.get("app").await?;
        let generation = app.metadata.generation;
        let found = app.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == type_)
            .cloned();
        let found = found.filter(|c| {
            c["status"] == status
                && reason.is_none_or(|r| c["reason"] == r)
                && c["observedGeneration"].as_i64() == generation
        });
        Ok(found.map(|c| (c, serde_json::to_value(&app))))
    })
    .await?;
    Ok((condition, signet_tests::kstatus::kstatus(&object?)?))
}

/// `kubectl wait --for=condition=Ready oidcclient/app`, as a pipeline would.
fn kubectl_wait_ready(cluster: &signet_tests::SharedCluster, ns: &str) -> anyhow::Result<()> {
    let out = cluster
        .kubectl()
        .args([
            "wait",
            "--for=condition=Ready",
            "oidcclient/app",
            "-n",
            ns,
            "--timeout=90s",
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The TokenService's `status.serving` (`live serving the newest / live`).
async fn serving(client: &kube::Client, ns: &str, want: &str) -> anyhow::Result<Value> {
    let api = signet_api(client, ns, "TokenService");
    wait_for(&format!("TokenService serving {want}"), TIMEOUT, || async {
        let ts = api.get("signet").await?;
        Ok((ts.data["status"]["serving"] == want).then_some(ts.data["status"].clone()))
    })
    .await
}

/// The status of an authorization request for `app` with `redirect` at `addr`: 303 to the
/// login page for a registered redirect URI, 400 for another.
async fn authorize(addr: &str, id: &str, redirect: &str) -> anyhow::Result<u16> {
    let params = code_params(id, redirect, "openid");
    Ok(Person::default().authorize(addr, &params).await?.status)
}

#[tokio::test]
async fn ready_means_every_live_replica_serves_this_generation() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "propagation").await?.name;
    let test = "propagation";
    // A tenant namespace the operator also watches: what a tenant writes there must not count.
    let tenant = TestNamespace::create(&client, "propagation-tenant")
        .await?
        .name;
    let deployed = deploy_with(
        cluster.kubectl(),
        &cluster.kubeconfig,
        &client,
        &ns,
        test,
        &[],
        &[&tenant],
    )
    .await?;
    let kubeconfig = deployed.sts_kubeconfig.clone();
    let (_one, one, _) = spawn_sts(&kubeconfig, &ns, test, "propagation-1", &[])?;
    let (two_process, two, _) = spawn_sts(&kubeconfig, &ns, test, "propagation-2", &[])?;
    wait_ready(&one).await?;
    wait_ready(&two).await?;
    let replicas = [deployed.addr.clone(), one.clone(), two.clone()];
    serving(&client, &ns, "3/3").await?;
    // Signing keys too: Ready once every live replica publishes their versions.
    for key in ["signet-rs256", "signet-es256"] {
        let keys = signet_api(&client, &ns, "SigningKey");
        wait_for(&format!("SigningKey {key} served"), TIMEOUT, || async {
            let conditions = keys.get(key).await?.data["status"]["conditions"].clone();
            let served =
                conditions.as_array().into_iter().flatten().any(|c| {
                    c["type"] == "Ready" && c["status"] == "True" && c["reason"] == "Served"
                });
            Ok(served.then_some(()))
        })
        .await?;
    }

    // Applied, then waited for: at that instant every replica issues for it.
    let spec = json!({
        "grantTypes": ["authorization_code", "client_credentials"],
        "redirectUris": [FIRST],
        "allowedScopes": ["openid", "orders.read"],
        "tokenEndpointAuthMethod": "client_secret_post",
    });
    signet_api(&client, &ns, "OidcClient")
        .create(
            &PostParams::default(),
            &signet_object("OidcClient", "app", spec),
        )
        .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let (id, secret) = credentials(&secrets, "app-oidc", TIMEOUT).await?;
    kubectl_wait_ready(&cluster, &ns)?;
    for addr in &replicas {
        let issued = token(addr, &id, &secret).await?;
        assert_eq!(
            issued.status, 200,
            "{addr} right after the wait: {}",
            issued.body
        );
    }
    let (ready, verdict) = app_condition(&client, &ns, "Ready", "True", Some("Served")).await?;
    assert_eq!(verdict, "Current", "kstatus: served, so current");
    assert!(
        ready["message"]
            .as_str()
            .unwrap_or_default()
            .contains("every live replica"),
        "{ready}"
    );

    // One replica freezes; the redirect URI changes. Ready waits for it, by name...
    two_process.signal("STOP")?;
    let change = json!({"spec": {"redirectUris": [SECOND]}});
    signet_api(&client, &ns, "OidcClient")
        .patch("app", &PatchParams::default(), &Patch::Merge(&change))
        .await?;
    let (waiting, verdict) =
        app_condition(&client, &ns, "Ready", "False", Some("NotYetServed")).await?;
    assert_eq!(verdict, "InProgress", "kstatus: not current until served");
    let message = waiting["message"].as_str().unwrap_or_default();
    assert!(message.contains("propagation-2"), "{message}");
    app_condition(&client, &ns, "Reconciling", "True", Some("NotYetServed")).await?;
    // ...until its report expires: then the two live ones are every live replica.
    kubectl_wait_ready(&cluster, &ns)?;
    for addr in &replicas[..2] {
        assert_eq!(
            authorize(addr, &id, SECOND).await?,
            303,
            "{addr} serves the change"
        );
        assert_eq!(
            authorize(addr, &id, FIRST).await?,
            400,
            "{addr} forgot the old URI"
        );
    }
    let status = serving(&client, &ns, "2/2").await?;
    assert_eq!(
        status["replicas"].as_array().map(Vec::len),
        Some(2),
        "{status}"
    );

    // Let go, it catches up and rejoins.
    two_process.signal("CONT")?;
    let status = serving(&client, &ns, "3/3").await?;
    assert!(status.to_string().contains("propagation-2"), "{status}");
    assert_eq!(authorize(&two, &id, SECOND).await?, 303);
    app_condition(&client, &ns, "Ready", "True", Some("Served")).await?;

    // A tenant forges a report in its own namespace: a ghost replica of this TokenService that
    // serves nothing anyone wrote. Were it counted, nothing would be Ready again.
    let ghost = signet_crds::replica::to_lease(
        "signet",
        &signet_crds::replica::Report {
            replica: "ghost".into(),
            serving: Some("0".repeat(64)),
            ..Default::default()
        },
        &signet_crds::replica::Term {
            renewed: k8s_openapi::jiff::Timestamp::now(),
            acquired: k8s_openapi::jiff::Timestamp::now(),
            duration_secs: 180,
            pod: None,
        },
    );
    Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(client.clone(), &tenant)
        .create(&PostParams::default(), &ghost)
        .await?;

    // With all three live, a change is Ready only once all three serve it.
    let change = json!({"spec": {"redirectUris": [THIRD]}});
    signet_api(&client, &ns, "OidcClient")
        .patch("app", &PatchParams::default(), &Patch::Merge(&change))
        .await?;
    kubectl_wait_ready(&cluster, &ns)?;
    for addr in &replicas {
        assert_eq!(
            authorize(addr, &id, THIRD).await?,
            303,
            "{addr} right after the wait"
        );
    }
    let status = serving(&client, &ns, "3/3").await?;
    assert!(
        !status.to_string().contains("ghost"),
        "a tenant's report counted: {status}"
    );

    // A replica that refuses the snapshot is named, with its reason.
    let (mut refusing, refusing_addr, _) = spawn_sts(
        &kubeconfig,
        &ns,
        test,
        "propagation-3",
        &["--testing-schema-major=0"],
    )?;
    let (refused, verdict) =
        app_condition(&client, &ns, "Ready", "False", Some("SnapshotRefused")).await?;
    assert_eq!(verdict, "Failed", "kstatus: a refusal needs someone to act");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("propagation-3") && message.contains("schema"),
        "{message}"
    );
    app_condition(&client, &ns, "Stalled", "True", Some("SnapshotRefused")).await?;
    assert_eq!(http::get(&refusing_addr, "/readyz").await?.status, 503);
    // Stopped, it withdraws its report: no wait for its Lease to run out.
    refusing.terminate()?;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), &ns);
    let report = leases.get_opt("signet-sts-propagation-3").await?;
    assert!(
        report.is_none(),
        "its report is gone when it has exited: {report:?}"
    );
    app_condition(&client, &ns, "Ready", "True", Some("Served")).await?;
    drop(deployed);
    Ok(())
}
