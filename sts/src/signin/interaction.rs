//! A pending authorization while the person signs in and consents: kept in the store under a
//! random id (in the page URL) with a CSRF token that every form of it must return.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::request::AuthorizationRequest;
use super::session::Session;
use crate::store::{Kind, Records, Store, Unavailable};

/// How long a person has to finish signing in.
pub const INTERACTION_SECS: i64 = 15 * 60;

/// What an interaction is for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// An authorization request, until a code is issued.
    Authorize(AuthorizationRequest),
    /// Approving a device's user code.
    Device {
        /// The code the person typed.
        user_code: String,
        /// The device's client.
        client_id: String,
    },
    /// Confirming a logout.
    Logout(LogoutRequest),
}

/// An RP-initiated logout request, checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogoutRequest {
    /// Where to go afterwards (registered for the client).
    pub post_logout_redirect_uri: Option<String>,
    /// Echoed back.
    pub state: Option<String>,
}

/// A pending interaction with a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// Its id.
    pub id: String,
    /// What it is for.
    pub purpose: Purpose,
    /// The CSRF token of its forms.
    pub csrf: String,
    /// When it began.
    pub started: i64,
}

impl Interaction {
    /// A new interaction for `purpose`, stored.
    pub async fn create(store: &Store, purpose: Purpose, now: i64) -> Result<Self, Unavailable> {
        let interaction = Self {
            id: crate::tokens::random_token(),
            purpose,
            csrf: crate::tokens::random_token(),
            started: now,
        };
        store
            .put(
                Kind::Interaction,
                &interaction.id,
                &json!(interaction),
                now + INTERACTION_SECS,
                now,
            )
            .await?;
        Ok(interaction)
    }

    /// The live interaction `id`.
    pub async fn load(store: &Store, id: &str, now: i64) -> Result<Option<Self>, Unavailable> {
        Ok(store
            .get(Kind::Interaction, id, now)
            .await?
            .and_then(|v| serde_json::from_value(v).ok()))
    }

    /// The authorization request, if that is what this is for.
    pub fn authorization(&self) -> Option<&AuthorizationRequest> {
        match &self.purpose {
            Purpose::Authorize(request) => Some(request),
            _ => None,
        }
    }

    /// The client this interaction is for, if any.
    pub fn client_id(&self) -> Option<&str> {
        match &self.purpose {
            Purpose::Authorize(request) => Some(&request.client_id),
            Purpose::Device { client_id, .. } => Some(client_id),
            Purpose::Logout(_) => None,
        }
    }

    /// Whether `csrf` is this interaction's token (constant time).
    pub fn csrf_matches(&self, csrf: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(self.csrf.as_bytes(), csrf.as_bytes())
            .is_ok()
    }

    /// Ends it (the code was issued, or the person denied).
    pub async fn finish(&self, store: &Store, now: i64) -> Result<(), Unavailable> {
        store.delete(Kind::Interaction, &self.id, now).await
    }
}

/// The live session behind a cookie value.
pub async fn session(
    store: &Store,
    cookie: &str,
    now: i64,
) -> Result<Option<Session>, Unavailable> {
    Ok(store
        .get(Kind::Session, cookie, now)
        .await?
        .and_then(|v| serde_json::from_value::<Session>(v).ok())
        .filter(|s| s.expires > now))
}

/// Remembered consent: the scopes a person allowed a client, by `sub` and client.
pub fn consent_id(sub: &str, client_id: &str) -> String {
    format!("{sub}\u{0}{client_id}")
}
