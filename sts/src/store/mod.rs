//! Operational state, keyed by hashes of tokens (never the tokens), every record with an
//! expiry. Two backends: `memory` serves one replica, `redis` is shared by all of them.
//!
//! A backend only keeps text under keys, with five operations (`backend::Backend`). Everything
//! above that is typed, here, once for both backends: each record type names its kind (and so
//! its key prefix) through [`Record`], and is read and written as that type, never as loose
//! JSON. What each kind needs to be atomic:
//!
//! | record | kind | atomic operation its rule needs |
//! | --- | --- | --- |
//! | `CodeState` (a code, unused or used with what it issued) | `code` | `replace`: of two redemptions one claims the code, and the record names the tokens before they exist, so a replay revokes them |
//! | `RefreshRecord` | `rt` | `first_use` on the token: one rotation wins |
//! | `RevokedFamily` | `rfam` | none: a revoked family stays revoked |
//! | `FamilyAccess` (a family's live access tokens) | `facc` | `create` and `replace`: no issuance's token is lost from the list |
//! | `Session` | `ses` | none: a sign-in replaces it |
//! | `Interaction` | `ix` | none: finished by delete |
//! | `Consent` | `consent` | none: last writer wins, both allowed |
//! | `DeviceRecord` | `dev` | `replace` (compare-and-set): a poll never overwrites an approval; `take` on redemption |
//! | `DeviceCodeOf` (user code to device code) | `ucode` | none: deleted once answered |
//! | `Pending` (upstream sign-in) | `up` | `take`: a callback's state works once |
//! | `User` (an upstream person's claims) | `prof` | none |
//! | client assertion `jti`s, refresh uses | `once` | `first_use` (`SET NX`) |
//! | revoked access tokens | `deny` | none |
//! | failed sign-in counts (`signin::throttle`) | `count` | `add`: parallel attempts each see the ones before |
//! | reference tokens | `ref` | none |
//!
//! Keys are `PREFIX KIND ":" hex(SHA-256(id))` on redis, as before this layout.

mod backend;
mod connection;
mod deny_mirror;
mod memory;
mod redis;
mod sentinel;
#[cfg(test)]
mod suite;

pub use self::redis::RedisStore;
pub use memory::MemoryStore;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use backend::{Backend, Write};

/// The store cannot do what was asked: whatever needs it fails closed.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// Redis answered with an error, or not at all. The URL (with its credentials) is never
    /// part of it: only the error's kind and detail.
    #[error("operational store unavailable: redis: {kind:?} {detail}")]
    Redis {
        /// What kind of failure.
        kind: ::redis::ErrorKind,
        /// Redis's words for it.
        detail: String,
    },
    /// A record kept changing under compare-and-set, attempt after attempt.
    #[error("operational store contended: {0} kept changing")]
    Contended(&'static str),
    /// The redis server may evict keys under memory pressure: an evicted single-use or
    /// deny-list key would silently allow a replay, so such a store is refused.
    #[error(
        "operational store may evict keys: redis maxmemory-policy is {0}; Signet needs noeviction (an evicted single-use or deny-list key would allow a replay)"
    )]
    Evicting(String),
    /// A write reached fewer replicas than the TokenService asks for in time: the primary has
    /// it, but a failover now could lose it, so the request fails closed.
    #[error("operational store write reached {acked} of {wanted} replicas in time")]
    NotReplicated {
        /// Replicas that acknowledged.
        acked: u32,
        /// Replicas asked for.
        wanted: u32,
    },
    /// A sentinel or cluster node address is not `host:port`.
    #[error("redis address {0:?} is not host:port")]
    Address(String),
}

/// The key under which state about `token` is kept: its SHA-256, hex.
pub fn token_key(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a record is; part of its key, so kinds never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A pending interaction with a person (login, consent, device approval, logout).
    Interaction,
    /// An SSO session, by the hash of its cookie.
    Session,
    /// An authorization code.
    Code,
    /// A refresh token.
    Refresh,
    /// A revoked refresh-token family.
    RevokedFamily,
    /// The live access tokens a refresh family issued.
    FamilyAccess,
    /// Remembered consent of a person to a client.
    Consent,
    /// A device authorization, by device code.
    Device,
    /// The device code of a user code.
    UserCode,
    /// A sign-in at an upstream provider in flight, by its `state`.
    Upstream,
    /// The claims of a person from an upstream provider, by subject.
    Profile,
}

