//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) checked without side effects,
//! and the back-channel logout token (Back-Channel Logout 1.0 §2.4).

use serde_json::{Value, json};

use super::interaction::LogoutRequest;
use super::session::Session;
use crate::form::Form;
use crate::loaded::Loaded;

/// The back-channel logout event.
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A checked logout request and whether the person must confirm it.
#[derive(Debug, PartialEq)]
pub struct Checked {
    /// What to do afterwards.
    pub request: LogoutRequest,
    /// No hint, or a hint for another person or session: ask first.
    pub confirm: bool,
}

/// Checks an end_session request. `hint` is `Some(Some(claims))` for a valid hint of ours,
/// `Some(None)` for a hint that does not verify, `None` without one. Errors are for a page:
/// a bad request never redirects.
pub fn check(
    loaded: &Loaded,
    form: &Form,
    hint: Option<Option<Value>>,
    session: Option<&Session>,
) -> Result<Checked, String> {
    let param = |name: &str| form.get(name).filter(|v| !v.is_empty());
    let hint = match hint {
        Some(None) => {
            return Err(
                "The sign-out request carries an ID token this service did not issue.".into(),
            );
        }
        Some(Some(claims)) => Some(claims),
        None => None,
    };
    let hint_client = hint.as_ref().and_then(|c| match &c["aud"] {
        Value::String(aud) => Some(aud.clone()),
        Value::Array(auds) => auds.first().and_then(Value::as_str).map(str::to_owned),
        _ => None,
    });
    let client_id = match (hint_client, param("client_id")) {
        (Some(a), Some(b)) if a != b => {
            return Err("The sign-out request names two different applications.".into());
        }
        (Some(a), _) => Some(a),
        (None, b) => b.map(str::to_owned),
    };
    let post_logout_redirect_uri = match param("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client_id
                .as_ref()
                .and_then(|id| loaded.clients.get(id))
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                return Err("The address to return to after signing out is not registered for this application.".into());
            }
            Some(uri.to_owned())
        }
    };
    let matches_session = match (&hint, session) {
        (Some(claims), Some(s)) => {
            claims["sub"].as_str() == Some(s.sub.as_str())
                && claims["sid"].as_str().is_none_or(|sid| sid == s.sid)
        }
        (Some(_), None) => true, // nothing to end; no need to ask
        (None, _) => false,
    };
    Ok(Checked {
        request: LogoutRequest {
            post_logout_redirect_uri,
            state: param("state").map(str::to_owned),
        },
        confirm: session.is_some() && !matches_session,
    })
}

/// The claims of a logout token for `client_id` about `session`.
pub fn token_claims(
    issuer: &str,
    client_id: &str,
    session: &Session,
    now: i64,
    jti: &str,
) -> Value {
    json!({
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + 120,
        "jti": jti,
        "sub": session.sub,
        "sid": session.sid,
        "events": { EVENT: {} },
    })
}
