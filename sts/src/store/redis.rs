//! The redis backend: shared by every replica, so any replica serves any request. Keys carry
//! the TokenService's prefix; every record expires (EXAT); single use is one `SET NX`, take is
//! `GETDEL` and compare-and-set one script, each atomic in redis, so two replicas racing on one
//! item cannot both win.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{
    AsyncCommands, ExistenceCheck, FromRedisValue, IntoConnectionInfo, SetExpiry, SetOptions,
};
use signet_crds::snapshot::{RedisTopology, WaitForReplicas};

use super::Unavailable;
use super::backend::{Backend, Write};
use super::connection::{Connection, connect, unavailable};
use super::deny_mirror::{self, Mirror};

/// Compare-and-set in one script, so no write comes between the compare and the set.
const REPLACE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[3]) <= tonumber(ARGV[4]) then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EXAT', ARGV[3])
end
return 1
";

/// A counter in one script: `INCRBY`, the window's expiry on a key it created, and no key
/// left at 0 or below.
const ADD: &str = r"
local sum = redis.call('INCRBY', KEYS[1], ARGV[1])
if sum <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
if redis.call('TTL', KEYS[1]) == -1 then
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
end
return sum
";

/// A deny written and announced in one step, so no replica's copy of the list misses it.
const DENY: &str = r"
redis.call('SET', KEYS[1], '1', 'EXAT', ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
";

/// A redis connection (reconnecting by itself), the key prefix, this replica's copy of the
/// deny list and how many replicas a write waits for.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: String,
    pub(super) denied: Arc<Mirror>,
    waiting: Option<Arc<Waiting>>,
}

/// Connections for writes that wait for replicas, taken in turn.
const WAITING_CONNECTIONS: usize = 8;

/// How writes wait for replicas, and the connections they wait on.
struct Waiting {
    wait: WaitForReplicas,
    connections: Vec<Connection>,
    next: AtomicUsize,
}

/// How long a command may take to be answered: redis's default, plus the time a write may
/// wait for its replicas (a `WAIT` answers only when its own timeout is up).
fn response_timeout(wait: Option<WaitForReplicas>) -> Duration {
    Duration::from_millis(500 + wait.map_or(0, |w| w.timeout_ms))
}

impl RedisStore {
    /// Connects to one server at `url` (`redis://` or `rediss://` for TLS; credentials in
    /// the URL), and refuses a server whose `maxmemory-policy` is not `noeviction`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, Unavailable> {
        Self::open(url, None, None, prefix, None).await
    }

    /// Connects to the store `url` and `topology` describe: one server at `url`, the primary
    /// the sentinels name, or a cluster learnt from its seed nodes; in the last two the URL
    /// gives every data node's scheme (TLS or not), credentials and database. Refuses a store
    /// that may evict keys (a cluster: any primary that may). TLS connections trust
    /// `ca_bundle` (PEM) when given, else the system's roots.
    pub async fn open(
        url: &str,
        topology: Option<&RedisTopology>,
        ca_bundle: Option<&str>,
        prefix: &str,
        wait: Option<WaitForReplicas>,
    ) -> Result<Self, Unavailable> {
        let timeout = response_timeout(wait);
        let info = url.into_connection_info().map_err(unavailable)?;
        let (mut connection, source) = connect(&info, topology, ca_bundle, timeout).await?;
        // Waiting writes each take one of these: redis answers nothing else on a connection
        // while its WAIT is pending, so on the one shared connection they would queue.
        let waiting = match wait {
            None => None,
            Some(wait) => {
                let mut connections = Vec::with_capacity(WAITING_CONNECTIONS);
                for _ in 0..WAITING_CONNECTIONS {
                    connections.push(connect(&info, topology, ca_bundle, timeout).await?.0);
                }
                Some(Arc::new(Waiting {
                    wait,
                    connections,
                    next: AtomicUsize::new(0),
                }))
            }
        };
        refuse_eviction(&mut connection).await?;
        let denied = Arc::new(Mirror::default());
        if let Some(source) = source {
            tokio::spawn(deny_mirror::follow(
                source,
                prefix.to_owned(),
                Arc::downgrade(&denied),
            ));
        }
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            denied,
            waiting,
        })
    }

    /// Denies `key` (`deny:HASH`) until `expires`: written and published at once; this
    /// replica's copy has it before the call returns.
    pub async fn deny(&self, key: &str, expires: i64, now: i64) -> Result<(), Unavailable> {
        if expires <= now {
            return Ok(());
        }
        let mut deny = redis::cmd("EVAL");
        deny.arg(DENY)
            .arg(1)
            .arg(self.key(key))
            .arg(expires)
            .arg(deny_mirror::channel(&self.prefix))
            .arg(deny_mirror::message(key, expires));
        let _: i64 = self.write(deny).await?;
        self.denied.insert(key, expires);
        Ok(())
    }

    /// Whether `key` is denied: from the copy while its subscription is alive, else from redis.
    pub async fn is_denied(&self, key: &str, now: i64) -> Result<bool, Unavailable> {
        if let Some(answer) = self.denied.answer(key, now, std::time::Instant::now()) {
            return Ok(answer);
        }
        Ok(self.get(key, now).await?.is_some())
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs a write and, when writes wait for replicas, `WAIT` right after it on the same
    /// connection (one of the waiting ones; in a cluster, at the node the write went to). Fewer acknowledgements than
    /// asked fail the call closed: the primary has the write, but a failover could lose it.
    async fn write<T: FromRedisValue>(&self, command: redis::Cmd) -> Result<T, Unavailable> {
        let Some(waiting) = &self.waiting else {
            let mut connection = self.connection.clone();
            return command
                .query_async(&mut connection)
                .await
                .map_err(unavailable);
        };
        let turn = waiting.next.fetch_add(1, Ordering::Relaxed) % waiting.connections.len();
        let mut connection = waiting.connections[turn].clone();
        let wait = waiting.wait;
        let (reply, acked): (T, u32) = redis::pipe()
            .add_command(command)
            .cmd("WAIT")
            .arg(wait.replicas)
            .arg(wait.timeout_ms)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        if acked < wait.replicas {
            return Err(Unavailable::NotReplicated {
                acked,
                wanted: wait.replicas,
            });
        }
        Ok(reply)
    }
}

