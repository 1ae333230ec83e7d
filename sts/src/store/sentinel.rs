//! A connection to whichever server the sentinels name as primary. redis-rs finds the primary
//! (`SentinelClient`: asks the sentinels, checks the answer) but has no connection that
//! re-discovers by itself, so this keeps one multiplexed connection and forgets it when it
//! fails in a way that says the primary may have moved: the next command asks the sentinels
//! again. While no primary answers, every command fails (the store fails closed); once one
//! does, the first command after it connects to it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// How long asking the sentinels and connecting to the primary may take.
const DISCOVERY: Duration = Duration::from_secs(3);

/// Shared by every clone: one discovery at a time, one current connection.
#[derive(Clone)]
pub struct SentinelConnection {
    inner: Arc<Inner>,
}

struct Inner {
    /// The sentinels; locked while asking them, so concurrent misses discover once.
    sentinels: tokio::sync::Mutex<SentinelClient>,
    /// The connection to the primary, with the discovery it came from.
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    config: AsyncConnectionConfig,
    db: i64,
}

impl SentinelConnection {
    /// Asks the sentinels for the primary and connects to it.
    pub async fn connect(
        sentinels: SentinelClient,
        config: AsyncConnectionConfig,
        db: i64,
    ) -> RedisResult<Self> {
        let connection = Self {
            inner: Arc::new(Inner {
                sentinels: tokio::sync::Mutex::new(sentinels),
                current: Mutex::new(None),
                config,
                db,
            }),
        };
        connection.current().await?;
        Ok(connection)
    }

    /// A client for the server the sentinels name as primary now (for the deny list's
    /// subscription, which needs a connection of its own).
    pub async fn primary_client(&self) -> RedisResult<redis::Client> {
        self.inner.sentinels.lock().await.async_get_client().await
    }

    /// The current connection, or a new one to the primary the sentinels name.
    async fn current(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(current) = self.inner.current.lock().expect("lock").clone() {
            return Ok(current);
        }
        let mut sentinels = self.inner.sentinels.lock().await;
        // Another command may have connected while this one waited for the sentinels.
        if let Some(current) = self.inner.current.lock().expect("lock").clone() {
            return Ok(current);
        }
        // Bounded as a whole: a sentinel or primary that never answers (dropped packets)
        // must not hold every request behind this lock for the kernel's connect timeout.
        let discovery = async {
            let client = sentinels.async_get_client().await?;
            client
                .get_multiplexed_async_connection_with_config(&self.inner.config)
                .await
        };
        let connection = tokio::time::timeout(DISCOVERY, discovery)
            .await
            .map_err(|_| {
                RedisError::from((
                    redis::ErrorKind::Io,
                    "no answer from the sentinels or the primary in time",
                ))
            })??;
        let mut slot = self.inner.current.lock().expect("lock");
        let generation = slot.as_ref().map_or(0, |(g, _)| g + 1);
        *slot = Some((generation, connection.clone()));
        Ok((generation, connection))
    }

    /// Forgets connection `generation` after `error`, if the error says the primary may be
    /// gone or no longer primary.
    fn after(&self, generation: u64, error: &RedisError) {
        if !moved_on(error) {
            return;
        }
        let mut slot = self.inner.current.lock().expect("lock");
        if slot.as_ref().is_some_and(|(g, _)| *g == generation) {
            *slot = None;
        }
    }

    /// Sends `request` to the primary. A READONLY answer means the server was demoted and
    /// did not apply it, so it is sent once more to the new primary; any other failure is
    /// returned (the command may have been applied).
    async fn run(&self, request: Request<'_>) -> RedisResult<Reply> {
        let (generation, mut connection) = self.current().await?;
        match request.send(&mut connection).await {
            Err(error) if read_only(&error) => {
                self.after(generation, &error);
                let (_, mut connection) = self.current().await?;
                request.send(&mut connection).await
            }
            Err(error) => {
                self.after(generation, &error);
                Err(error)
            }
            ok => ok,
        }
    }
}

/// A command or a pipeline, as `ConnectionLike` sends them.
enum Request<'a> {
    One(&'a Cmd),
    Many(&'a Pipeline, usize, usize),
}

enum Reply {
    One(Value),
    Many(Vec<Value>),
}

impl Request<'_> {
    async fn send(&self, connection: &mut MultiplexedConnection) -> RedisResult<Reply> {
        Ok(match *self {
            Request::One(cmd) => Reply::One(connection.req_packed_command(cmd).await?),
            Request::Many(pipeline, offset, count) => Reply::Many(
                connection
                    .req_packed_commands(pipeline, offset, count)
                    .await?,
            ),
        })
    }
}

/// The server answered as a replica: it was demoted.
fn read_only(error: &RedisError) -> bool {
    error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
}

/// Errors after which the primary may be elsewhere: the connection broke or was refused, the
/// server stopped answering, or it answers as a replica.
fn moved_on(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || read_only(error)
}

impl ConnectionLike for SentinelConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            match self.run(Request::One(cmd)).await? {
                Reply::One(value) => Ok(value),
                Reply::Many(mut values) => Ok(values.pop().unwrap_or(Value::Nil)),
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            match self.run(Request::Many(pipeline, offset, count)).await? {
                Reply::Many(values) => Ok(values),
                Reply::One(value) => Ok(vec![value]),
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.db
    }
}
