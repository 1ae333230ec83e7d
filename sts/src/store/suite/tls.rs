//! The suite over TLS: a redis-server, a Sentinel set and a Cluster that speak TLS only, with
//! certificates of a throwaway CA the system's roots do not know.

use signet_crds::snapshot::RedisTopology;
use signet_tests::TestPki;

use super::{RedisStore, Store, cluster_of, or_skip, sentinel_of, suite};

/// A throwaway CA and a server certificate for 127.0.0.1, in a folder of their own.
fn private_ca(name: &str) -> TestPki {
    let dir = std::env::temp_dir().join(format!("signet-redis-tls-{}-{name}", std::process::id()));
    TestPki::create(&dir)
}

/// The store at `url` and `topology`, whose servers `pki`'s CA signs: refused without that CA
/// (the system's roots do not know it), with a reason that does not carry the URL's password
/// (it reaches /readyz and the logs), then trusted with it as the caBundle, where it passes
/// the suite.
async fn trusted_with_its_ca_only(url: &str, topology: Option<&RedisTopology>, pki: &TestPki) {
    match RedisStore::open(url, topology, None, "signet:test:", None).await {
        Err(refused) => {
            let reason = refused.to_string();
            assert!(
                reason.contains("UnknownIssuer"),
                "refused for another reason: {reason}"
            );
            let info = redis::IntoConnectionInfo::into_connection_info(url).unwrap();
            if let Some(password) = info.redis_settings().password() {
                assert!(!reason.contains(password), "the password in: {reason}");
            }
        }
        Ok(_) => panic!("a certificate of a CA the store does not trust was accepted"),
    }
    let ca = std::fs::read_to_string(&pki.ca).unwrap();
    let store = RedisStore::open(url, topology, Some(&ca), "signet:test:", None)
        .await
        .expect("trusted with its CA");
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    suite(&Store::Redis(store), now).await;
}

/// A redis that speaks TLS only, with a certificate of a private CA and a password: the store
/// reaches it with that CA as its caBundle, and refuses it without (the system's roots do not
/// know it).
#[tokio::test]
async fn a_tls_redis_of_a_private_ca_is_trusted_with_its_ca_bundle_only() {
    let pki = private_ca("server");
    let started = signet_tests::RedisServer::start_tls(&pki, &["--requirepass", "tls-secret"]);
    let Some(server) = or_skip(started.await) else {
        return;
    };
    let url = server.url().replace("rediss://", "rediss://:tls-secret@");
    assert!(url.starts_with("rediss://:tls-secret@127.0.0.1:"), "{url}");
    trusted_with_its_ca_only(&url, None, &pki).await;
}

/// Sentinels and data nodes that speak TLS only (a private CA): the store asks the
/// sentinels over TLS and reaches the primary over TLS, both trusting the caBundle.
#[tokio::test]
async fn a_sentinel_set_over_tls_is_reached_with_its_ca_bundle() {
    let pki = private_ca("sentinel");
    let access = signet_tests::redis_topologies::Access {
        tls: Some(&pki),
        ..Default::default()
    };
    let started = signet_tests::redis_topologies::Sentinels::start_with(access).await;
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
    let topology = RedisTopology::Sentinel {
        master_name,
        addresses,
        username: None,
        password: None,
        tls: true,
    };
    trusted_with_its_ca_only("rediss://localhost", Some(&topology), &pki).await;
}

/// A Cluster whose nodes speak TLS only (a private CA): the store learns the slots and
/// reaches every primary over TLS, trusting the caBundle.
#[tokio::test]
async fn a_cluster_over_tls_is_reached_with_its_ca_bundle() {
    let pki = private_ca("cluster");
    let started = signet_tests::redis_topologies::Cluster::start_tls(&pki).await;
    let Some(cluster) = or_skip(started) else {
        return;
    };
    let topology = cluster_of(&cluster);
    trusted_with_its_ca_only("rediss://localhost", Some(&topology), &pki).await;
}
