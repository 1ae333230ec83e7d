//! The redis backend: shared by every replica, so any replica serves any request. Keys carry
//! the TokenService's prefix; every record expires (EXAT); single use is one `SET NX`, take is
//! `GETDEL` and compare-and-set one script, each atomic in redis, so two replicas racing on one
//! item cannot both win.

use std::sync::Arc;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, ExistenceCheck, RedisFuture, SetExpiry, SetOptions};

use super::Unavailable;
use super::backend::{Backend, Write};
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

/// A connection to one redis server or to a Redis Cluster; both reconnect by themselves (the
/// cluster's also follows MOVED and ASK). Every operation here names one key, so in a cluster
/// each goes to the node that owns its slot and none spans slots.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// A redis connection (reconnecting by itself), the key prefix and this replica's copy of the
/// deny list.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: String,
    pub(super) denied: Arc<Mirror>,
}

fn unavailable(error: redis::RedisError) -> Unavailable {
    // The URL (with credentials) never goes into the message: only the error kind and detail.
    Unavailable::Redis {
        kind: error.kind(),
        detail: error.detail().unwrap_or_default().to_owned(),
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://` or `rediss://` for TLS; credentials in the URL), and
    /// refuses a server whose `maxmemory-policy` is not `noeviction`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, Unavailable> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let mut connection = ConnectionManager::new(client.clone())
            .await
            .map_err(unavailable)?;
        refuse_eviction(&mut connection).await?;
        let denied = Arc::new(Mirror::default());
        tokio::spawn(deny_mirror::follow(
            client,
            connection.clone(),
            prefix.to_owned(),
            Arc::downgrade(&denied),
        ));
        Ok(Self {
            connection: Connection::Single(connection),
            prefix: prefix.to_owned(),
            denied,
        })
    }

    /// Connects to the Redis Cluster that `seeds` (`redis://host:port`, credentials in the
    /// URLs) belong to, and refuses it unless every primary's `maxmemory-policy` is
    /// `noeviction` (the cluster sends INFO to the primaries; replicas are not asked).
    /// This replica's copy of the deny list is not kept in a cluster yet (its load scans every
    /// primary): each check asks the cluster, which is correct and one round trip.
    pub async fn connect_cluster(seeds: &[String], prefix: &str) -> Result<Self, Unavailable> {
        let client = redis::cluster::ClusterClient::new(seeds.iter().map(String::as_str))
            .map_err(unavailable)?;
        let mut connection = client.get_async_connection().await.map_err(unavailable)?;
        refuse_eviction(&mut connection).await?;
        Ok(Self {
            connection: Connection::Cluster(connection),
            prefix: prefix.to_owned(),
            denied: Arc::new(Mirror::default()),
        })
    }

    /// Denies `key` (`deny:HASH`) until `expires`: written and published at once; this
    /// replica's copy has it before the call returns.
    pub async fn deny(&self, key: &str, expires: i64, now: i64) -> Result<(), Unavailable> {
        if expires <= now {
            return Ok(());
        }
        let mut connection = self.connection.clone();
        let _: i64 = redis::cmd("EVAL")
            .arg(DENY)
            .arg(1)
            .arg(self.key(key))
            .arg(expires)
            .arg(deny_mirror::channel(&self.prefix))
            .arg(deny_mirror::message(key, expires))
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
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
        let mut connection = self.connection.clone();
        let reply: Option<String> = connection
            .set_options(self.key(&write.key), write.value, options)
            .await
            .map_err(unavailable)?;
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
        let mut connection = self.connection.clone();
        if keep {
            connection.get_del(self.key(key)).await.map_err(unavailable)
        } else {
            connection
                .del::<_, ()>(self.key(key))
                .await
                .map_err(unavailable)?;
            Ok(None)
        }
    }

    async fn replace(&self, expected: &str, write: Write, now: i64) -> Result<bool, Unavailable> {
        let mut connection = self.connection.clone();
        let replaced: i64 = redis::cmd("EVAL")
            .arg(REPLACE)
            .arg(1)
            .arg(self.key(&write.key))
            .arg(expected)
            .arg(write.value)
            .arg(write.expires)
            .arg(now)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
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
