//! The redis backend: shared by every replica, so any replica serves any request. Keys carry
//! the TokenService's prefix; every record expires (EXAT); single use is one `SET NX`, atomic
//! in redis, so two replicas racing on one item cannot both win.

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, ExistenceCheck, SetExpiry, SetOptions};
use serde_json::Value;

use super::{DenyList, Kind, Records, ReferenceTokens, ReplayCache, Unavailable, token_key};

/// A redis connection (reconnecting by itself) and the key prefix.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
}

fn unavailable(error: redis::RedisError) -> Unavailable {
    // The URL (with credentials) never goes into the message: only the error kind and detail.
    Unavailable(format!(
        "redis: {:?} {}",
        error.kind(),
        error.detail().unwrap_or_default()
    ))
}

impl RedisStore {
    /// Connects to `url` (`redis://` or `rediss://` for TLS; credentials in the URL).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, Unavailable> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let connection = ConnectionManager::new(client).await.map_err(unavailable)?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{}", self.prefix, token_key(id))
    }

    /// `SET key value EXAT expires [NX]`; true when set.
    async fn set(
        &self,
        key: &str,
        value: String,
        expires: i64,
        now: i64,
        only_new: bool,
    ) -> Result<bool, Unavailable> {
        if expires <= now {
            return Ok(!only_new); // already expired: nothing to keep
        }
        let mut options = SetOptions::default().with_expiration(SetExpiry::EXAT(expires as u64));
        if only_new {
            options = options.conditional_set(ExistenceCheck::NX);
        }
        let mut connection = self.connection.clone();
        let reply: Option<String> = connection
            .set_options(key, value, options)
            .await
            .map_err(unavailable)?;
        Ok(reply.is_some())
    }
}

impl ReplayCache for RedisStore {
    async fn first_use(&self, id: &str, expires: i64, now: i64) -> Result<bool, Unavailable> {
        self.set(&self.key("once", id), "1".into(), expires, now, true)
            .await
    }
}

impl DenyList for RedisStore {
    async fn deny(&self, jti: &str, until: i64, now: i64) -> Result<(), Unavailable> {
        self.set(&self.key("deny", jti), "1".into(), until, now, false)
            .await
            .map(|_| ())
    }

    async fn is_denied(&self, jti: &str, _now: i64) -> Result<bool, Unavailable> {
        let mut connection = self.connection.clone();
        connection
            .exists(self.key("deny", jti))
            .await
            .map_err(unavailable)
    }
}

impl ReferenceTokens for RedisStore {
    async fn put_reference(
        &self,
        token: &str,
        claims: Value,
        expires: i64,
        now: i64,
    ) -> Result<(), Unavailable> {
        self.set(
            &self.key("ref", token),
            claims.to_string(),
            expires,
            now,
            false,
        )
        .await
        .map(|_| ())
    }

    async fn get_reference(&self, token: &str, _now: i64) -> Result<Option<Value>, Unavailable> {
        let mut connection = self.connection.clone();
        let text: Option<String> = connection
            .get(self.key("ref", token))
            .await
            .map_err(unavailable)?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    async fn delete_reference(&self, token: &str, _now: i64) -> Result<(), Unavailable> {
        let mut connection = self.connection.clone();
        connection
            .del::<_, ()>(self.key("ref", token))
            .await
            .map_err(unavailable)
    }
}

impl Records for RedisStore {
    async fn put(
        &self,
        kind: Kind,
        id: &str,
        value: &Value,
        expires: i64,
        now: i64,
    ) -> Result<(), Unavailable> {
        self.set(
            &self.key(kind.tag(), id),
            value.to_string(),
            expires,
            now,
            false,
        )
        .await
        .map(|_| ())
    }

    async fn get(&self, kind: Kind, id: &str, _now: i64) -> Result<Option<Value>, Unavailable> {
        let mut connection = self.connection.clone();
        let text: Option<String> = connection
            .get(self.key(kind.tag(), id))
            .await
            .map_err(unavailable)?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    async fn take(&self, kind: Kind, id: &str, _now: i64) -> Result<Option<Value>, Unavailable> {
        // GETDEL is one command, so two replicas racing on a code cannot both get it.
        let mut connection = self.connection.clone();
        let text: Option<String> = connection
            .get_del(self.key(kind.tag(), id))
            .await
            .map_err(unavailable)?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    async fn delete(&self, kind: Kind, id: &str, _now: i64) -> Result<(), Unavailable> {
        let mut connection = self.connection.clone();
        connection
            .del::<_, ()>(self.key(kind.tag(), id))
            .await
            .map_err(unavailable)
    }
}
