//! Each replica's copy of the shared deny list, so introspection checks it without a redis
//! round trip per token.
//!
//! A deny is written and published in one script (`RedisStore::deny`); every replica
//! subscribes to the channel, then loads the denies already written, then applies each message.
//! The copy answers only while that subscription is known to be alive (a ping answered within
//! [`LIVE_FOR`]); otherwise, and while it would hold more than [`CAPACITY`] entries, the store
//! asks redis per request as before. While redis is down nobody can write a deny, so a copy that
//! was complete when the subscription ended would still be right; it is not trusted anyway,
//! because the replica cannot tell an outage from a subscription that alone went away.

use std::collections::HashMap;
use std::sync::{RwLock, Weak};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use redis::aio::MultiplexedConnection;

use super::sentinel::SentinelConnection;

/// How long an answered ping keeps the copy trusted; pings go out every third of it.
pub const LIVE_FOR: Duration = Duration::from_millis(1500);

/// Most denies a copy holds (about 150 bytes each): a tenant that revokes its own tokens in a
/// loop fills redis, not every replica's memory; beyond this the replica asks redis.
pub const CAPACITY: usize = 200_000;

/// The channel denies are published on, under the TokenService's key prefix.
pub fn channel(prefix: &str) -> String {
    format!("{prefix}deny")
}

/// The message for a deny of `key` (unprefixed, `deny:HASH`) until `expires`.
pub fn message(key: &str, expires: i64) -> String {
    format!("{key} {expires}")
}

fn parse(message: &str) -> Option<(&str, i64)> {
    let (key, expires) = message.split_once(' ')?;
    Some((key, expires.parse().ok()?))
}

/// The copy: denied keys with their expiry, and until when it may be trusted.
#[derive(Default)]
pub struct Mirror {
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    trusted_until: Option<Instant>,
    denied: HashMap<String, i64>,
}

impl Mirror {
    /// Whether `key` is denied at `now`, or None when the copy is not to be trusted at `at`.
    pub fn answer(&self, key: &str, now: i64, at: Instant) -> Option<bool> {
        let state = self.state.read().ok()?;
        if state.trusted_until.is_none_or(|until| at >= until) {
            return None;
        }
        Some(state.denied.get(key).is_some_and(|&expires| expires > now))
    }

    /// Adds a deny; false when the copy is full (it then stops being trusted).
    pub fn insert(&self, key: &str, expires: i64) -> bool {
        let Ok(mut state) = self.state.write() else {
            return false;
        };
        if state.denied.len() >= CAPACITY && !state.denied.contains_key(key) {
            state.trusted_until = None;
            return false;
        }
        state.denied.insert(key.to_owned(), expires);
        true
    }

    /// Replaces the whole copy with what redis holds (before the first trust).
    fn replace(&self, denied: HashMap<String, i64>) {
        if let Ok(mut state) = self.state.write() {
            state.denied = denied;
        }
    }

    /// The subscription answered at `at`: trusted until `at + LIVE_FOR`; expired denies go.
    fn alive(&self, at: Instant, now: i64) {
        if let Ok(mut state) = self.state.write() {
            state.trusted_until = Some(at + LIVE_FOR);
            state.denied.retain(|_, expires| *expires > now);
        }
    }

