//! A Redis Cluster moving slots under load: two STS processes serve the mixed load while
//! `redis-cli --cluster reshard` migrates a third of the slots, with their keys, from one
//! primary to another. The client follows MOVED and ASK, so no request is lost that its
//! caller retries once.

mod common;

use std::time::Duration;

use signet_tests::redis_topologies::{Cluster, redis_cli};
use signet_tests::wait_for;

use common::load::{MixedLoad, REFERENCE_CLIENT};
use common::{SharedStore, replica, store_manifests, test_dir};

/// Slots moved: about a third of the cluster, a whole primary's worth of keys in flight.
const SLOTS: &str = "5000";

/// The IDs of two primaries of `cluster`.
fn two_primaries(cluster: &Cluster) -> anyhow::Result<(String, String)> {
    let primaries: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|n| redis_cli(n.port, &["ROLE"]).is_ok_and(|r| r.starts_with("master")))
        .map(|n| redis_cli(n.port, &["CLUSTER", "MYID"]).map(|id| id.trim().to_owned()))
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(primaries.len() == 3, "primaries: {primaries:?}");
    Ok((primaries[0].clone(), primaries[1].clone()))
}

#[tokio::test]
async fn a_slot_migration_under_load_loses_no_request_retried_once() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let dir = test_dir("cluster-reshard");
    let store = SharedStore::cluster(&cluster);
    store_manifests(&dir.join("manifests"), &store, REFERENCE_CLIENT);
    let state = dir.join("state");
    let (_a, addr_a) = replica(&dir.join("manifests"), &state, "sts-reshard-a").await?;
    let (_b, addr_b) = replica(&dir.join("manifests"), &state, "sts-reshard-b").await?;
    let load = MixedLoad::start(&[addr_a, addr_b], &state, 1).await?;
    wait_for("the load to run", Duration::from_secs(60), || async {
        Ok((load.count(|_| true) >= 200).then_some(()))
    })
    .await?;

    let (from, to) = two_primaries(&cluster)?;
    let seed = cluster.nodes[0].port;
    let served_before = load.count(|_| true);
    let reshard = tokio::task::spawn_blocking(move || {
        let args = [
            "--cluster",
            "reshard",
            &format!("127.0.0.1:{seed}"),
            "--cluster-from",
            &from,
            "--cluster-to",
            &to,
            "--cluster-slots",
            SLOTS,
            "--cluster-yes",
        ];
        redis_cli(seed, &args)
    });
    let migrated = reshard.await??;
    let during = load.count(|_| true) - served_before;
    // Load on a while after the move, at the slots' new owner.
    let after_move = load.count(|_| true);
    wait_for(
        "requests after the move",
        Duration::from_secs(60),
        || async { Ok((load.count(|_| true) >= after_move + 200).then_some(())) },
    )
    .await?;
    let outcomes = load.stop().await?;

    let lost: Vec<_> = outcomes.iter().filter(|o| !o.ok).collect();
    let retried = outcomes.iter().filter(|o| o.attempts > 1).count();
    println!(
        "{} requests, {during} while {SLOTS} slots moved; {retried} needed their retry; {} lost",
        outcomes.len(),
        lost.len()
    );
    assert!(
        migrated.contains("Moving slot"),
        "the reshard moved slots: {migrated}"
    );
    assert!(during > 0, "requests were served while the slots moved");
    assert!(lost.is_empty(), "requests lost after one retry: {lost:?}");
    Ok(())
}
