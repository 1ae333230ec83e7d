//! The code a signed-in person's browser carries to the client (RFC 6749 §4.1.2): 256 random
//! bits naming a record of what was granted, kept for the client's code lifetime; and the
//! consent a person gave a client, remembered so the next sign-in does not ask again.

use serde::{Deserialize, Serialize};

use super::request::AuthorizationRequest;
use crate::grants::user_tokens::{Grant, Issued};
use crate::loaded::Loaded;
use crate::signin::session::Session;
use crate::store::{Kind, Record, Store, Unavailable};

/// What a code stands for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CodeRecord {
    /// The grant.
    pub grant: Grant,
    /// The redirect_uri the code was sent to.
    pub redirect_uri: String,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Into the ID token.
    pub nonce: Option<String>,
}

/// Stores a code for `request` in `session` (whose cookie value is `cookie`) and notes the
/// client in the session, for logout. The code.
pub async fn issue(
    loaded: &Loaded,
    store: &Store,
    request: &AuthorizationRequest,
    cookie: &str,
    mut session: Session,
    now: i64,
) -> Result<String, Unavailable> {
    let client = &loaded.clients[&request.client_id];
    let record = CodeRecord {
        grant: Grant {
            client_id: client.client_id.clone(),
            sub: session.sub.clone(),
            scopes: request.scopes.clone(),
            auth_time: session.auth_time,
            sid: Some(session.sid.clone()),
            idp: Some(session.idp.clone()),
        },
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
    };
    let code = crate::random::token();
    let expires = now + client.lifetimes.authorization_code as i64;
    store
        .put(&code, &CodeState::Unused(record), expires, now)
        .await?;
    if !session.clients.contains(&client.client_id) {
        session.clients.push(client.client_id.clone());
        store.put(cookie, &session, session.expires, now).await?;
    }
    Ok(code)
}

/// A code in the store: unused, or used (redeemed, or spent by a wrong attempt) with what
/// its redemption issued, so that a replay revokes it. One key for both, so the change from
/// one to the other is a single compare-and-set. A record from before this form is unused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CodeState {
    /// Redeemed or spent.
    Used {
        /// The ids its redemption issued (none when a wrong attempt spent it).
        used: Issued,
    },
    /// Waiting for its redemption.
    Unused(CodeRecord),
}

impl Record for CodeState {
    const KIND: Kind = Kind::Code;
}

/// The scopes a person allowed a client, stored by `consent_id`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Consent(Vec<String>);

impl Record for Consent {
    const KIND: Kind = Kind::Consent;
}

/// Remembered consent: the scopes a person allowed a client, by `sub` and client.
fn consent_id(sub: &str, client_id: &str) -> String {
    format!("{sub}\u{0}{client_id}")
}

async fn consented(
    store: &Store,
    sub: &str,
    client_id: &str,
    now: i64,
) -> Result<Vec<String>, Unavailable> {
    let consent: Option<Consent> = store.get(&consent_id(sub, client_id), now).await?;
    Ok(consent.unwrap_or_default().0)
}

/// Whether `sub` already allowed `client_id` every one of `scopes`.
pub async fn consent_covers(
    store: &Store,
    sub: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<bool, Unavailable> {
    let granted = consented(store, sub, client_id, now).await?;
    Ok(scopes.iter().all(|s| granted.contains(s)))
}

/// Remembers that `sub` allowed the scopes of `request`, with those allowed before, for
/// `lifetime` seconds.
pub async fn remember_consent(
    store: &Store,
    sub: &str,
    request: &AuthorizationRequest,
    lifetime: i64,
    now: i64,
) -> Result<(), Unavailable> {
    let mut granted = consented(store, sub, &request.client_id, now).await?;
    for scope in &request.scopes {
        if !granted.contains(scope) {
            granted.push(scope.clone());
        }
    }
    let id = consent_id(sub, &request.client_id);
    store.put(&id, &Consent(granted), now + lifetime, now).await
}
