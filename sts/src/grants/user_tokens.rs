//! Tokens for a person, shared by the authorization code and refresh token grants: an access
//! token, an ID token when `openid` was granted, and a rotated refresh token when
//! `offline_access` was.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use signet_crds::v1alpha1::GrantType;

use super::audiences::granted_audiences;
use super::context::Context;
use crate::error::OAuthError;
use crate::store::{Kind, Record, Store, Unavailable};
use crate::{id_token, signin, tokens};

/// Store trouble becomes 503 temporarily_unavailable.
pub fn unavailable(error: Unavailable) -> OAuthError {
    OAuthError::temporarily_unavailable(error.to_string())
}

/// A person's grant to a client: what codes and refresh tokens carry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// The client.
    pub client_id: String,
    /// The person.
    pub sub: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When the person authenticated.
    pub auth_time: i64,
    /// Session id (`sid`).
    pub sid: Option<String>,
    /// The identity provider the person signed in with, re-checked at every refresh. Absent
    /// in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
}

/// A refresh token's record: the grant, its family and the family's absolute end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// What was granted.
    pub grant: Grant,
    /// Every rotation of one original refresh token shares the family.
    pub family: String,
    /// The family ends here, however often it is used.
    pub absolute_expiry: i64,
}

impl Record for RefreshRecord {
    const KIND: Kind = Kind::Refresh;
}

/// The mark of a revoked refresh family, under the family's id (stored as `true`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RevokedFamily(pub bool);

impl Record for RevokedFamily {
    const KIND: Kind = Kind::RevokedFamily;
}

/// The access tokens a refresh family issued that may still be alive, by `jti` with their
/// expiry, so that ending the family denies them too (RFC 7009 §2.1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FamilyAccess {
    /// `(jti, exp)` of each.
    pub tokens: Vec<(String, i64)>,
}

impl Record for FamilyAccess {
    const KIND: Kind = Kind::FamilyAccess;
}

/// The most access tokens of one family kept alive at once.
const MAX_FAMILY_ACCESS: usize = 32;

/// How many times a change to a family's list is tried again after losing a race.
const ATTEMPTS: usize = 5;

/// Adds an access token to its family's list (dropping the expired ones), before the token
/// exists, so a revocation of the family can never miss it.
async fn remember_access(
    store: &Store,
    family: &str,
    end: i64,
    access: (String, i64),
    now: i64,
) -> Result<(), OAuthError> {
    for _ in 0..ATTEMPTS {
        let Some(read) = store
            .get_versioned::<FamilyAccess>(family, now)
            .await
            .map_err(unavailable)?
        else {
            let first = FamilyAccess {
                tokens: vec![access.clone()],
            };
            if store
                .create(family, &first, end, now)
                .await
                .map_err(unavailable)?
            {
                return Ok(());
            }
            continue;
        };
        let mut list = read.record.clone();
        list.tokens.retain(|(_, exp)| *exp > now);
        list.tokens.push(access.clone());
        // Bounded: a client rotating as fast as it can would otherwise grow a record that is
        // rewritten at every rotation. The oldest are denied, as a revocation would.
        let over = list.tokens.len().saturating_sub(MAX_FAMILY_ACCESS);
        let dropped: Vec<(String, i64)> = list.tokens.drain(..over).collect();
        if store
            .replace(family, &read, &list, end, now)
            .await
            .map_err(unavailable)?
        {
            for (jti, exp) in &dropped {
                store.deny(jti, *exp, now).await.map_err(unavailable)?;
            }
            return Ok(());
        }
    }
    Err(unavailable(Unavailable::Contended(
        "a refresh family's tokens",
    )))
}

/// What one issuance produced, for revocation should its code be replayed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Issued {
    /// `jti` of the access token and when it expires.
    pub access_jti: Option<(String, i64)>,
    /// Refresh family, if any, and when it ends.
    pub family: Option<(String, i64)>,
}

/// A refresh family being continued by rotation: the new refresh token keeps the family's
/// original grant, even when the access token asked for fewer scopes.
pub struct Rotation<'a> {
    /// The family.
    pub family: &'a str,
    /// Its absolute end.
    pub end: i64,
    /// The grant the family was created with.
    pub grant: &'a Grant,
}

/// The ids an issuance for `grant` will use, chosen before anything is issued (so a code's
/// record can name them before the tokens exist): the access token's `jti` and expiry, and
/// the refresh family with its end when a refresh token comes too.
pub fn plan(ctx: &Context<'_>, grant: &Grant, rotation: Option<&Rotation<'_>>) -> Issued {
    let (client, now) = (ctx.client, ctx.now);
    let refresh_grant = rotation.map_or(grant, |r| r.grant);
    let offline = refresh_grant.scopes.iter().any(|s| s == "offline_access")
        && client.grant_types.contains(&GrantType::RefreshToken);
    let family = offline.then(|| match rotation {
        Some(r) => (r.family.to_owned(), r.end),
        None => (
            crate::random::token(),
            now + client.lifetimes.refresh_token_absolute as i64,
        ),
    });
    Issued {
        access_jti: Some((
            crate::random::token(),
            now + client.lifetimes.access_token as i64,
        )),
        family,
    }
}

