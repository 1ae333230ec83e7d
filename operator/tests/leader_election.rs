//! Two operators with different ServiceAccounts and the least-privilege ClusterRole share a
//! Lease: the API server's audit log shows writes only from the leader; when the leader is
//! killed, the other takes over and the next change lands.

mod common;

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use serde_json::json;
use signet_tests::{
    Process, TestNamespace, apply_cluster_role, repo_root, service_account_kubeconfig, shared,
    signet_api, signet_object, wait_for,
};

/// Writes (not reads, not the Lease) that `user` made in `ns`, per the audit log.
fn writes_by(audit_log: &std::path::Path, user: &str, ns: &str) -> Vec<String> {
    let text = std::fs::read_to_string(audit_log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| e["stage"] == "ResponseComplete" && e["user"]["username"] == user)
        .filter(|e| {
            matches!(
                e["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete")
            )
        })
        .filter(|e| e["objectRef"]["namespace"] == ns && e["objectRef"]["resource"] != "leases")
        .map(|e| {
            format!(
                "{} {}/{}",
                e["verb"].as_str().unwrap_or_default(),
                e["objectRef"]["resource"].as_str().unwrap_or_default(),
                e["objectRef"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

async fn holder(leases: &Api<Lease>, name: &str) -> anyhow::Result<Option<String>> {
    Ok(leases
        .get_opt(name)
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

fn leads(process: &Process, holder: &str) -> bool {
    holder.ends_with(&format!("-{}", process.pid()))
}

#[tokio::test]
async fn only_the_leader_writes_and_a_successor_takes_over() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "leader-election")
        .await?
        .name;
    let role = apply_cluster_role(&client, &repo_root().join("deploy/operator-rbac.yaml")).await?;
    let kubeconfig_a =
        service_account_kubeconfig(&client, &cluster.kubeconfig, &ns, "operator-a", &role).await?;
    let kubeconfig_b =
        service_account_kubeconfig(&client, &cluster.kubeconfig, &ns, "operator-b", &role).await?;
    signet_api(&client, &ns, "TokenService")
        .create(
            &PostParams::default(),
            &signet_object(
                "TokenService",
                "signet",
                json!({"issuer": "https://id.example.com"}),
            ),
        )
        .await?;
    let m2m = json!({"grantTypes": ["client_credentials"]});
    signet_api(&client, &ns, "OidcClient")
        .create(
            &PostParams::default(),
            &signet_object("OidcClient", "one", m2m.clone()),
        )
        .await?;

    let a = start_operator(&kubeconfig_a, &[&ns], &ns)?;
    let b = start_operator(&kubeconfig_b, &[&ns], &ns)?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let lease = format!("operator-{ns}");
    let first = wait_for("a leader", TIMEOUT, || async {
        holder(&leases, &lease).await
    })
    .await?;
    let (mut leader, follower, leader_user, follower_user) = if leads(&a, &first) {
        (
            a,
            b,
            format!("system:serviceaccount:{ns}:operator-a"),
            format!("system:serviceaccount:{ns}:operator-b"),
        )
    } else {
        assert!(
            leads(&b, &first),
            "the Lease holder {first} is one of the two operators"
        );
        (
            b,
            a,
            format!("system:serviceaccount:{ns}:operator-b"),
            format!("system:serviceaccount:{ns}:operator-a"),
        )
    };
    wait_for_snapshot(&client, &ns, "client one", |s| s.clients.len() == 1).await?;
    wait_for_condition(&client, &ns, "OidcClient", "one", "Compiled", "True", None).await?;

    let audit = cluster.audit_log();
    let by_leader = writes_by(&audit, &leader_user, &ns);
    assert!(
        by_leader
            .iter()
            .any(|w| w.contains("secrets/signet-snapshot")),
        "{by_leader:?}"
    );
    assert_eq!(
        writes_by(&audit, &follower_user, &ns),
        Vec::<String>::new(),
        "the follower wrote nothing"
    );
    assert!(!follower.output().contains("client Secret written"));

    // A crash of the leader: no release, so the successor waits for the Lease to expire.
    leader.kill()?;
    wait_for("the follower to take the Lease", TIMEOUT, || async {
        Ok(holder(&leases, &lease)
            .await?
            .filter(|h| leads(&follower, h)))
    })
    .await?;
    signet_api(&client, &ns, "OidcClient")
        .create(
            &PostParams::default(),
            &signet_object("OidcClient", "two", m2m),
        )
        .await?;
    wait_for_snapshot(&client, &ns, "client two, from the new leader", |s| {
        s.clients.len() == 2
    })
    .await?;
    assert!(
        !writes_by(&audit, &follower_user, &ns).is_empty(),
        "the new leader writes"
    );
    Ok(())
}