/// Refuses a store that may evict keys. `INFO memory` rather than `CONFIG GET`: managed
/// services that disable CONFIG still answer it. A cluster answers once per primary, and
/// every answer must say `noeviction`.
async fn refuse_eviction(connection: &mut impl ConnectionLike) -> Result<(), Unavailable> {
    let answer: redis::Value = redis::cmd("INFO")
        .arg("memory")
        .query_async(connection)
        .await
        .map_err(unavailable)?;
    let mut texts = Vec::new();
    texts_of(answer, &mut texts);
    let policies: Vec<Option<&str>> = texts.iter().map(|t| eviction_policy(t)).collect();
    match policies.iter().find(|p| **p != Some("noeviction")) {
        None if !policies.is_empty() => Ok(()),
        None => Err(Unavailable::Evicting("unreadable".into())),
        Some(policy) => Err(Unavailable::Evicting(policy.unwrap_or("unreadable").into())),
    }
}

/// The texts in an answer: one for a server, one per node (a map or list) for a cluster.
fn texts_of(value: redis::Value, out: &mut Vec<String>) {
    match value {
        redis::Value::BulkString(bytes) => out.push(String::from_utf8_lossy(&bytes).into_owned()),
        redis::Value::VerbatimString { text, .. } | redis::Value::SimpleString(text) => {
            out.push(text)
        }
        redis::Value::Array(values) | redis::Value::Set(values) => {
            values.into_iter().for_each(|v| texts_of(v, out))
        }
        // Node address → that node's answer: only the answers are texts to read.
        redis::Value::Map(pairs) => pairs.into_iter().for_each(|(_, v)| texts_of(v, out)),
        _ => {}
    }
}

/// The `maxmemory_policy` line of `INFO memory`'s answer.
fn eviction_policy(info: &str) -> Option<&str> {
    info.lines()
        .find_map(|line| line.strip_prefix("maxmemory_policy:"))
        .map(str::trim)
}

impl Backend for RedisStore {
    /// `SET key value EXAT expires [NX]`.
    async fn set(&self, write: Write, now: i64) -> Result<bool, Unavailable> {
        if write.expires <= now {
            return Ok(!write.only_new); // already expired: nothing to keep
        }
        let expiry = SetExpiry::EXAT(write.expires as u64);
        let mut options = SetOptions::default().with_expiration(expiry);
        if write.only_new {
            options = options.conditional_set(ExistenceCheck::NX);
        }
        let mut set = redis::cmd("SET");
        set.arg(self.key(&write.key)).arg(write.value).arg(options);
        let reply: Option<String> = self.write(set).await?;
        Ok(reply.is_some())
    }

    async fn get(&self, key: &str, _now: i64) -> Result<Option<String>, Unavailable> {
        let mut connection = self.connection.clone();
        connection.get(self.key(key)).await.map_err(unavailable)
    }

    /// `GETDEL` (one command, so two replicas racing on a code cannot both get it) or `DEL`.
    async fn remove(
        &self,
        key: &str,
        _now: i64,
        keep: bool,
    ) -> Result<Option<String>, Unavailable> {
        let command = if keep { "GETDEL" } else { "DEL" };
        let mut remove = redis::cmd(command);
        remove.arg(self.key(key));
        if keep {
            self.write(remove).await
        } else {
            let _: i64 = self.write(remove).await?;
            Ok(None)
        }
    }

    async fn replace(&self, expected: &str, write: Write, now: i64) -> Result<bool, Unavailable> {
        let mut replace = redis::cmd("EVAL");
        replace
            .arg(REPLACE)
            .arg(1)
            .arg(self.key(&write.key))
            .arg(expected)
            .arg(write.value)
            .arg(write.expires)
            .arg(now);
        let replaced: i64 = self.write(replace).await?;
        Ok(replaced == 1)
    }

    async fn add(&self, key: &str, by: i64, expires: i64, now: i64) -> Result<i64, Unavailable> {
        if expires <= now {
            return Ok(0);
        }
        let mut connection = self.connection.clone();
        redis::cmd("EVAL")
            .arg(ADD)
            .arg(1)
            .arg(self.key(key))
            .arg(by)
            .arg(expires)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::eviction_policy;

    #[test]
    fn reads_the_eviction_policy_from_info_memory() {
        let info = "# Memory\r\nused_memory:1024\r\nmaxmemory:0\r\nmaxmemory_policy:allkeys-lru\r\nmem_fragmentation_ratio:1.2\r\n";
        assert_eq!(eviction_policy(info), Some("allkeys-lru"));
        assert_eq!(
            eviction_policy("maxmemory_policy:noeviction\n"),
            Some("noeviction")
        );
        assert_eq!(eviction_policy("# Memory\r\nused_memory:1024\r\n"), None);
    }
}
