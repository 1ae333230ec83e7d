//! One test suite for every backend: the memory store here, and a real redis-server started
//! for the test (it fails, not skips, without one when CI=true).

use serde_json::json;

use super::{
    DenyList, Kind, MemoryStore, Records, RedisStore, ReferenceTokens, ReplayCache, Store,
};

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
        .put_reference("tok", json!({"sub": "a"}), now + 60, now)
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
        .put_reference("old", json!({}), now - 1, now)
        .await
        .unwrap();
    assert_eq!(store.get_reference("old", now).await.unwrap(), None);
    // Records: kinds do not collide; take is get-and-delete.
    let value = json!({"client_id": "c"});
    store
        .put(Kind::Code, "x", &value, now + 60, now)
        .await
        .unwrap();
    assert_eq!(store.get(Kind::Session, "x", now).await.unwrap(), None);
    assert_eq!(
        store.get(Kind::Code, "x", now).await.unwrap(),
        Some(value.clone())
    );
    assert_eq!(
        store.take(Kind::Code, "x", now).await.unwrap(),
        Some(value.clone())
    );
    assert_eq!(
        store.take(Kind::Code, "x", now).await.unwrap(),
        None,
        "taken once"
    );
    store
        .put(Kind::Session, "s", &value, now + 60, now)
        .await
        .unwrap();
    store.delete(Kind::Session, "s", now).await.unwrap();
    assert_eq!(store.get(Kind::Session, "s", now).await.unwrap(), None);
    store
        .put(Kind::Consent, "old", &value, now - 1, now)
        .await
        .unwrap();
    assert_eq!(store.get(Kind::Consent, "old", now).await.unwrap(), None);
}

#[tokio::test]
async fn memory_store_passes_the_suite() {
    suite(&Store::Memory(MemoryStore::default()), 1_800_000_000).await;
}

#[tokio::test]
async fn redis_store_passes_the_suite() {
    let server = match signet_tests::RedisServer::start().await {
        Ok(server) => server,
        Err(error) if std::env::var("CI").as_deref() == Ok("true") => panic!("{error}"),
        Err(error) => {
            eprintln!("{error}: skipped outside CI");
            return;
        }
    };
    let store = RedisStore::connect(&server.url(), "signet:test:")
        .await
        .expect("redis-server accepts connections");
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    suite(&Store::Redis(store), now).await;
}
