//! Operational state behind narrow stores, keyed by hashes of tokens (never the tokens), every
//! record with an expiry. `memory` serves one replica; a shared backend comes with scale-out.

mod memory;
mod redis;
#[cfg(test)]
mod suite;

pub use self::redis::RedisStore;
pub use memory::MemoryStore;

use std::future::Future;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The store is unreachable: whatever needs it fails closed.
#[derive(Debug, thiserror::Error)]
#[error("operational store unavailable: {0}")]
pub struct Unavailable(pub String);

/// The key under which state about `token` is kept: its SHA-256, hex.
pub fn token_key(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Single-use keys (client assertion `jti`s; later codes and device codes).
pub trait ReplayCache {
    /// Records `id` until `expires`; false when it was already recorded (a replay). Atomic.
    fn first_use(
        &self,
        id: &str,
        expires: i64,
        now: i64,
    ) -> impl Future<Output = Result<bool, Unavailable>> + Send;
}

/// Revoked JWT access tokens, by `jti`, until they would have expired anyway.
pub trait DenyList {
    /// Denies `jti` until `until`.
    fn deny(
        &self,
        jti: &str,
        until: i64,
        now: i64,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send;
    /// Whether `jti` is denied.
    fn is_denied(
        &self,
        jti: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, Unavailable>> + Send;
}

/// Opaque access tokens and their claims.
pub trait ReferenceTokens {
    /// Stores the claims of `token` until `expires`.
    fn put_reference(
        &self,
        token: &str,
        claims: Value,
        expires: i64,
        now: i64,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send;
    /// The claims of a live `token`.
    fn get_reference(
        &self,
        token: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<Value>, Unavailable>> + Send;
    /// Forgets `token`.
    fn delete_reference(
        &self,
        token: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send;
}

/// What a record is; part of its key, so kinds never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A pending authorization request between /authorize and the code (login, consent).
    Interaction,
    /// An SSO session, by the hash of its cookie.
    Session,
    /// An authorization code.
    Code,
    /// What the first redemption of a code issued, to revoke it on a second.
    CodeGrant,
    /// A refresh token.
    Refresh,
    /// A revoked refresh-token family.
    RevokedFamily,
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
            Kind::CodeGrant => "cgrant",
            Kind::Refresh => "rt",
            Kind::RevokedFamily => "rfam",
            Kind::Consent => "consent",
            Kind::Device => "dev",
            Kind::UserCode => "ucode",
            Kind::Upstream => "up",
            Kind::Profile => "prof",
        }
    }
}

/// JSON records by kind and id (stored under the hash of the id), each with an expiry.
pub trait Records {
    /// Stores `value` until `expires`, replacing any record under the same id.
    fn put(
        &self,
        kind: Kind,
        id: &str,
        value: &Value,
        expires: i64,
        now: i64,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send;
    /// The live record.
    fn get(
        &self,
        kind: Kind,
        id: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<Value>, Unavailable>> + Send;
    /// Removes the record and returns it. Atomic: of two racing takes, one gets it.
    fn take(
        &self,
        kind: Kind,
        id: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<Value>, Unavailable>> + Send;
    /// Removes the record.
    fn delete(
        &self,
        kind: Kind,
        id: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send;
}

/// The backend in use: `memory` (one replica) or `redis` (shared).
pub enum Store {
    /// In-process.
    Memory(MemoryStore),
    /// Shared by the replicas.
    Redis(RedisStore),
}

impl ReplayCache for Store {
    async fn first_use(&self, id: &str, expires: i64, now: i64) -> Result<bool, Unavailable> {
        match self {
            Store::Memory(s) => s.first_use(id, expires, now).await,
            Store::Redis(s) => s.first_use(id, expires, now).await,
        }
    }
}

impl DenyList for Store {
    async fn deny(&self, jti: &str, until: i64, now: i64) -> Result<(), Unavailable> {
        match self {
            Store::Memory(s) => s.deny(jti, until, now).await,
            Store::Redis(s) => s.deny(jti, until, now).await,
        }
    }

    async fn is_denied(&self, jti: &str, now: i64) -> Result<bool, Unavailable> {
        match self {
            Store::Memory(s) => s.is_denied(jti, now).await,
            Store::Redis(s) => s.is_denied(jti, now).await,
        }
    }
}

impl ReferenceTokens for Store {
    async fn put_reference(
        &self,
        token: &str,
        claims: Value,
        expires: i64,
        now: i64,
    ) -> Result<(), Unavailable> {
        match self {
            Store::Memory(s) => s.put_reference(token, claims, expires, now).await,
            Store::Redis(s) => s.put_reference(token, claims, expires, now).await,
        }
    }

    async fn get_reference(&self, token: &str, now: i64) -> Result<Option<Value>, Unavailable> {
        match self {
            Store::Memory(s) => s.get_reference(token, now).await,
            Store::Redis(s) => s.get_reference(token, now).await,
        }
    }

    async fn delete_reference(&self, token: &str, now: i64) -> Result<(), Unavailable> {
        match self {
            Store::Memory(s) => s.delete_reference(token, now).await,
            Store::Redis(s) => s.delete_reference(token, now).await,
        }
    }
}

impl Records for Store {
    async fn put(
        &self,
        kind: Kind,
        id: &str,
        value: &Value,
        expires: i64,
        now: i64,
    ) -> Result<(), Unavailable> {
        match self {
            Store::Memory(s) => s.put(kind, id, value, expires, now).await,
            Store::Redis(s) => s.put(kind, id, value, expires, now).await,
        }
    }

    async fn get(&self, kind: Kind, id: &str, now: i64) -> Result<Option<Value>, Unavailable> {
        match self {
            Store::Memory(s) => s.get(kind, id, now).await,
            Store::Redis(s) => s.get(kind, id, now).await,
        }
    }

    async fn take(&self, kind: Kind, id: &str, now: i64) -> Result<Option<Value>, Unavailable> {
        match self {
            Store::Memory(s) => s.take(kind, id, now).await,
            Store::Redis(s) => s.take(kind, id, now).await,
        }
    }

    async fn delete(&self, kind: Kind, id: &str, now: i64) -> Result<(), Unavailable> {
        match self {
            Store::Memory(s) => s.delete(kind, id, now).await,
            Store::Redis(s) => s.delete(kind, id, now).await,
        }
    }
}