impl Kind {
    /// The key prefix of this kind.
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Interaction => "ix",
            Kind::Session => "ses",
            Kind::Code => "code",
            Kind::Refresh => "rt",
            Kind::RevokedFamily => "rfam",
            Kind::FamilyAccess => "facc",
            Kind::Consent => "consent",
            Kind::Device => "dev",
            Kind::UserCode => "ucode",
            Kind::Upstream => "up",
            Kind::Profile => "prof",
        }
    }
}

/// A type kept in the store: its kind decides where.
pub trait Record: Serialize + DeserializeOwned {
    /// Where records of this type live.
    const KIND: Kind;
}

/// A record as read, with the exact text it was stored as, for a compare-and-set.
#[derive(Debug)]
pub struct Versioned<R> {
    /// The record.
    pub record: R,
    text: String,
}

/// The backend in use: `memory` (one replica) or `redis` (shared).
pub enum Store {
    /// In-process.
    Memory(MemoryStore),
    /// Shared by the replicas.
    Redis(RedisStore),
}

fn key(tag: &str, id: &str) -> String {
    format!("{tag}:{}", token_key(id))
}

fn record_key<R: Record>(id: &str) -> String {
    key(R::KIND.tag(), id)
}

/// The record in `text`; one that no longer parses (written by another version, say) counts
/// as absent, and is said so in the log.
fn parse<R: Record>(text: &str) -> Option<R> {
    match serde_json::from_str(text) {
        Ok(record) => Some(record),
        Err(error) => {
            tracing::warn!(kind = R::KIND.tag(), %error, "a stored record does not parse: ignored");
            None
        }
    }
}

fn text<R: Record>(record: &R) -> String {
    serde_json::to_string(record).expect("records serialise")
}

/// The backend's operations, for whichever backend is in use.
impl Store {
    async fn set(&self, write: Write, now: i64) -> Result<bool, Unavailable> {
        match self {
            Store::Memory(s) => s.set(write, now).await,
            Store::Redis(s) => s.set(write, now).await,
        }
    }

    async fn read(&self, key: &str, now: i64) -> Result<Option<String>, Unavailable> {
        match self {
            Store::Memory(s) => s.get(key, now).await,
            Store::Redis(s) => s.get(key, now).await,
        }
    }

    async fn remove(&self, key: &str, now: i64, keep: bool) -> Result<Option<String>, Unavailable> {
        match self {
            Store::Memory(s) => s.remove(key, now, keep).await,
            Store::Redis(s) => s.remove(key, now, keep).await,
        }
    }

    async fn swap(&self, expected: &str, write: Write, now: i64) -> Result<bool, Unavailable> {
        match self {
            Store::Memory(s) => s.replace(expected, write, now).await,
            Store::Redis(s) => s.replace(expected, write, now).await,
        }
    }

    async fn sum(&self, key: &str, by: i64, expires: i64, now: i64) -> Result<i64, Unavailable> {
        match self {
            Store::Memory(s) => s.add(key, by, expires, now).await,
            Store::Redis(s) => s.add(key, by, expires, now).await,
        }
    }
}

impl Store {
    /// Stores `record` under `id` until `expires`, replacing any record there.
    pub async fn put<R: Record>(
        &self,
        id: &str,
        record: &R,
        expires: i64,
        now: i64,
    ) -> Result<(), Unavailable> {
        let write = Write::always(record_key::<R>(id), text(record), expires);
        self.set(write, now).await.map(|_| ())
    }

    /// The live record under `id`.
    pub async fn get<R: Record>(&self, id: &str, now: i64) -> Result<Option<R>, Unavailable> {
        let found = self.read(&record_key::<R>(id), now).await?;
        Ok(found.as_deref().and_then(parse))
    }

    /// Stores `record` under `id` only if nothing live is there; false when something was.
    pub async fn create<R: Record>(
        &self,
        id: &str,
        record: &R,
        expires: i64,
        now: i64,
    ) -> Result<bool, Unavailable> {
        let write = Write::if_absent(record_key::<R>(id), text(record), expires);
        self.set(write, now).await
    }

