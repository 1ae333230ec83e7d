//! JWK Sets fetched by URL (clients' `jwksUri`, upstream providers' `jwks_uri`), shared by
//! every user of remote keys. Fetched under the outbound SSRF rules and cached per URL for
//! `ttl`; a JWS naming a `kid` the cache does not know refetches, at most once per
//! `unknown_kid_interval` (a client that just rotated is served; a flood of made-up kids is
//! not). A failed fetch backs off exponentially, serving the last good keys meanwhile, and
//! concurrent requests for one URL share one fetch.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::jwks::{self, PublicKey};
use crate::outbound::{Outbound, OutboundError};

/// Fetches a JWK Set document (the seam that lets tests count and fail fetches).
pub trait Fetch: Sync {
    /// GETs `url` as JSON, refusing non-public addresses unless `allow_private`.
    fn fetch(
        &self,
        url: &str,
        allow_private: bool,
    ) -> impl Future<Output = Result<Value, OutboundError>> + Send;

    /// What this fetcher trusts for TLS, when not the system's roots (a hash of a CA bundle):
    /// keys fetched under one trust are not served to a request that trusts another.
    fn anchor(&self) -> &str {
        ""
    }
}

impl Fetch for Outbound {
    fn fetch(
        &self,
        url: &str,
        allow_private: bool,
    ) -> impl Future<Output = Result<Value, OutboundError>> + Send {
        self.get_json(url, allow_private)
    }
}

/// How long keys are trusted and how retries are paced, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Keys fetched this long ago are refetched.
    pub ttl: i64,
    /// An unknown kid refetches only if the keys are at least this old.
    pub unknown_kid_interval: i64,
    /// The wait after a first failed fetch; doubled with each further failure...
    pub first_backoff: i64,
    /// ...up to this.
    pub max_backoff: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            ttl: 300,
            unknown_kid_interval: 30,
            // A key set that fails is asked again within seconds at first (a blip), then every
            // five minutes: soon enough to notice it is back, too rarely to hammer it.
            first_backoff: 5,
            max_backoff: 300,
        }
    }
}

impl Policy {
    /// The wait after `failures` consecutive failures (at least one).
    fn backoff(&self, failures: u32) -> i64 {
        let doublings = failures.saturating_sub(1).min(32);
        self.first_backoff
            .saturating_mul(1_i64 << doublings)
            .min(self.max_backoff)
    }
}

/// Why no keys could be had (the URL and the cause, for the log).
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The fetch failed and no keys were fetched before.
    #[error("fetching {url} failed: {cause}")]
    Unreachable {
        /// The JWK Set URL.
        url: String,
        /// Why.
        cause: String,
    },
    /// An earlier fetch failed, no keys were fetched before, and the next try is not due.
    #[error("{url} failed recently; next try at {retry_at}")]
    BackingOff {
        /// The JWK Set URL.
        url: String,
        /// When a request may fetch it again.
        retry_at: i64,
    },
}

/// Parsed keys, shared by every request that uses them.
pub type Keys = Arc<Vec<PublicKey>>;

/// What is known of one URL.
#[derive(Default)]
struct State {
    /// The last good keys and when they were fetched.
    keys: Option<(i64, Keys)>,
    /// Consecutive failed fetches.
    failures: u32,
    /// While failing, no fetch before this.
    retry_at: i64,
}

/// What a request does, given the state and its time.
enum Step {
    Use(Keys),
    Fail(JwksError),
    Fetch,
}

impl State {
    /// Pure: cached, backing off, or due for a fetch.
    fn step(&self, policy: &Policy, url: &str, kid: Option<&str>, now: i64) -> Step {
        if let Some((fetched, keys)) = &self.keys {
            let age = now - fetched;
            let knows_kid =
                kid.is_none_or(|k| keys.iter().any(|key| key.kid.as_deref() == Some(k)));
            if age < policy.ttl && (knows_kid || age < policy.unknown_kid_interval) {
                return Step::Use(keys.clone());
            }
        }
        if self.failures > 0 && now < self.retry_at {
            // A stale copy is better than failing every client of a key set that is down.
            return match &self.keys {
                Some((_, keys)) => Step::Use(keys.clone()),
                None => Step::Fail(JwksError::BackingOff {
                    url: url.to_owned(),
                    retry_at: self.retry_at,
                }),
            };
        }
        Step::Fetch
    }

    /// Records a fetch made at `now`; the keys the request gets.
    fn record(
        &mut self,
        policy: &Policy,
        url: &str,
        result: Result<Value, OutboundError>,
        now: i64,
    ) -> Result<Keys, JwksError> {
        match result {
            Ok(document) => {
                let keys = Arc::new(jwks::parse(&document));
                *self = Self {
                    keys: Some((now, keys.clone())),
                    failures: 0,
                    retry_at: 0,
                };
                Ok(keys)
            }
            Err(error) => {
                self.failures = self.failures.saturating_add(1);
                self.retry_at = now.saturating_add(policy.backoff(self.failures));
                tracing::warn!(
                    %error,
                    failures = self.failures,
                    retry_at = self.retry_at,
                    "fetching a JWK Set failed"
                );
                match &self.keys {
                    Some((_, keys)) => Ok(keys.clone()),
                    None => Err(JwksError::Unreachable {
                        url: url.to_owned(),
                        cause: error.to_string(),
                    }),
                }
            }
        }
    }
}