/// Issues tokens for `grant` with fresh ids. `nonce` goes into the ID token (codes only);
/// `rotation` continues a refresh family (refresh only).
pub async fn issue(
    ctx: &Context<'_>,
    grant: &Grant,
    nonce: Option<&str>,
    rotation: Option<Rotation<'_>>,
) -> Result<(Value, Issued), OAuthError> {
    let planned = plan(ctx, grant, rotation.as_ref());
    let response = issue_planned(ctx, grant, nonce, rotation, &planned).await?;
    Ok((response, planned))
}

/// Issues tokens for `grant` under the ids `planned` chose.
pub async fn issue_planned(
    ctx: &Context<'_>,
    grant: &Grant,
    nonce: Option<&str>,
    rotation: Option<Rotation<'_>>,
    planned: &Issued,
) -> Result<Value, OAuthError> {
    let (loaded, store, client, now) = (ctx.loaded, ctx.store, ctx.client, ctx.now);
    let user = signin::profile::person(loaded, store, &grant.sub, now)
        .await
        .map_err(unavailable)?;
    let user = user.as_deref();
    let mut audiences = granted_audiences(loaded, &grant.scopes);
    if audiences.is_empty() {
        // Only identity scopes: the token is for this issuer's userinfo endpoint.
        audiences.push(loaded.issuer().to_owned());
    }
    let mut claims =
        tokens::access_claims(loaded, client, &grant.sub, &grant.scopes, &audiences, now);
    claims["auth_time"] = json!(grant.auth_time);
    if let Some(sid) = &grant.sid {
        claims["sid"] = json!(sid);
    }
    // ApiScope userClaims: the person's claims an API asked for.
    if let Some(user) = user {
        let wanted = grant
            .scopes
            .iter()
            .filter_map(|s| loaded.scopes.get(s))
            .flat_map(|s| &s.user_claims);
        for (name, value) in signin::claims::for_apis(user, wanted) {
            claims[name] = value;
        }
    }
    if let Some((jti, exp)) = &planned.access_jti {
        claims["jti"] = json!(jti);
        claims["exp"] = json!(exp);
        if let Some((family, end)) = &planned.family {
            remember_access(store, family, *end, (jti.clone(), *exp), now).await?;
            // A revocation either read the list after this token joined it (and denied it),
            // or marked the family before this check (then this denies it): either way the
            // token is dead on arrival, as its refresh token is.
            let revoked = store
                .get::<RevokedFamily>(family, now)
                .await
                .map_err(unavailable)?;
            if revoked.is_some() {
                store.deny(jti, *exp, now).await.map_err(unavailable)?;
            }
        }
    }
    let exp = claims["exp"].as_i64().unwrap_or(now);
    let access_token = tokens::issue(loaded, store, client, &claims, exp, now).await?;
    let mut response = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": client.lifetimes.access_token,
        "scope": grant.scopes.join(" "),
    });
    if grant.scopes.iter().any(|s| s == "openid") {
        let claims = user
            .map(|u| signin::claims::by_scope(u, &grant.scopes))
            .unwrap_or_default();
        response["id_token"] = json!(id_token::issue(
            loaded,
            client,
            id_token::Subject {
                sub: &grant.sub,
                auth_time: grant.auth_time,
                sid: grant.sid.as_deref(),
                nonce,
                claims,
            },
            &access_token,
            now,
        )?);
    }
    if let Some((family, absolute_expiry)) = &planned.family {
        let refresh_grant = rotation.as_ref().map_or(grant, |r| r.grant);
        let absolute_expiry = *absolute_expiry;
        let record = RefreshRecord {
            grant: refresh_grant.clone(),
            family: family.clone(),
            absolute_expiry,
        };
        let token = crate::random::token();
        let expires = (now + client.lifetimes.refresh_token_sliding as i64).min(absolute_expiry);
        store
            .put(&token, &record, expires, now)
            .await
            .map_err(unavailable)?;
        response["refresh_token"] = json!(token);
    }
    Ok(response)
}

/// Revokes what one issuance produced: its access token and its refresh family.
pub async fn revoke(store: &Store, issued: &Issued, now: i64) -> Result<(), OAuthError> {
    if let Some((jti, exp)) = &issued.access_jti {
        store.deny(jti, *exp, now).await.map_err(unavailable)?;
    }
    if let Some((family, end)) = &issued.family {
        revoke_family(store, family, *end, now).await?;
    }
    Ok(())
}

/// Ends a refresh family: every refresh token of it stops working, and every access token it
/// issued that is still alive is denied for as long as it would have lived.
pub async fn revoke_family(
    store: &Store,
    family: &str,
    end: i64,
    now: i64,
) -> Result<(), OAuthError> {
    // The mark first: from here on no rotation of the family issues anything new.
    store
        .put(family, &RevokedFamily(true), end, now)
        .await
        .map_err(unavailable)?;
    let issued = store
        .get::<FamilyAccess>(family, now)
        .await
        .map_err(unavailable)?
        .unwrap_or_default();
    for (jti, exp) in issued.tokens.iter().filter(|(_, exp)| *exp > now) {
        store.deny(jti, *exp, now).await.map_err(unavailable)?;
    }
    Ok(())
}
