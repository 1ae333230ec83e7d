//! The authorization code grant (RFC 6749 §4.1.3, RFC 7636): a code is taken from the store
//! atomically, so it redeems once; a second redemption finds what the first issued and
//! revokes it (RFC 6749 §4.1.2).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use signet_crds::snapshot::Client;
use signet_crds::v1alpha1::GrantType;

use super::user_tokens::{self, Grant, Issued, unavailable};
use crate::http::error::OAuthError;
use crate::loaded::Loaded;
use crate::signin::request::pkce_matches;
use crate::store::{Kind, Records, Store};

/// The request parameters.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// The code.
    pub code: String,
    /// Must equal the authorization request's.
    pub redirect_uri: Option<String>,
    /// PKCE verifier.
    pub code_verifier: Option<String>,
}

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

/// Redeems the code and issues tokens.
pub async fn redeem(
    loaded: &Loaded,
    store: &Store,
    client: &Client,
    request: &Request,
    now: i64,
) -> Result<Value, OAuthError> {
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the authorization code grant",
        ));
    }
    let Some(record) = store
        .take(Kind::Code, &request.code, now)
        .await
        .map_err(unavailable)?
    else {
        // Used before? Then whatever the first use issued is revoked.
        if let Some(issued) = store
            .get(Kind::CodeGrant, &request.code, now)
            .await
            .map_err(unavailable)?
            .and_then(|v| serde_json::from_value::<Issued>(v).ok())
        {
            user_tokens::revoke(store, &issued, now).await?;
            return Err(OAuthError::invalid_grant(
                "the code was already used; its tokens are revoked",
            ));
        }
        return Err(OAuthError::invalid_grant("unknown or expired code"));
    };
    let record: CodeRecord = serde_json::from_value(record)
        .map_err(|e| OAuthError::server_error(format!("code record: {e}")))?;
    check(&record, client, request)?;
    let (response, issued) = user_tokens::issue(
        loaded,
        store,
        client,
        &record.grant,
        record.nonce.as_deref(),
        None,
        now,
    )
    .await?;
    let keep_until = issued
        .family
        .as_ref()
        .map(|(_, end)| *end)
        .into_iter()
        .chain(issued.access_jti.as_ref().map(|(_, exp)| *exp))
        .max()
        .unwrap_or(now);
    store
        .put(
            Kind::CodeGrant,
            &request.code,
            &json!(issued),
            keep_until,
            now,
        )
        .await
        .map_err(unavailable)?;
    Ok(response)
}

/// The code belongs to this client, came back to the same redirect_uri, and the verifier
/// matches the challenge (a verifier without a challenge is a downgrade attempt).
fn check(record: &CodeRecord, client: &Client, request: &Request) -> Result<(), OAuthError> {
    if record.grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if request.redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&record.code_challenge, &request.code_verifier) {
        (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => Ok(()),
        (Some(_), _) => Err(OAuthError::invalid_grant("code_verifier does not match")),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent for a code issued without PKCE",
        )),
        (None, None) => Ok(()),
    }
}