    /// The subscription is gone: redis is asked until it is back and the copy reloaded.
    fn down(&self) {
        if let Ok(mut state) = self.state.write() {
            state.trusted_until = None;
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The server to subscribe at: one fixed server, or whichever the sentinels name as primary
/// when the subscription (re)starts.
pub enum Source {
    Server(Box<redis::Client>),
    Sentinel(SentinelConnection),
}

impl Source {
    async fn client(&self) -> redis::RedisResult<redis::Client> {
        match self {
            Source::Server(client) => Ok((**client).clone()),
            Source::Sentinel(sentinels) => sentinels.primary_client().await,
        }
    }
}

/// Keeps `mirror` current until it is dropped (the store it belongs to was replaced).
pub async fn follow(source: Source, prefix: String, mirror: Weak<Mirror>) {
    loop {
        let outcome = follow_once(&source, &prefix, &mirror).await;
        let Some(current) = mirror.upgrade() else {
            return;
        };
        current.down();
        drop(current);
        let pause = match outcome {
            Ok(()) => return,
            Err(Stop::Full) => {
                tracing::warn!(
                    capacity = CAPACITY,
                    "more denied tokens than the local copy holds: introspection asks redis for each"
                );
                Duration::from_secs(30)
            }
            Err(Stop::Redis(error)) => {
                tracing::warn!(kind = ?error.kind(), "deny-list subscription lost: introspection asks redis until it is back");
                Duration::from_secs(1)
            }
        };
        tokio::time::sleep(pause).await;
    }
}

enum Stop {
    Full,
    Redis(redis::RedisError),
}

impl From<redis::RedisError> for Stop {
    fn from(error: redis::RedisError) -> Self {
        Stop::Redis(error)
    }
}

/// One subscription, from subscribing until it fails; Ok when the mirror was dropped.
async fn follow_once(source: &Source, prefix: &str, mirror: &Weak<Mirror>) -> Result<(), Stop> {
    let client = source.client().await?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let (mut sink, mut messages) = client.get_async_pubsub().await?.split();
    sink.subscribe(channel(prefix)).await?;
    // Subscribed first: a deny written while the list loads arrives as a message after it.
    let loaded = load(&mut connection, prefix, unix_now()).await?;
    if loaded.len() > CAPACITY {
        return Err(Stop::Full);
    }
    let Some(current) = mirror.upgrade() else {
        return Ok(());
    };
    current.replace(loaded);
    current.alive(Instant::now(), unix_now());
    drop(current);
    let mut ticks = tokio::time::interval(LIVE_FOR / 3);
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    return Err(Stop::Redis(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "subscription closed",
                    ))));
                };
                let Some(current) = mirror.upgrade() else {
                    return Ok(());
                };
                apply(&current, &message)?;
            }
            _ = ticks.tick() => {
                // Subscribed, redis answers a ping with a ["pong", ""] array (RESP2): any
                // answer will do.
                let sent = Instant::now();
                tokio::time::timeout(LIVE_FOR, sink.ping::<redis::Value>())
                    .await
                    .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "ping timed out")))??;
                let Some(current) = mirror.upgrade() else {
                    return Ok(());
                };
                // Redis answers a ping after every message published before it, and the
                // connection's reader queues those before it hands over the answer: once they
                // are applied, every deny published before `sent` is in the copy.
                while let Some(Some(message)) = messages.next().now_or_never() {
                    apply(&current, &message)?;
                }
                current.alive(sent, unix_now());
            }
        }
    }
}

/// Adds the deny a message announces (one that does not parse is not a deny).
fn apply(mirror: &Mirror, message: &redis::Msg) -> Result<(), Stop> {
    let payload: String = message.get_payload().unwrap_or_default();
    match parse(&payload) {
        Some((key, expires)) if !mirror.insert(key, expires) => Err(Stop::Full),
        _ => Ok(()),
    }
}

/// Every deny in redis under `prefix`, with its expiry (from its TTL).
async fn load(
    connection: &mut MultiplexedConnection,
    prefix: &str,
    now: i64,
) -> Result<HashMap<String, i64>, Stop> {
    let pattern = format!("{}deny:*", glob_escape(prefix));
    let mut denied = HashMap::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(connection)
            .await?;
        if !keys.is_empty() {
            let mut ttls = redis::pipe();
            for key in &keys {
                ttls.cmd("TTL").arg(key);
            }
            let ttls: Vec<i64> = ttls.query_async(connection).await?;
            for (key, ttl) in keys.into_iter().zip(ttls) {
                // -2: gone since the scan; -1 cannot happen (every deny has an expiry).
                if ttl > 0 {
                    denied.insert(key[prefix.len()..].to_owned(), now + ttl);
                }
            }
        }
        if denied.len() > CAPACITY {
            return Err(Stop::Full);
        }
        cursor = next;
        if cursor == 0 {
            return Ok(denied);
        }
    }
}

/// `prefix` with redis glob characters escaped, for `SCAN MATCH`.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_only_while_trusted_and_only_for_unexpired_denies() {
        let mirror = Mirror::default();
        let t0 = Instant::now();
        assert_eq!(mirror.answer("deny:a", 100, t0), None, "never trusted yet");
        mirror.insert("deny:a", 200);
        mirror.alive(t0, 100);
        assert_eq!(mirror.answer("deny:a", 100, t0), Some(true));
        assert_eq!(mirror.answer("deny:a", 200, t0), Some(false), "expired");
        assert_eq!(mirror.answer("deny:b", 100, t0), Some(false));
        let late = t0 + LIVE_FOR;
        assert_eq!(
            mirror.answer("deny:a", 100, late),
            None,
            "no ping answered since"
        );
        mirror.alive(late, 100);
        assert_eq!(mirror.answer("deny:a", 100, late), Some(true));
        mirror.down();
        assert_eq!(mirror.answer("deny:a", 100, late), None);
    }

    #[test]
    fn a_full_copy_stops_being_trusted() {
        let mirror = Mirror::default();
        let t0 = Instant::now();
        mirror.replace((0..CAPACITY).map(|n| (format!("deny:{n}"), 200)).collect());
        mirror.alive(t0, 100);
        assert!(mirror.insert("deny:0", 300), "an update is not growth");
        assert!(!mirror.insert("deny:new", 300));
        assert_eq!(mirror.answer("deny:0", 100, t0), None);
    }

    #[test]
    fn messages_and_patterns() {
        assert_eq!(parse(&message("deny:ab", 42)), Some(("deny:ab", 42)));
        assert_eq!(parse("deny:ab"), None);
        assert_eq!(parse("deny:ab x"), None);
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
