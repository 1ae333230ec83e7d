//! Tokens for a person, shared by the authorization code and refresh token grants: an access
//! token, an ID token when `openid` was granted, and a rotated refresh token when
//! `offline_access` was.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use signet_crds::snapshot::Client;
use signet_crds::v1alpha1::GrantType;

use crate::compile_scope::granted_audiences;
use crate::http::error::OAuthError;
use crate::loaded::Loaded;
use crate::store::{Kind, Records, Store, Unavailable};
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

/// Issues tokens for `grant`. `nonce` goes into the ID token (codes only); `rotation`
/// continues a refresh family (refresh only).
pub async fn issue(
    loaded: &Loaded,
    store: &Store,
    client: &Client,
    grant: &Grant,
    nonce: Option<&str>,
    rotation: Option<Rotation<'_>>,
    now: i64,
) -> Result<(Value, Issued), OAuthError> {
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
        let wanted: Vec<&String> = grant
            .scopes
            .iter()
            .filter_map(|s| loaded.scopes.get(s))
            .flat_map(|s| &s.user_claims)
            .collect();
        let all =
            signin::claims::by_scope(user, &["profile".into(), "email".into(), "groups".into()]);
        for name in wanted {
            if let Some(value) = all.get(name) {
                claims[name.as_str()] = value.clone();
            }
        }
    }
    let jti = claims["jti"].as_str().unwrap_or_default().to_owned();
    let access_exp = claims["exp"].as_i64().unwrap_or(now);
    let access_token = tokens::issue(loaded, store, client, claims, now).await?;
    let mut response = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": client.lifetimes.access_token,
        "scope": grant.scopes.join(" "),
    });
    let mut issued = Issued {
        access_jti: Some((jti, access_exp)),
        family: None,
    };
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
    let refresh_grant = rotation.as_ref().map_or(grant, |r| r.grant);
    let offline = refresh_grant.scopes.iter().any(|s| s == "offline_access")
        && client.grant_types.contains(&GrantType::RefreshToken);
    if offline {
        let (family, absolute_expiry) = match &rotation {
            Some(r) => (r.family.to_owned(), r.end),
            None => (
                tokens::random_token(),
                now + client.lifetimes.refresh_token_absolute as i64,
            ),
        };
        let record = RefreshRecord {
            grant: refresh_grant.clone(),
            family: family.clone(),
            absolute_expiry,
        };
        let token = tokens::random_token();
        let expires = (now + client.lifetimes.refresh_token_sliding as i64).min(absolute_expiry);
        store
            .put(Kind::Refresh, &token, &json!(record), expires, now)
            .await
            .map_err(unavailable)?;
        response["refresh_token"] = json!(token);
        issued.family = Some((family, absolute_expiry));
    }
    Ok((response, issued))
}

/// Revokes what one issuance produced: its access token and its refresh family.
pub async fn revoke(store: &Store, issued: &Issued, now: i64) -> Result<(), OAuthError> {
    use crate::store::DenyList;
    if let Some((jti, exp)) = &issued.access_jti {
        store.deny(jti, *exp, now).await.map_err(unavailable)?;
    }
    if let Some((family, end)) = &issued.family {
        revoke_family(store, family, *end, now).await?;
    }
    Ok(())
}

/// Ends a refresh family: every token of it stops working.
pub async fn revoke_family(
    store: &Store,
    family: &str,
    end: i64,
    now: i64,
) -> Result<(), OAuthError> {
    store
        .put(Kind::RevokedFamily, family, &json!(true), end, now)
        .await
        .map_err(unavailable)
}
