//! The SSO session: a random cookie value (see `cookies`) that names a record in the store
//! (by its hash). The record carries a separate public `sid` for ID tokens, so an ID token
//! never reveals the cookie.

use serde::{Deserialize, Serialize};

use crate::store::{Kind, Record};

/// A signed-in person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Public session id (`sid` claim).
    pub sid: String,
    /// Subject.
    pub sub: String,
    /// When the person last entered credentials (`auth_time`).
    pub auth_time: i64,
    /// The identity provider used.
    pub idp: String,
    /// When the session ends.
    pub expires: i64,
    /// Clients that received tokens in this session (for logout).
    #[serde(default)]
    pub clients: Vec<String>,
}

impl Record for Session {
    const KIND: Kind = Kind::Session;
}
