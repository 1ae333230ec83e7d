//! The redis topologies the store is tested on form for real: a Sentinel set replicates and
//! fails over, a Cluster serves every slot and redirects a key to its node.

use std::time::Duration;

use signet_tests::redis_topologies::{Cluster, Sentinels, redis_cli, roles};
use signet_tests::wait_for;

#[tokio::test]
async fn a_sentinel_set_replicates_and_promotes_a_replica_when_the_primary_dies()
-> anyhow::Result<()> {
    let mut set = Sentinels::start().await?;
    let first = set.primary.port;
    assert_eq!(set.current_primary()?, first);
    redis_cli(first, &["SET", "signet:probe", "1"])?;
    for replica in &set.replicas {
        let port = replica.port;
        wait_for(
            "the write to reach a replica",
            Duration::from_secs(10),
            || async {
                Ok((redis_cli(port, &["GET", "signet:probe"])?.trim() == "1").then_some(()))
            },
        )
        .await?;
    }
    set.primary.kill();
    let promoted = wait_for(
        "a replica to be promoted",
        Duration::from_secs(60),
        || async { Ok(set.current_primary().ok().filter(|p| *p != first)) },
    )
    .await?;
    assert!(
        set.replicas.iter().any(|r| r.port == promoted),
        "{promoted}"
    );
    Ok(())
}

#[tokio::test]
async fn a_cluster_serves_every_slot_and_redirects_keys_to_their_node() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let seed = cluster.nodes[0].port;
    // Keys that hash to different slots land on different primaries; `-c` follows MOVED.
    for key in ["signet:{a}:x", "signet:{b}:x", "signet:{c}:x"] {
        redis_cli(seed, &["-c", "SET", key, "1"])?;
        assert_eq!(redis_cli(seed, &["-c", "GET", key])?.trim(), "1", "{key}");
    }
    assert_eq!(roles(&redis_cli(seed, &["CLUSTER", "NODES"])?), (3, 3));
    assert_eq!(cluster.seeds().len(), 6);
    Ok(())
}
