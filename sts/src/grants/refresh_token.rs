//! The refresh token grant (RFC 6749 §6) with rotation: each token works once and is replaced
//! by a new one of the same family; presenting a used token again means it leaked, so the
//! whole family is revoked (RFC 9700 §4.14.2).

use serde::Deserialize;
use serde_json::Value;

use super::context::Context;
use super::user_tokens::{
    self, RefreshRecord, RevokedFamily, Rotation, revoke_family, unavailable,
};
use crate::error::OAuthError;
use crate::signin;
use crate::store::Store;

/// The request parameters.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// The refresh token.
    pub refresh_token: String,
    /// A subset of the granted scopes.
    pub scope: Option<String>,
}

/// The live record of `token` whose family is not revoked.
pub async fn live(
    store: &Store,
    token: &str,
    now: i64,
) -> Result<Option<RefreshRecord>, OAuthError> {
    let found: Option<RefreshRecord> = store.get(token, now).await.map_err(unavailable)?;
    let Some(record) = found else {
        return Ok(None);
    };
    let revoked = store
        .get::<RevokedFamily>(&record.family, now)
        .await
        .map_err(unavailable)?
        .is_some();
    Ok((!revoked).then_some(record))
}

/// A refresh request, its `scope` split.
pub struct Validated {
    /// The refresh token.
    refresh_token: String,
    /// The scopes asked for, if the request narrows the grant.
    asked: Option<Vec<String>>,
}

/// Splits the scopes asked for; which of them were granted is the record's to say.
pub fn validate(_ctx: &Context<'_>, request: Request) -> Result<Validated, OAuthError> {
    let asked = request.scope.as_deref().map(super::split_scopes);
    Ok(Validated {
        refresh_token: request.refresh_token,
        asked,
    })
}

/// Uses the refresh token once and issues new tokens.
pub async fn issue(ctx: &Context<'_>, request: Validated) -> Result<Value, OAuthError> {
    let (loaded, store, client, now) = (ctx.loaded, ctx.store, ctx.client, ctx.now);
    let invalid = || OAuthError::invalid_grant("unknown, expired or revoked refresh token");
    let record = live(store, &request.refresh_token, now)
        .await?
        .ok_or_else(invalid)?;
    if record.grant.client_id != client.client_id {
        return Err(invalid());
    }
    // The person and the permissions are checked against the current snapshot, not the one
    // of the first sign-in: a removed person's family ends here.
    let admitted = signin::admission::check(
        loaded,
        store,
        client,
        record.grant.idp.as_deref(),
        &record.grant.sub,
        now,
    )
    .await
    .map_err(unavailable)?;
    if let Err(why) = admitted {
        tracing::info!(client = %client.client_id, reason = %why, "refresh refused: the person is no longer admitted");
        revoke_family(store, &record.family, record.absolute_expiry, now).await?;
        return Err(invalid());
    }
    // Scopes the client lost since (its own list, or an API owner's namespace selector) are
    // gone from this family for good.
    let mut family_grant = record.grant.clone();
    family_grant
        .scopes
        .retain(|s| client.allowed_scopes.contains(s));
    // Scope is checked before the token is spent: a refused request leaves it usable.
    let mut grant = family_grant.clone();
    if let Some(asked) = request.asked {
        if let Some(extra) = asked.iter().find(|s| !family_grant.scopes.contains(s)) {
            return Err(OAuthError::invalid_scope(format!(
                "{extra} was not granted"
            )));
        }
        // The access token narrows; the new refresh token keeps the original grant.
        grant.scopes = asked;
    }
    // One use per token, atomically across replicas; the loser of a race, or a replay of a
    // rotated token, revokes the family.
    let first = store
        .first_use(
            &format!("refresh:{}", request.refresh_token),
            record.absolute_expiry,
            now,
        )
        .await
        .map_err(unavailable)?;
    if !first {
        revoke_family(store, &record.family, record.absolute_expiry, now).await?;
        return Err(OAuthError::invalid_grant(
            "refresh token reused; every token of its family is revoked",
        ));
    }
    let (response, _) = user_tokens::issue(
        ctx,
        &grant,
        None,
        Some(Rotation {
            family: &record.family,
            end: record.absolute_expiry,
            grant: &family_grant,
        }),
    )
    .await?;
    Ok(response)
}