    /// The live record under `id`, for [`Store::replace`].
    pub async fn get_versioned<R: Record>(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<Versioned<R>>, Unavailable> {
        let Some(text) = self.read(&record_key::<R>(id), now).await? else {
            return Ok(None);
        };
        Ok(parse(&text).map(|record| Versioned { record, text }))
    }

    /// Replaces the record under `id` with `record` only if it is still exactly `read`;
    /// false when another write came first (read again and decide again). Atomic.
    pub async fn replace<R: Record>(
        &self,
        id: &str,
        read: &Versioned<R>,
        record: &R,
        expires: i64,
        now: i64,
    ) -> Result<bool, Unavailable> {
        let write = Write::always(record_key::<R>(id), text(record), expires);
        self.swap(&read.text, write, now).await
    }

    /// Removes the record under `id` and returns it. Atomic: of two racing takes, one gets it.
    pub async fn take<R: Record>(&self, id: &str, now: i64) -> Result<Option<R>, Unavailable> {
        let taken = self.remove(&record_key::<R>(id), now, true).await?;
        Ok(taken.as_deref().and_then(parse))
    }

    /// Removes the record of type `R` under `id`.
    pub async fn delete<R: Record>(&self, id: &str, now: i64) -> Result<(), Unavailable> {
        self.remove(&record_key::<R>(id), now, false)
            .await
            .map(|_| ())
    }

    /// Records single-use `id` (a client assertion's `jti`, a refresh token's use) until
    /// `expires`; false when it was already recorded (a replay). Atomic.
    pub async fn first_use(&self, id: &str, expires: i64, now: i64) -> Result<bool, Unavailable> {
        let write = Write::if_absent(key("once", id), "1".into(), expires);
        self.set(write, now).await
    }

    /// Denies the access token with `jti` until `until`. On redis every replica keeps a copy
    /// of the deny list (`deny_mirror`), so the write is also announced to them.
    pub async fn deny(&self, jti: &str, until: i64, now: i64) -> Result<(), Unavailable> {
        let key = key("deny", jti);
        match self {
            Store::Redis(s) => s.deny(&key, until, now).await,
            Store::Memory(_) => {
                let write = Write::always(key, "1".into(), until);
                self.set(write, now).await.map(|_| ())
            }
        }
    }

    /// Whether the access token with `jti` is denied.
    pub async fn is_denied(&self, jti: &str, now: i64) -> Result<bool, Unavailable> {
        let key = key("deny", jti);
        match self {
            Store::Redis(s) => s.is_denied(&key, now).await,
            Store::Memory(_) => Ok(self.read(&key, now).await?.is_some()),
        }
    }

    /// Stores the claims of opaque access token `token` until `expires`.
    pub async fn put_reference(
        &self,
        token: &str,
        claims: &Value,
        expires: i64,
        now: i64,
    ) -> Result<(), Unavailable> {
        let write = Write::always(key("ref", token), claims.to_string(), expires);
        self.set(write, now).await.map(|_| ())
    }

    /// The claims of a live opaque `token`.
    pub async fn get_reference(&self, token: &str, now: i64) -> Result<Option<Value>, Unavailable> {
        let found = self.read(&key("ref", token), now).await?;
        Ok(found.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Forgets opaque `token`.
    pub async fn delete_reference(&self, token: &str, now: i64) -> Result<(), Unavailable> {
        self.remove(&key("ref", token), now, false)
            .await
            .map(|_| ())
    }

    /// Adds `by` to counter `id` and returns its new value: a counter starts at 0, lives until
    /// the `expires` given when it was first counted, and is gone at 0. Atomic: of parallel
    /// adds each sees the others that came before it.
    pub async fn count(
        &self,
        id: &str,
        by: i64,
        expires: i64,
        now: i64,
    ) -> Result<i64, Unavailable> {
        self.sum(&key("count", id), by, expires, now).await
    }

    /// Forgets counter `id`.
    pub async fn reset_count(&self, id: &str, now: i64) -> Result<(), Unavailable> {
        self.remove(&key("count", id), now, false).await.map(|_| ())
    }
}
