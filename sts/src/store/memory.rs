//! The in-process store. Valid for a single STS replica only: the startup log says so.

use std::collections::HashMap;
use std::sync::Mutex;

use super::Unavailable;
use super::backend::{Backend, Write};

/// Expiring records in memory: key to (expiry, text).
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    records: HashMap<String, (i64, String)>,
    /// When expired records were last swept out.
    swept: i64,
}

/// How often expired records are swept out. Between sweeps an expired record is still in the
/// map but never read: every operation checks the expiry of what it touches. So the cost of
/// expiry is one pass per interval, not one per call, however many records are pending.
const SWEEP_SECS: i64 = 10;

impl MemoryStore {
    /// Runs `f` on the records under the lock, which makes each operation atomic; `f` sees
    /// only live records through [`live`].
    fn with<T>(&self, now: i64, f: impl FnOnce(&mut HashMap<String, (i64, String)>) -> T) -> T {
        let mut inner = self.inner.lock().expect("store lock");
        if now >= inner.swept + SWEEP_SECS {
            inner.records.retain(|_, (expires, _)| *expires > now);
            inner.swept = now;
        }
        f(&mut inner.records)
    }
}

/// The live text under `key`.
fn live<'a>(records: &'a HashMap<String, (i64, String)>, key: &str, now: i64) -> Option<&'a str> {
    records
        .get(key)
        .filter(|(expires, _)| *expires > now)
        .map(|(_, text)| text.as_str())
}

/// Performs `write`: a record that is already expired keeps nothing.
fn store(records: &mut HashMap<String, (i64, String)>, write: Write, now: i64) {
    if write.expires > now {
        records.insert(write.key, (write.expires, write.value));
    } else {
        records.remove(&write.key);
    }
}

impl Backend for MemoryStore {
    async fn set(&self, write: Write, now: i64) -> Result<bool, Unavailable> {
        Ok(self.with(now, |r| {
            if write.only_new && live(r, &write.key, now).is_some() {
                return false;
            }
            store(r, write, now);
            true
        }))
    }

    async fn get(&self, key: &str, now: i64) -> Result<Option<String>, Unavailable> {
        Ok(self.with(now, |r| live(r, key, now).map(str::to_owned)))
    }

    async fn remove(
        &self,
        key: &str,
        now: i64,
        _keep: bool,
    ) -> Result<Option<String>, Unavailable> {
        Ok(self.with(now, |r| {
            r.remove(key)
                .filter(|(expires, _)| *expires > now)
                .map(|(_, v)| v)
        }))
    }

    async fn replace(&self, expected: &str, write: Write, now: i64) -> Result<bool, Unavailable> {
        Ok(self.with(now, |r| {
            if live(r, &write.key, now) != Some(expected) {
                return false;
            }
            store(r, write, now);
            true
        }))
    }

    async fn add(&self, key: &str, by: i64, expires: i64, now: i64) -> Result<i64, Unavailable> {
        Ok(self.with(now, |r| {
            let (was, until) = match r.get(key).filter(|(until, _)| *until > now) {
                Some((until, text)) => (text.parse::<i64>().unwrap_or(0), *until),
                None => (0, expires),
            };
            let sum = was.saturating_add(by);
            if sum <= 0 || until <= now {
                r.remove(key);
                return sum.max(0);
            }
            r.insert(key.to_owned(), (until, sum.to_string()));
            sum
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len(store: &MemoryStore) -> usize {
        store.inner.lock().unwrap().records.len()
    }

    #[tokio::test]
    async fn a_record_expires_at_its_time_and_the_map_is_swept_once_per_interval() {
        let store = MemoryStore::default();
        let now = 1_000;
        for i in 0..100 {
            let write = Write::always(format!("k{i}"), "v".into(), now + 5);
            assert!(store.set(write, now).await.unwrap());
        }
        store
            .set(Write::always("long".into(), "v".into(), now + 60), now)
            .await
            .unwrap();
        // Expired at its time, though not yet swept out.
        assert_eq!(store.get("k1", now + 5).await.unwrap(), None);
        assert_eq!(len(&store), 101, "no sweep before the interval");
        assert!(
            store
                .set(
                    Write::if_absent("k2".into(), "new".into(), now + 60),
                    now + 5
                )
                .await
                .unwrap(),
            "an expired key is free"
        );
        // The next operation after the interval sweeps.
        assert_eq!(
            store.get("long", now + SWEEP_SECS).await.unwrap(),
            Some("v".into())
        );
        assert_eq!(len(&store), 2, "only the live records are left");
    }
}
