//! One test suite for every backend: the memory store here, and a real redis-server started
//! for the test (it fails, not skips, without one when CI=true).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::{DenyList, MemoryStore, RedisStore, ReferenceTokens, ReplayCache, Store};

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
}

#[tokio::test]
async fn memory_store_passes_the_suite() {
    suite(&Store::Memory(MemoryStore::default()), 1_800_000_000).await;
}

/// A redis-server on a free loopback port, stopped on drop.
struct RedisServer(Child, u16);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_server() -> Option<RedisServer> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let spawned = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => Some(RedisServer(child, port)),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("redis-server is missing (the test command installs it)")
        }
        Err(_) => None,
    }
}

#[tokio::test]
async fn redis_store_passes_the_suite() {
    let Some(server) = redis_server() else {
        eprintln!("redis-server not installed: skipped outside CI");
        return;
    };
    let url = format!("redis://127.0.0.1:{}", server.1);
    let mut store = None;
    for _ in 0..100 {
        if let Ok(s) = RedisStore::connect(&url, "signet:test:").await {
            store = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // waiting for redis to listen
    }
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    suite(
        &Store::Redis(store.expect("redis-server accepts connections")),
        now,
    )
    .await;
}
