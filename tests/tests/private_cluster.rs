//! A private control plane is separate from the shared one, and is gone after drop.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use signet_tests::{PrivateCluster, TestNamespace, shared, signet_api};

#[tokio::test]
async fn private_control_plane_is_isolated_and_stops_on_drop() -> anyhow::Result<()> {
    let private = PrivateCluster::start("isolation").await?;
    let private_client = private.client().await?;
    let ns = TestNamespace::create(&private_client, "private-only").await?;
    // CRDs are installed there too.
    signet_api(&private_client, &ns.name, "OidcClient")
        .list(&Default::default())
        .await?;

    let shared_client = shared().await?.client().await?;
    assert!(
        Api::<Namespace>::all(shared_client)
            .get_opt(&ns.name)
            .await?
            .is_none()
    );

    let pids: Vec<u32> = std::fs::read_to_string(private.dir.join("pids"))?
        .lines()
        .map(|l| l.trim().parse())
        .collect::<Result<_, _>>()?;
    assert_eq!(
        pids.len(),
        3,
        "etcd, kube-apiserver and kube-controller-manager"
    );
    drop(private);
    for pid in pids {
        assert!(!runs(pid), "process {pid} still runs after drop");
    }
    Ok(())
}

/// A second control plane acts as another cluster: its ServiceAccount tokens carry its own
/// issuer, and the shared one's still say `https://kubernetes.default.svc`.
#[tokio::test]
async fn a_private_control_plane_can_be_another_cluster_with_its_own_issuer() -> anyhow::Result<()>
{
    let east = PrivateCluster::start_as_issuer("east", "https://east.clusters.test").await?;
    let iss = |kubectl: std::process::Command| -> anyhow::Result<serde_json::Value> {
        let mut kubectl = kubectl;
        let out = kubectl
            .args(["create", "token", "default", "-n", "default"])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout)?;
        Ok(signet_tests::http::jwt_claims(token.trim())["iss"].clone())
    };
    // The default ServiceAccount appears once the controller manager made it.
    let east_iss = signet_tests::wait_for(
        "east's default ServiceAccount",
        std::time::Duration::from_secs(60),
        || async { Ok(iss(east.kubectl()).ok()) },
    )
    .await?;
    assert_eq!(east_iss, "https://east.clusters.test");
    let shared = shared().await?;
    assert_eq!(iss(shared.kubectl())?, "https://kubernetes.default.svc");
    Ok(())
}

/// Whether `pid` runs; an exited process that nobody reaped (a zombie) does not.
fn runs(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name: "pid (comm) S ...".
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}
