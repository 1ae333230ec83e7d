//! A pending authorization while the person signs in and consents: kept in the store under a
//! random id (in the page URL) with a CSRF token that every form of it must return, bound to
//! the browser that started it. Anyone can start an interaction and read its id and token from
//! its page, so the token alone does not stop a page the victim visits from posting the
//! attacker's form from the victim's browser (login CSRF, RFC 6749 §10.12). The binding does:
//! the interaction keeps the hash of the browser's binding cookie (`cookies`), and its pages and
//! forms serve only a browser that sends that cookie.

use serde::{Deserialize, Serialize};

use super::session::Session;
use crate::authorization_code::request::AuthorizationRequest;
use crate::store::{Kind, Record, Store, Unavailable};

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
    /// The hash of the binding cookie of the browser that started it (`cookies::binding_hash`);
    /// empty in an interaction from before bindings, which then serves no browser.
    #[serde(default)]
    pub binding: String,
    /// When it began.
    pub started: i64,
}

impl Record for Interaction {
    const KIND: Kind = Kind::Interaction;
}

impl Interaction {
    /// A new interaction for `purpose`, stored, bound to the browser whose binding cookie
    /// hashes to `binding`.
    pub async fn create(
        store: &Store,
        purpose: Purpose,
        binding: &str,
        now: i64,
    ) -> Result<Self, Unavailable> {
        let interaction = Self {
            id: crate::random::token(),
            purpose,
            csrf: crate::random::token(),
            binding: binding.to_owned(),
            started: now,
        };
        store
            .put(&interaction.id, &interaction, now + INTERACTION_SECS, now)
            .await?;
        Ok(interaction)
    }

    /// The live interaction `id`.
    pub async fn load(store: &Store, id: &str, now: i64) -> Result<Option<Self>, Unavailable> {
        store.get(id, now).await
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

    /// Whether a browser whose binding cookie is `cookie` started this interaction.
    pub fn bound_to(&self, cookie: Option<&str>) -> bool {
        let Some(cookie) = cookie.filter(|_| !self.binding.is_empty()) else {
            return false;
        };
        let hash = super::cookies::binding_hash(cookie);
        aws_lc_rs::constant_time::verify_slices_are_equal(self.binding.as_bytes(), hash.as_bytes())
            .is_ok()
    }

    /// Ends it (the code was issued, or the person denied).
    pub async fn finish(&self, store: &Store, now: i64) -> Result<(), Unavailable> {
        store.delete::<Self>(&self.id, now).await
    }
}

/// The live session behind a cookie value.
pub async fn session(
    store: &Store,
    cookie: &str,
    now: i64,
) -> Result<Option<Session>, Unavailable> {
    Ok(store
        .get::<Session>(cookie, now)
        .await?
        .filter(|s| s.expires > now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::cookies::binding_hash;

    fn bound(binding: &str) -> Interaction {
        Interaction {
            id: "i".into(),
            purpose: Purpose::Logout(LogoutRequest {
                post_logout_redirect_uri: None,
                state: None,
            }),
            csrf: "c".into(),
            binding: binding.into(),
            started: 0,
        }
    }

    #[test]
    fn an_interaction_serves_only_the_browser_that_started_it() {
        let interaction = bound(&binding_hash("the-browser"));
        assert!(interaction.bound_to(Some("the-browser")));
        assert!(!interaction.bound_to(Some("another-browser")));
        assert!(!interaction.bound_to(None));
        // The stored hash itself is not a cookie that passes.
        assert!(!interaction.bound_to(Some(&binding_hash("the-browser"))));
        // One stored before bindings existed serves nobody.
        assert!(!bound("").bound_to(Some("")));
    }
}