/// One URL: its state, and the lock that makes its fetches one at a time.
#[derive(Default)]
struct Entry {
    state: Mutex<State>,
    fetching: tokio::sync::Mutex<()>,
}

/// The JWK Sets of every URL in use, by URL, by whether private targets were allowed (a
/// snapshot that stops allowing them does not reuse keys fetched from a private address) and
/// by the fetcher's TLS anchor.
#[derive(Default)]
pub struct RemoteJwks {
    policy: Policy,
    entries: Mutex<HashMap<(String, bool, String), Arc<Entry>>>,
}

impl RemoteJwks {
    /// A cache with its own timing (`default()` has the timing the STS uses).
    pub fn with_policy(policy: Policy) -> Self {
        Self {
            policy,
            entries: Mutex::default(),
        }
    }

    /// The keys at `url` for a JWS naming `kid` (if any), at `now`: cached, or fetched with
    /// `fetch`, one fetch at a time per URL.
    pub async fn keys(
        &self,
        fetch: &impl Fetch,
        url: &str,
        allow_private: bool,
        kid: Option<&str>,
        now: i64,
    ) -> Result<Keys, JwksError> {
        let entry = self
            .entries
            .lock()
            .expect("jwks entries lock")
            .entry((url.to_owned(), allow_private, fetch.anchor().to_owned()))
            .or_default()
            .clone();
        let step = || {
            entry
                .state
                .lock()
                .expect("jwks state lock")
                .step(&self.policy, url, kid, now)
        };
        match step() {
            Step::Use(keys) => return Ok(keys),
            Step::Fail(error) => return Err(error),
            Step::Fetch => {}
        }
        // Single flight: one request fetches, the others wait for it here.
        let _fetching = entry.fetching.lock().await;
        // The request that held the lock may have fetched, or failed and set a backoff.
        match step() {
            Step::Use(keys) => return Ok(keys),
            Step::Fail(error) => return Err(error),
            Step::Fetch => {}
        }
        let result = fetch.fetch(url, allow_private).await;
        entry
            .state
            .lock()
            .expect("jwks state lock")
            .record(&self.policy, url, result, now)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;
    use signet_crds::keygen;
    use signet_crds::v1alpha1::Algorithm;

    use super::*;

    const URL: &str = "https://keys.example/jwks";

    /// Counts fetches; answers `document`, or fails while it is `None`; with a `gate`, each
    /// fetch waits for a permit of it.
    #[derive(Default)]
    struct Counting {
        calls: AtomicUsize,
        document: Mutex<Option<Value>>,
        gate: Option<tokio::sync::Semaphore>,
    }

    impl Counting {
        fn serving(document: Option<Value>) -> Self {
            Self {
                document: Mutex::new(document),
                ..Self::default()
            }
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl Fetch for Counting {
        async fn fetch(&self, url: &str, _: bool) -> Result<Value, OutboundError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                gate.acquire().await.expect("the gate stays open").forget();
            }
            self.document
                .lock()
                .unwrap()
                .clone()
                .ok_or_else(|| OutboundError::Failed {
                    url: url.to_owned(),
                    message: "status 503".into(),
                })
        }
    }

    fn document() -> (String, Value) {
        let key = keygen::generate(Algorithm::ES256, None).unwrap();
        (key.kid, json!({"keys": [key.public_jwk]}))
    }

    #[tokio::test]
    async fn keys_are_cached_for_the_ttl_and_an_unknown_kid_refetches_at_most_every_interval() {
        let (kid, doc) = document();
        let fetch = Counting::serving(Some(doc));
        let cache = RemoteJwks::default();
        let kid = Some(kid.as_str());
        assert_eq!(
            cache.keys(&fetch, URL, false, kid, 0).await.unwrap().len(),
            1
        );
        cache.keys(&fetch, URL, false, kid, 299).await.unwrap();
        cache.keys(&fetch, URL, false, None, 299).await.unwrap();
        assert_eq!(fetch.calls(), 1, "cached within the TTL");
        cache
            .keys(&fetch, URL, false, Some("new"), 29)
            .await
            .unwrap();
        assert_eq!(
            fetch.calls(),
            1,
            "an unknown kid within 30 s of a fetch waits"
        );
        cache
            .keys(&fetch, URL, false, Some("new"), 30)
            .await
            .unwrap();
        assert_eq!(fetch.calls(), 2, "an unknown kid after 30 s refetches");
        cache.keys(&fetch, URL, false, kid, 329).await.unwrap();
        assert_eq!(fetch.calls(), 2);
        cache.keys(&fetch, URL, false, kid, 330).await.unwrap();
        assert_eq!(fetch.calls(), 3, "refetched after the TTL");
        cache.keys(&fetch, URL, true, kid, 330).await.unwrap();
        assert_eq!(
            fetch.calls(),
            4,
            "keys fetched under the other rule are not reused"
        );
    }

    #[tokio::test]
    async fn a_failed_refetch_serves_the_last_good_keys() {
        let (kid, doc) = document();
        let fetch = Counting::serving(Some(doc));
        let cache = RemoteJwks::default();
        cache.keys(&fetch, URL, false, None, 0).await.unwrap();
        *fetch.document.lock().unwrap() = None;
        let stale = cache.keys(&fetch, URL, false, None, 300).await.unwrap();
        assert_eq!(stale[0].kid.as_deref(), Some(kid.as_str()));
        assert!(
            cache
                .keys(&fetch, "https://other.example/jwks", false, None, 300)
                .await
                .is_err(),
            "a URL never fetched has no keys to fall back on"
        );
    }

    /// A jwksUri that stops answering is not asked again on every request once its keys are
    /// stale: each failure doubles the wait (5 s, 10 s, ... up to 5 minutes), the last good
    /// keys are served meanwhile, and a success starts over.
    #[tokio::test]
    async fn a_failing_url_backs_off_exponentially_serving_the_last_good_keys() {
        let (kid, doc) = document();
        let fetch = Counting::serving(Some(doc.clone()));
        let cache = RemoteJwks::default();
        cache.keys(&fetch, URL, false, None, 0).await.unwrap();
        *fetch.document.lock().unwrap() = None;
        let mut calls = 1;
        let mut failed_at = 300;
        for retry_at in [305, 315, 335, 375, 455, 615, 915, 1215] {
            let keys = cache
                .keys(&fetch, URL, false, None, failed_at)
                .await
                .unwrap();
            assert_eq!(
                keys[0].kid.as_deref(),
                Some(kid.as_str()),
                "the last good keys"
            );
            calls += 1;
            assert_eq!(fetch.calls(), calls, "fetched at {failed_at}");
            for t in [failed_at + 1, retry_at - 1] {
                cache.keys(&fetch, URL, false, None, t).await.unwrap();
                cache
                    .keys(&fetch, URL, false, Some("new"), t)
                    .await
                    .unwrap();
            }
            assert_eq!(fetch.calls(), calls, "not fetched again before {retry_at}");
            failed_at = retry_at;
        }
        *fetch.document.lock().unwrap() = Some(doc);
        cache.keys(&fetch, URL, false, None, 1215).await.unwrap();
        cache.keys(&fetch, URL, false, None, 1216).await.unwrap();
        assert_eq!(
            fetch.calls(),
            calls + 1,
            "fetched once when due, then cached"
        );
        *fetch.document.lock().unwrap() = None;
        cache.keys(&fetch, URL, false, None, 1515).await.unwrap();
        cache.keys(&fetch, URL, false, None, 1519).await.unwrap();
        cache.keys(&fetch, URL, false, None, 1520).await.unwrap();
        assert_eq!(
            fetch.calls(),
            calls + 3,
            "a success resets the backoff to 5 s"
        );
    }

    #[tokio::test]
    async fn a_url_that_never_answered_fails_without_a_fetch_while_backing_off() {
        let fetch = Counting::serving(None);
        let cache = RemoteJwks::default();
        assert!(cache.keys(&fetch, URL, false, None, 0).await.is_err());
        assert!(cache.keys(&fetch, URL, false, None, 4).await.is_err());
        assert_eq!(fetch.calls(), 1);
        assert!(cache.keys(&fetch, URL, false, None, 5).await.is_err());
        assert_eq!(fetch.calls(), 2);
    }

    /// Many requests at once for keys that are not cached: one outbound fetch, whose result
    /// (keys, or a failure and its backoff) every one of them gets.
    #[tokio::test]
    async fn concurrent_requests_for_one_url_make_one_fetch() {
        for document in [Some(document().1), None] {
            let fetch = Counting {
                gate: Some(tokio::sync::Semaphore::new(0)),
                ..Counting::serving(document.clone())
            };
            let cache = RemoteJwks::default();
            let requests = (0..50).map(|_| cache.keys(&fetch, URL, false, None, 0));
            let mut all = std::pin::pin!(futures::future::join_all(requests));
            // One poll runs every request until it fetches or waits for the fetch.
            assert!(futures::poll!(all.as_mut()).is_pending());
            fetch.gate.as_ref().unwrap().add_permits(50);
            let results = all.await;
            assert_eq!(fetch.calls(), 1, "one fetch for 50 requests");
            assert!(results.iter().all(|r| r.is_ok() == document.is_some()));
        }
    }
}
