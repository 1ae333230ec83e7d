//! One test suite for every backend: the memory store here, and a real redis-server started
//! for the test (it fails, not skips, without one when CI=true).

use serde::{Deserialize, Serialize};
use serde_json::json;

use signet_crds::snapshot::{RedisTopology, WaitForReplicas};

use super::{Kind, MemoryStore, Record, RedisStore, Store, key};

mod tls;

/// A record type of the suite's own.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Note {
    text: String,
}

impl Record for Note {
    const KIND: Kind = Kind::Code;
}

/// Another record type, in another kind.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Other {
    text: String,
}

impl Record for Other {
    const KIND: Kind = Kind::Session;
}

/// The suite's record kind read as another shape.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Strict {
    number: i64,
}

impl Record for Strict {
    const KIND: Kind = Kind::Code;
}

fn note(text: &str) -> Note {
    Note { text: text.into() }
}

/// Runs every store operation at `now` (real time for redis, whose expiry uses the clock).
async fn suite(store: &Store, now: i64) {
    // Single use: the first wins, the second loses, until expiry.
    assert!(store.first_use("jti-1", now + 60, now).await.unwrap());
    assert!(!store.first_use("jti-1", now + 60, now + 1).await.unwrap());
    assert!(
        store.first_use("jti-2", now + 60, now).await.unwrap(),
        "ids are independent"
    );
    // Deny list.
    assert!(!store.is_denied("jti-3", now).await.unwrap());
    store.deny("jti-3", now + 60, now).await.unwrap();
    assert!(store.is_denied("jti-3", now).await.unwrap());
    // Reference tokens.
    store
        .put_reference("tok", &json!({"sub": "a"}), now + 60, now)
        .await
        .unwrap();
    assert_eq!(
        store.get_reference("tok", now).await.unwrap(),
        Some(json!({"sub": "a"}))
    );
    store.delete_reference("tok", now).await.unwrap();
    assert_eq!(store.get_reference("tok", now).await.unwrap(), None);
    // A record that is already expired is not kept.
    store
        .put_reference("old", &json!({}), now - 1, now)
        .await
        .unwrap();
    assert_eq!(store.get_reference("old", now).await.unwrap(), None);

    // Records: kinds do not collide; take is get-and-delete.
    store.put("x", &note("a"), now + 60, now).await.unwrap();
    assert_eq!(store.get::<Other>("x", now).await.unwrap(), None);
    assert_eq!(store.get::<Note>("x", now).await.unwrap(), Some(note("a")));
    assert_eq!(store.take::<Note>("x", now).await.unwrap(), Some(note("a")));
    assert_eq!(
        store.take::<Note>("x", now).await.unwrap(),
        None,
        "taken once"
    );
    store.put("s", &note("b"), now + 60, now).await.unwrap();
    store.delete::<Note>("s", now).await.unwrap();
    assert_eq!(store.get::<Note>("s", now).await.unwrap(), None);
    store.put("old", &note("c"), now - 1, now).await.unwrap();
    assert_eq!(store.get::<Note>("old", now).await.unwrap(), None);

    // Compare-and-set: the writer that read the current version wins; a writer holding an
    // older read loses and leaves the record as the winner wrote it.
    store.put("cas", &note("v1"), now + 60, now).await.unwrap();
    let first = store
        .get_versioned::<Note>("cas", now)
        .await
        .unwrap()
        .unwrap();
    let second = store
        .get_versioned::<Note>("cas", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.record, note("v1"));
    assert!(
        store
            .replace("cas", &first, &note("v2"), now + 60, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace("cas", &second, &note("stale"), now + 60, now)
            .await
            .unwrap(),
        "a write from an older read loses"
    );
    assert_eq!(
        store.get::<Note>("cas", now).await.unwrap(),
        Some(note("v2"))
    );
    // Nor does it win once the record is gone.
    let current = store
        .get_versioned::<Note>("cas", now)
        .await
        .unwrap()
        .unwrap();
    store.delete::<Note>("cas", now).await.unwrap();
    assert!(
        !store
            .replace("cas", &current, &note("again"), now + 60, now)
            .await
            .unwrap()
    );
    assert_eq!(store.get::<Note>("cas", now).await.unwrap(), None);
    // A record that no longer parses as its type (written by another version) is absent.
    store.put("bad", &note("d"), now + 60, now).await.unwrap();
    assert_eq!(store.get::<Strict>("bad", now).await.unwrap(), None);
    counters(store, now).await;
}

/// Counters: a fixed window from the first count, never below zero, and parallel adds that
/// each see the ones before them (so no two attempts read the same count).
async fn counters(store: &Store, now: i64) {
    assert_eq!(store.count("c", 1, now + 60, now).await.unwrap(), 1);
    assert_eq!(store.count("c", 1, now + 5, now).await.unwrap(), 2);
    assert_eq!(store.count("c", -1, now + 60, now).await.unwrap(), 1);
    assert_eq!(store.count("c", -5, now + 60, now).await.unwrap(), 0);
    assert_eq!(
        store.count("c", 1, now + 60, now).await.unwrap(),
        1,
        "gone at zero, so it starts over"
    );
    assert_eq!(
        store.count("fresh", -1, now + 60, now).await.unwrap(),
        0,
        "a decrement never makes a negative counter"
    );
    store.reset_count("c", now).await.unwrap();
    assert_eq!(store.count("c", 1, now + 60, now).await.unwrap(), 1);
    let sums =
        futures::future::join_all((0..20).map(|_| store.count("par", 1, now + 60, now))).await;
    let mut sums: Vec<i64> = sums.into_iter().map(Result::unwrap).collect();
    sums.sort();
    assert_eq!(
        sums,
        (1..=20).collect::<Vec<_>>(),
        "each add saw the ones before"
    );
}

#[tokio::test]
async fn a_counter_keeps_the_window_of_its_first_count() {
    let store = Store::Memory(MemoryStore::default());
    let now = 1_800_000_000;
    assert_eq!(store.count("w", 1, now + 10, now).await.unwrap(), 1);
    assert_eq!(store.count("w", 1, now + 100, now + 9).await.unwrap(), 2);
    assert_eq!(
        store.count("w", 1, now + 100, now + 10).await.unwrap(),
        1,
        "expired at the first count's window, not extended by later counts"
    );
}

#[tokio::test]
async fn memory_store_passes_the_suite() {
    suite(&Store::Memory(MemoryStore::default()), 1_800_000_000).await;
}

#[tokio::test]
async fn redis_store_passes_the_suite() {
    let Some(server) = redis_or_skip().await else {
        return;
    };
    let store = RedisStore::connect(&server.url(), "signet:test:")
        .await
        .expect("redis-server accepts connections");
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    suite(&Store::Redis(store), now).await;
}

/// A real Redis Cluster, or None outside CI when redis-server is missing (in CI it must exist).
pub(super) async fn cluster_or_skip() -> Option<signet_tests::redis_topologies::Cluster> {
    or_skip(signet_tests::redis_topologies::Cluster::start().await)
}

fn cluster_of(cluster: &signet_tests::redis_topologies::Cluster) -> RedisTopology {
    RedisTopology::Cluster {
        nodes: cluster.seeds(),
    }
}

/// The same suite on three primaries with a replica each: every operation names one key, so
/// each runs on the node that owns its slot, atomic there. Writes wait for the one replica.
#[tokio::test]
async fn redis_cluster_store_passes_the_suite() {
    let Some(cluster) = cluster_or_skip().await else {
        return;
    };
    let wait = WaitForReplicas {
        replicas: 1,
        timeout_ms: 1000,
    };
    let topology = cluster_of(&cluster);
    let store = RedisStore::open(
        "redis://localhost",
        Some(&topology),
        None,
        "signet:test:",
        Some(wait),
    )
    .await
    .expect("the cluster accepts connections");
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    suite(&Store::Redis(store), now).await;
}

/// A Sentinel set (one primary, two replicas, three sentinels), or None outside CI when
/// redis-server is missing.
pub(super) async fn sentinels_or_skip() -> Option<signet_tests::redis_topologies::Sentinels> {
    or_skip(signet_tests::redis_topologies::Sentinels::start().await)
}

/// How a store finds the primary of `set`.
pub(super) fn sentinel_of(set: &signet_tests::redis_topologies::Sentinels) -> RedisTopology {
    RedisTopology::Sentinel {
        master_name: signet_tests::redis_topologies::Sentinels::MASTER.into(),
        addresses: set.sentinel_addrs(),
        username: None,
        password: None,
        tls: false,
    }
}

/// Sentinels and data nodes that each require a password: the URL's password reaches the
/// data nodes, the topology's the sentinels; without the sentinels' the store is refused.
#[tokio::test]
async fn a_sentinel_set_with_passwords_is_reached_with_both() {
    let started = signet_tests::redis_topologies::Sentinels::start_with_passwords(
        Some("data-secret"),
        Some("sentinel-secret"),
    )
    .await;
    let Some(set) = or_skip(started) else {
        return;
    };
    let RedisTopology::Sentinel {
        master_name,
        addresses,
        ..
    } = sentinel_of(&set)
    else {
        unreachable!("sentinel_of names sentinels")
    };
    let with = |password: Option<&str>| RedisTopology::Sentinel {
        master_name: master_name.clone(),
        addresses: addresses.clone(),
        username: None,
        password: password.map(|p| signet_crds::snapshot::Redacted(p.into())),
        tls: false,
    };
    let url = "redis://:data-secret@localhost";
    let without = RedisStore::open(url, Some(&with(None)), None, "signet:test:", None).await;
    match without {
        Err(refused) => assert!(
            refused.to_string().contains("Authentication required"),
            "refused for another reason: {refused}"
        ),
        Ok(_) => panic!("the sentinels answered a client without their password"),
    }
    let topology = with(Some("sentinel-secret"));
    let store = RedisStore::open(url, Some(&topology), None, "signet:test:", None)
        .await
        .expect("both passwords given");
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    suite(&Store::Redis(store), now).await;
}

/// Asserts that `opened` was refused because the store's `maxmemory-policy` is `policy`.
fn assert_refused_as_evicting(opened: Result<RedisStore, crate::store::Unavailable>, policy: &str) {
    match opened {
        Err(crate::store::Unavailable::Evicting(found)) => assert_eq!(found, policy),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a store that may evict keys was accepted"),
    }
}

/// A Sentinel-managed primary that may evict keys is refused like a single server.
#[tokio::test]
async fn a_sentinel_primary_that_may_evict_keys_is_refused() {
    let Some(set) = sentinels_or_skip().await else {
        return;
    };
    signet_tests::redis_topologies::redis_cli(
        set.primary.port,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    )
    .expect("CONFIG SET");
    let topology = sentinel_of(&set);
    let opened = RedisStore::open(
        "redis://localhost",
        Some(&topology),
        None,
        "signet:test:",
        None,
    );
    assert_refused_as_evicting(opened.await, "allkeys-lru");
}

/// The same suite through the sentinels, every write waiting for both replicas.
#[tokio::test]
async fn redis_sentinel_store_passes_the_suite() {
    let Some(set) = sentinels_or_skip().await else {
        return;
    };
    let wait = WaitForReplicas {
        replicas: 2,
        timeout_ms: 1000,
    };
    let topology = sentinel_of(&set);
    let store = RedisStore::open(
        "redis://localhost",
        Some(&topology),
        None,
        "signet:test:",
        Some(wait),
    )
    .await
    .expect("the sentinels name a primary that accepts connections");
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    suite(&Store::Redis(store), now).await;
}

/// One primary of a cluster that may evict keys is enough to refuse the cluster.
#[tokio::test]
async fn a_cluster_with_one_primary_that_may_evict_keys_is_refused() {
    let Some(cluster) = cluster_or_skip().await else {
        return;
    };
    let cli = signet_tests::redis_topologies::redis_cli;
    let primary = cluster
        .nodes
        .iter()
        .rev()
        .map(|n| n.port)
        .find(|port| cli(*port, &["ROLE"]).is_ok_and(|r| r.starts_with("master")))
        .expect("a cluster has primaries");
    cli(
        primary,
        &["CONFIG", "SET", "maxmemory-policy", "volatile-ttl"],
    )
    .expect("CONFIG SET");
    let topology = cluster_of(&cluster);
    let opened = RedisStore::open(
        "redis://localhost",
        Some(&topology),
        None,
        "signet:test:",
        None,
    );
    assert_refused_as_evicting(opened.await, "volatile-ttl");
}

/// A redis that may evict keys under memory pressure is refused, whatever else it does
/// right: an evicted single-use or deny-list key would reopen a replay.
#[tokio::test]
async fn a_redis_that_may_evict_keys_is_refused() {
    let args = ["--maxmemory-policy", "allkeys-lru"];
    let Some(server) = redis_or_skip_with(&args).await else {
        return;
    };
    let refused = RedisStore::connect(&server.url(), "signet:test:").await;
    assert_refused_as_evicting(refused, "allkeys-lru");
    let client = ::redis::Client::open(server.url()).expect("a redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis answers");
    let _: () = ::redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query_async(&mut connection)
        .await
        .expect("CONFIG SET");
    RedisStore::connect(&server.url(), "signet:test:")
        .await
        .expect("with noeviction the same server is accepted");
}

/// A redis-server for a test, or None outside CI when there is none (in CI it must exist).
async fn redis_or_skip() -> Option<signet_tests::RedisServer> {
    redis_or_skip_with(&[]).await
}

/// [`redis_or_skip`] with more of redis-server's arguments.
async fn redis_or_skip_with(args: &[&str]) -> Option<signet_tests::RedisServer> {
    or_skip(signet_tests::RedisServer::start_free(args).await)
}

/// A started service, or None outside CI when it could not start (in CI that fails the test).
pub(super) fn or_skip<T>(started: anyhow::Result<T>) -> Option<T> {
    match started {
        Ok(service) => Some(service),
        Err(error) if std::env::var("CI").as_deref() == Ok("true") => panic!("{error}"),
        Err(error) => {
            eprintln!("{error}: skipped outside CI");
            None
        }
    }
}

/// Waits until `check` holds, for at most ten seconds.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Waits until `store`'s copy of the deny list is trusted (subscribed, loaded, pinged).
async fn wait_trusted(name: &str, store: &Store, now: i64) {
    let Store::Redis(redis) = store else {
        panic!("{name} is not a redis store")
    };
    eventually(&format!("{name}'s copy is trusted"), async || {
        redis
            .denied
            .answer("deny:x", now, std::time::Instant::now())
            .is_some()
    })
    .await;
}

/// Two replicas on one redis: a deny at one reaches the other's copy, which answers without
/// asking redis (a deny written behind its back stays unseen there, while a replica that
/// starts later loads it); once redis is gone the copy is no longer trusted and the check
/// fails closed.
#[tokio::test]
async fn each_replica_keeps_a_copy_of_the_deny_list_that_it_trusts_only_while_subscribed() {
    let Some(server) = redis_or_skip().await else {
        return;
    };
    let prefix = "signet:mirror:";
    let connect = || async {
        Store::Redis(
            RedisStore::connect(&server.url(), prefix)
                .await
                .expect("redis-server accepts connections"),
        )
    };
    let (a, b) = (connect().await, connect().await);
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    wait_trusted("b", &b, now).await;

    a.deny("jti-a", now + 60, now).await.unwrap();
    assert!(
        a.is_denied("jti-a", now).await.unwrap(),
        "at once where written"
    );
    eventually("the deny reaches b", async || {
        b.is_denied("jti-a", now).await.unwrap()
    })
    .await;

    // A deny that is only in redis (no message): b's trusted copy does not ask.
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let hidden = format!("{prefix}{}", key("deny", "jti-hidden"));
    let _: () = redis::cmd("SET")
        .arg(&hidden)
        .arg("1")
        .arg("EX")
        .arg(60)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        !b.is_denied("jti-hidden", now).await.unwrap(),
        "answered by the copy"
    );
    // A replica that starts now loads both from redis before it trusts its copy.
    let c = connect().await;
    wait_trusted("c", &c, now).await;
    assert!(c.is_denied("jti-hidden", now).await.unwrap());
    assert!(c.is_denied("jti-a", now).await.unwrap());
    assert!(!c.is_denied("jti-other", now).await.unwrap());

    drop(server);
    eventually("without redis the check fails closed", async || {
        b.is_denied("jti-a", now).await.is_err()
    })
    .await;
}
