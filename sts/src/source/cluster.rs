//! In-cluster source: watch the TokenService's snapshot Secrets by name and install a
//! snapshot only when every shard it needs carries the same hash (never a torn snapshot).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use signet_crds::snapshot::Wire;
use signet_crds::snapshot_secret::{DATA_KEY, HASH_ANNOTATION, SHARD_ANNOTATION};
pub use signet_crds::snapshot_secret::{MAX_SHARDS, secret_names};

use crate::app::App;
use crate::loaded::Refused;

/// First delay before watching again after an error.
const RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest delay between attempts, before jitter: a client created just after an API server outage is
/// served within seconds, while the outage costs each watch one attempt every few seconds.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// One snapshot Secret as seen.
#[derive(Debug, Clone)]
pub struct Part {
    hash: String,
    index: usize,
    count: usize,
    bytes: Vec<u8>,
}

/// The snapshot Secrets seen so far, by name.
type Seen = BTreeMap<String, Part>;

/// The hash and the compressed snapshot, if the Secrets seen make a whole one: the single
/// Secret, or all shards `0..n` with one hash.
pub fn assemble(token_service: &str, seen: &Seen) -> Option<(String, Vec<u8>)> {
    if let Some(single) = seen.get(&format!("{token_service}-snapshot")) {
        return Some((single.hash.clone(), single.bytes.clone()));
    }
    let first = seen.get(&format!("{token_service}-snapshot-0"))?;
    let mut joined = Vec::new();
    for i in 0..first.count {
        let part = seen.get(&format!("{token_service}-snapshot-{i}"))?;
        if part.hash != first.hash || part.index != i || part.count != first.count {
            return None;
        }
        joined.extend_from_slice(&part.bytes);
    }
    Some((first.hash.clone(), joined))
}

fn shard_position(secret: &Secret) -> (usize, usize) {
    let text = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SHARD_ANNOTATION))
        .cloned()
        .unwrap_or_else(|| "0/1".into());
    let (i, n) = text.split_once('/').unwrap_or(("0", "1"));
    (i.parse().unwrap_or(0), n.parse().unwrap_or(1))
}

/// How a snapshot watch retries after an error: from [`RETRY_MIN`], doubling, at most
/// [`RETRY_MAX`], jittered so replicas do not retry in step; reset by the next event. A bare
/// watcher retries at once: thousands of attempts a second while the API server is down.
pub fn retry_backoff() -> watcher::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(RETRY_MIN)
        .with_max_delay(RETRY_MAX)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .into()
}

/// Decompresses a snapshot; the hash annotation names the decompressed bytes.
pub fn decode(hash: String, gz: &[u8]) -> Result<Wire, Refused> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .take(256 << 20)
        .read_to_end(&mut json)
        .map_err(Refused::Gzip)?;
    Ok(Wire { hash, json })
}

/// Watches the snapshot Secrets of `namespace/token_service` for ever, installing each whole
/// snapshot. The watchers reconnect by themselves when the API server comes back, backing
/// off meanwhile; the last good snapshot keeps serving.
pub async fn run(app: Arc<App>, client: kube::Client, namespace: String, token_service: String) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    let streams = secret_names(&token_service).into_iter().map(|name| {
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        watcher::watcher(api.clone(), config)
            .backoff(retry_backoff())
            .boxed()
    });
    let mut events = stream::select_all(streams);
    let mut seen: Seen = BTreeMap::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(secret) | Event::InitApply(secret)) => {
                let name = secret.metadata.name.clone().unwrap_or_default();
                let hash = secret
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(HASH_ANNOTATION))
                    .cloned()
                    .unwrap_or_default();
                let bytes = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(DATA_KEY))
                    .map(|b| b.0.clone())
                    .unwrap_or_default();
                let (index, count) = shard_position(&secret);
                seen.insert(
                    name,
                    Part {
                        hash,
                        index,
                        count,
                        bytes,
                    },
                );
            }
            Ok(Event::Delete(secret)) => {
                seen.remove(&secret.metadata.name.clone().unwrap_or_default());
            }
            Ok(Event::Init | Event::InitDone) => continue,
            Err(error) => {
                tracing::warn!(%error, "snapshot watch error; serving the last good snapshot");
                continue;
            }
        }
        if let Some((hash, gz)) = assemble(&token_service, &seen) {
            // A re-list after a watch error sees the served snapshot again: at 100,000
            // clients, unpacking it only to find the same hash costs a second and ~70 MB.
            if super::serving(&app, &hash) {
                continue;
            }
            match decode(hash, &gz) {
                Ok(wire) => super::install(&app, wire).await,
                Err(reason) => super::refuse(&app, None, &reason),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &str, hash: &str, index: usize, count: usize, bytes: &[u8]) -> (String, Part) {
        (
            name.to_owned(),
            Part {
                hash: hash.to_owned(),
                index,
                count,
                bytes: bytes.to_vec(),
            },
        )
    }

    #[test]
    fn retries_back_off_to_a_cap_with_jitter_and_restart_after_a_reset() {
        use kube::runtime::utils::Backoff;
        let ms = Duration::from_millis;
        let mut delays = retry_backoff();
        // Jitter adds up to the delay itself.
        for base in [250, 500, 1000, 2000, 4000, 5000, 5000, 5000] {
            let delay = delays.next().expect("retries never stop");
            assert!(
                delay >= ms(base) && delay < ms(base * 2),
                "{delay:?} for {base} ms"
            );
        }
        delays.reset();
        assert!(delays.next().unwrap() < ms(500));
    }

    #[test]
    fn a_single_secret_is_the_snapshot() {
        let seen = Seen::from([part("ts-snapshot", "h", 0, 1, b"abc")]);
        assert_eq!(assemble("ts", &seen), Some(("h".into(), b"abc".to_vec())));
    }

    #[test]
    fn shards_join_only_when_all_carry_one_hash() {
        let whole = Seen::from([
            part("ts-snapshot-0", "h", 0, 2, b"ab"),
            part("ts-snapshot-1", "h", 1, 2, b"cd"),
        ]);
        assert_eq!(assemble("ts", &whole), Some(("h".into(), b"abcd".to_vec())));
        let torn = Seen::from([
            part("ts-snapshot-0", "new", 0, 2, b"ab"),
            part("ts-snapshot-1", "old", 1, 2, b"cd"),
        ]);
        assert_eq!(assemble("ts", &torn), None, "never a torn snapshot");
        let partial = Seen::from([part("ts-snapshot-0", "h", 0, 2, b"ab")]);
        assert_eq!(assemble("ts", &partial), None);
    }
}
