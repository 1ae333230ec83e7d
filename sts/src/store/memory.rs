//! The in-process store. Valid for a single STS replica only: the startup log says so.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use super::{DenyList, Kind, Records, ReferenceTokens, ReplayCache, Unavailable, token_key};

/// Expiring records in memory.
#[derive(Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, (i64, Value)>>,
}

impl MemoryStore {
    fn with<T>(&self, now: i64, f: impl FnOnce(&mut HashMap<String, (i64, Value)>) -> T) -> T {
        let mut records = self.records.lock().expect("store lock");
        // Expired records go on every write-path call; the map stays bounded by live records.
        records.retain(|_, (expires, _)| *expires > now);
        f(&mut records)
    }

    /// Stores `value` under `key` until `expires` (unix seconds).
    async fn put_raw(
        &self,
        key: &str,
        value: Value,
        expires: i64,
        now: i64,
    ) -> Result<(), Unavailable> {
        self.with(now, |r| r.insert(key.to_owned(), (expires, value)));
        Ok(())
    }

    /// The live record under `key`.
    async fn get_raw(&self, key: &str, now: i64) -> Result<Option<Value>, Unavailable> {
        Ok(self.with(now, |r| r.get(key).map(|(_, v)| v.clone())))
    }

    /// Records `key` until `expires` if it is not already there; false when it was (a replay).
    /// Atomic: two requests racing on one key cannot both win.
    async fn insert_once(&self, key: &str, expires: i64, now: i64) -> Result<bool, Unavailable> {
        Ok(self.with(now, |r| {
            if r.contains_key(key) {
                return false;
            }
            r.insert(key.to_owned(), (expires, Value::Null));
            true
        }))
    }

    /// Removes the record under `key`.
    async fn delete_raw(&self, key: &str, now: i64) -> Result<(), Unavailable> {
        self.with(now, |r| r.remove(key));
        Ok(())
    }
}

impl ReplayCache for MemoryStore {
    async fn first_use(&self, id: &str, expires: i64, now: i64) -> Result<bool, Unavailable> {
        self.insert_once(&format!("once:{}", token_key(id)), expires, now)
            .await
    }
}

impl DenyList for MemoryStore {
    async fn deny(&self, jti: &str, until: i64, now: i64) -> Result<(), Unavailable> {
        self.put_raw(
            &format!("deny:{}", token_key(jti)),
            Value::Bool(true),
            until,
            now,
        )
        .await
    }

    async fn is_denied(&self, jti: &str, now: i64) -> Result<bool, Unavailable> {
        Ok(self
            .get_raw(&format!("deny:{}", token_key(jti)), now)
            .await?
            .is_some())
    }
}

impl ReferenceTokens for MemoryStore {
    async fn put_reference(
        &self,
        token: &str,
        claims: Value,
        expires: i64,
        now: i64,
    ) -> Result<(), Unavailable> {
        self.put_raw(&format!("ref:{}", token_key(token)), claims, expires, now)
            .await
    }

    async fn get_reference(&self, token: &str, now: i64) -> Result<Option<Value>, Unavailable> {
        self.get_raw(&format!("ref:{}", token_key(token)), now)
            .await
    }

    async fn delete_reference(&self, token: &str, now: i64) -> Result<(), Unavailable> {
        self.delete_raw(&format!("ref:{}", token_key(token)), now)
            .await
    }
}

fn record_key(kind: Kind, id: &str) -> String {
    format!("{}:{}", kind.tag(), token_key(id))
}

impl Records for MemoryStore {
    async fn put(
        &self,
        kind: Kind,
        id: &str,
        value: &Value,
        expires: i64,
        now: i64,
    ) -> Result<(), Unavailable> {
        self.put_raw(&record_key(kind, id), value.clone(), expires, now)
            .await
    }

    async fn get(&self, kind: Kind, id: &str, now: i64) -> Result<Option<Value>, Unavailable> {
        self.get_raw(&record_key(kind, id), now).await
    }

    async fn take(&self, kind: Kind, id: &str, now: i64) -> Result<Option<Value>, Unavailable> {
        Ok(self.with(now, |r| r.remove(&record_key(kind, id)).map(|(_, v)| v)))
    }

    async fn delete(&self, kind: Kind, id: &str, now: i64) -> Result<(), Unavailable> {
        self.delete_raw(&record_key(kind, id), now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_expire() {
        let store = MemoryStore::default();
        store.put_raw("a", Value::from(1), 100, 0).await.unwrap();
        assert_eq!(store.get_raw("a", 99).await.unwrap(), Some(Value::from(1)));
        assert_eq!(store.get_raw("a", 100).await.unwrap(), None);
        assert!(store.insert_once("j", 50, 0).await.unwrap());
        assert!(!store.insert_once("j", 50, 1).await.unwrap(), "single use");
        assert!(
            store.insert_once("j", 80, 50).await.unwrap(),
            "free again after expiry"
        );
        store.put_raw("b", Value::from(2), 100, 0).await.unwrap();
        store.delete_raw("b", 1).await.unwrap();
        assert_eq!(store.get_raw("b", 2).await.unwrap(), None);
    }
}
