//! Token exchange (RFC 8693), in two forms:
//!
//! - **Delegation**: an API that received a token (a person's, usually) gets a token for the
//!   next API, acting for the token's subject. Allowed only where the owners said so: the
//!   exchanging client is a declared resource server of an audience of the subject token (it
//!   exchanges only tokens addressed to it), and the target API's owner names it in
//!   `delegation.allowedClients`. Scopes only narrow, the lifetime never outlives the subject
//!   token, `may_act` (when present) must name the client, and `act` records the chain.
//! - **A workload's own identity**: a ServiceAccount token of the workload client (its cluster,
//!   one of the ServiceAccounts it names) becomes a Signet token whose `sub` is that
//!   ServiceAccount, for the APIs the client may use, as client_credentials would give.
//!
//! Errors follow RFC 8693 §2.2.2: a subject token that is invalid, or unacceptable by policy,
//! is `invalid_request`; a target the server will not issue for is `invalid_target`; a scope
//! beyond the subject token's is `invalid_scope`.

use serde::Deserialize;
use serde_json::{Value, json};
use signet_crds::snapshot::Client;
use signet_crds::v1alpha1::AccessTokenFormat;

use super::client_credentials;
use super::context::Context;
use super::user_tokens::unavailable;
use crate::error::OAuthError;
use crate::loaded::Loaded;
use crate::{signin, tokens, workload};

/// RFC 8693 §3 token type identifiers.
pub mod token_type {
    /// An access token of this issuer.
    pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
    /// Any JWT: an access token of this issuer, or a ServiceAccount token.
    pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
    /// Refused as a subject: an ID token says who signed in to a client, it grants nothing.
    pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
    /// Refused as a subject: a refresh token stays with the client it was issued to.
    pub const REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";
}

/// The most actors one token's `act` chain holds: a longer chain is refused.
pub const MAX_ACTORS: usize = 4;

/// The request parameters (RFC 8693 §2.1). `audience` and `resource` name one target each; a
/// repeated parameter is refused by the form parser.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// The token whose subject the new token is for.
    pub subject_token: String,
    /// Its type.
    pub subject_token_type: String,
    /// The type wanted; default access token.
    pub requested_token_type: Option<String>,
    /// The target API, by audience.
    pub audience: Option<String>,
    /// The target API, by resource indicator (RFC 8707).
    pub resource: Option<String>,
    /// Space-separated scopes; default: those of the subject token for the target.
    pub scope: Option<String>,
    /// Not supported: the authenticated client is the actor.
    pub actor_token: Option<String>,
}

/// Where the subject token comes from, by its type and issuer.
#[derive(Debug, PartialEq, Eq)]
pub enum Origin {
    /// An access token of this issuer.
    Signet,
    /// A ServiceAccount token of the exchanging workload client.
    ServiceAccount,
}

/// A request whose form is acceptable; the subject token is not checked yet.
#[derive(Debug)]
pub struct Validated {
    subject_token: String,
    origin: Origin,
    target: String,
    asked: Option<Vec<String>>,
    issued_token_type: &'static str,
}

/// What the new token says, decided by the policy.
#[derive(Debug, PartialEq)]
pub struct Exchange {
    /// Its subject.
    pub sub: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its one audience: the target.
    pub audience: String,
    /// Its expiry.
    pub exp: i64,
    /// The actor chain (delegation only).
    pub act: Option<Value>,
    /// The `jti`s it derives from (delegation only).
    pub origins: Vec<String>,
    /// When the person signed in, for a person's token.
    pub auth_time: Option<i64>,
}

/// Checks the request's form: the token types, no actor token, one target.
pub fn validate(ctx: &Context<'_>, request: Request) -> Result<Validated, OAuthError> {
    let client = ctx.client;
    // The compiler never gives a public client the grant; a client that proved nothing about
    // itself must not act for anyone, even in a hand-made snapshot.
    if client.auth_method == signet_crds::v1alpha1::AuthMethod::None {
        return Err(OAuthError::unauthorized_client(
            "a public client may not use token exchange",
        ));
    }
    if request.actor_token.is_some() {
        return Err(OAuthError::invalid_request(
            "actor_token is not supported: the authenticated client is the actor",
        ));
    }
    let ours = || {
        workload::unverified(&request.subject_token)
            .is_some_and(|claims| claims["iss"].as_str() == Some(ctx.loaded.issuer()))
    };
    let origin = match request.subject_token_type.as_str() {
        token_type::ACCESS_TOKEN => Origin::Signet,
        token_type::JWT if ours() => Origin::Signet,
        token_type::JWT => Origin::ServiceAccount,
        token_type::ID_TOKEN | token_type::REFRESH_TOKEN => {
            return Err(OAuthError::invalid_request(
                "ID tokens and refresh tokens are not accepted as subject tokens: send an access token",
            ));
        }
        other => {
            return Err(OAuthError::invalid_request(format!(
                "unsupported subject_token_type {other}"
            )));
        }
    };
    let issued_token_type = match request.requested_token_type.as_deref() {
        None | Some(token_type::ACCESS_TOKEN) => token_type::ACCESS_TOKEN,
        Some(token_type::JWT) if client.access_token_format == AccessTokenFormat::Jwt => {
            token_type::JWT
        }
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "requested_token_type {other} cannot be issued to this client: it gets access tokens"
            )));
        }
    };
    let target = match (request.audience, request.resource) {
        (Some(a), Some(r)) if a != r => {
            return Err(OAuthError::invalid_target(
                "audience and resource name different APIs: one target per exchange",
            ));
        }
        (Some(target), _) | (None, Some(target)) => target,
        (None, None) => {
            return Err(OAuthError::invalid_request(
                "name the API the token is for with audience or resource",
            ));
        }
    };
    Ok(Validated {
        subject_token: request.subject_token,
        origin,
        target,
        asked: request.scope.as_deref().map(super::split_scopes),
        issued_token_type,
    })
}

/// Checks the subject token, applies the policy and issues the token.
pub async fn issue(ctx: &Context<'_>, request: Validated) -> Result<Value, OAuthError> {
    let (loaded, store, client, now) = (ctx.loaded, ctx.store, ctx.client, ctx.now);
    let exchange = match request.origin {
        Origin::Signet => {
            let subject = signet_subject(ctx, &request.subject_token).await?;
            delegate(
                loaded,
                client,
                &subject,
                &request.target,
                request.asked.as_deref(),
                now,
            )?
        }
        Origin::ServiceAccount => {
            let (sub, exp) = service_account_subject(ctx, &request.subject_token).await?;
            own_identity(ctx, sub, exp, request.target, request.asked)?
        }
    };
    let audiences = [exchange.audience.clone()];
    let (sub, scopes) = (&exchange.sub, &exchange.scopes);
    let mut claims = match exchange.act {
        // A delegated token speaks for its subject: the acting client's static claims stay out.
        Some(_) => tokens::issuer_claims(loaded, client, sub, scopes, &audiences, now),
        None => tokens::access_claims(loaded, client, sub, scopes, &audiences, now),
    };
    claims["exp"] = json!(exchange.exp);
    if let Some(act) = &exchange.act {
        claims["act"] = act.clone();
        claims[tokens::ORIGINS] = json!(exchange.origins);
    }
    // A person's token (it has `auth_time`, which a machine's never has) keeps it, and gets the
    // person's claims the target API asked for, as a sign-in would give them.
    if let Some(auth_time) = exchange.auth_time {
        claims["auth_time"] = json!(auth_time);
        let person = signin::profile::person(loaded, store, sub, now)
            .await
            .map_err(unavailable)?;
        if let (Some(person), Some(target)) = (person, scope_of(loaded, &exchange.audience)) {
            for (name, value) in signin::claims::for_apis(&person, &target.user_claims) {
                claims[name] = value;
            }
        }
    }
    let token = tokens::issue(loaded, store, client, &claims, exchange.exp, now).await?;
    Ok(json!({
        "access_token": token,
        "issued_token_type": request.issued_token_type,
        "token_type": "Bearer",
        "expires_in": exchange.exp - now,
        "scope": exchange.scopes.join(" "),
    }))
}

/// The claims of a live access token of this issuer; an ID token, a refresh token, another
/// issuer's token, an expired or revoked one is `invalid_request`.
async fn signet_subject(ctx: &Context<'_>, token: &str) -> Result<Value, OAuthError> {
    let refused = || {
        OAuthError::invalid_request(
            "the subject token is not a live access token of this issuer (unknown, expired or revoked)",
        )
    };
    if token.split('.').count() == 3 {
        // ID tokens are signed with the same keys: only the header's type tells them apart.
        let header = jsonwebtoken::decode_header(token).map_err(|_| refused())?;
        if header.typ.as_deref() != Some("at+jwt") {
            return Err(OAuthError::invalid_request(
                "the subject token is not an access token (an ID token grants nothing)",
            ));
        }
    }
    tokens::resolve(ctx.loaded, ctx.store, token, ctx.now)
        .await?
        .ok_or_else(refused)
}

/// The ServiceAccount (its `sub`, qualified by the cluster's name for a trusted cluster) and
/// expiry of a live token of one the exchanging client names.
async fn service_account_subject(
    ctx: &Context<'_>,
    token: &str,
) -> Result<(String, i64), OAuthError> {
    let client = ctx.client;
    if client.service_accounts.is_empty() {
        return Err(OAuthError::invalid_request(
            "a token of another issuer is accepted only as the ServiceAccount token of a workload client that names that ServiceAccount",
        ));
    }
    let checkers = ctx
        .workload
        .as_ref()
        .ok_or_else(|| OAuthError::server_error("no ServiceAccount token checker"))?;
    let claims = workload::verify(ctx.loaded, checkers, client, token, ctx.now)
        .await
        .map_err(|error| match error.code() {
            "invalid_client" => OAuthError::invalid_request(
                "the subject token is not a live token of a ServiceAccount this client names",
            ),
            _ => error,
        })?;
    // `sub` is unique within this issuer: the same name in another cluster is someone else.
    let sub = match &client.workload_cluster {
        Some(cluster) => format!("{cluster}/{}", claims.sub),
        None => claims.sub,
    };
    Ok((sub, claims.exp))
}

/// A workload's own identity: the scopes and audience client_credentials would give the client
/// for the target, with the ServiceAccount as subject and the token's life as a bound.
fn own_identity(
    ctx: &Context<'_>,
    sub: String,
    subject_exp: i64,
    target: String,
    asked: Option<Vec<String>>,
) -> Result<Exchange, OAuthError> {
    let granted = client_credentials::validate(
        ctx,
        client_credentials::Request {
            scope: asked.map(|s| s.join(" ")),
            resource: Some(target.clone()),
        },
    )?;
    Ok(Exchange {
        sub,
        scopes: granted.scopes,
        audience: target,
        exp: (ctx.now + ctx.client.lifetimes.access_token as i64).min(subject_exp),
        act: None,
        origins: Vec::new(),
        auth_time: None,
    })
}

/// The delegation policy (module docs), in the order the checks are made, over the verified
/// claims of the subject token.
pub fn delegate(
    loaded: &Loaded,
    client: &Client,
    subject: &Value,
    target: &str,
    asked: Option<&[String]>,
    now: i64,
) -> Result<Exchange, OAuthError> {
    let me = client.client_id.as_str();
    // 1. Addressed to the exchanging client, as a resource server its owner declared.
    let addressed = tokens::audiences(&subject["aud"])
        .into_iter()
        .filter_map(|aud| scope_of(loaded, aud))
        .any(|scope| scope.resource_servers.iter().any(|id| id == me));
    if !addressed {
        return Err(OAuthError::invalid_request(
            "the subject token is not addressed to this client: only a declared resource server of its audience may exchange it",
        ));
    }
    // 2. The target's owner allows this client to act there.
    let Some(target_scope) = scope_of(loaded, target) else {
        return Err(OAuthError::invalid_target(format!(
            "no API has the audience {target}"
        )));
    };
    if !target_scope.delegation_clients.iter().any(|id| id == me) {
        return Err(OAuthError::invalid_target(format!(
            "the owner of {target} does not allow this client to act for others there (ApiScope delegation.allowedClients)"
        )));
    }
    // 3. Scopes only narrow; the life never outlasts the subject token's.
    let held = super::split_scopes(subject["scope"].as_str().unwrap_or_default());
    let scopes = match asked {
        Some(asked) => {
            if let Some(extra) = asked.iter().find(|s| !held.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "{extra} is not a scope of the subject token: an exchange only narrows"
                )));
            }
            asked.to_vec()
        }
        None => held
            .iter()
            .filter(|s| loaded.scopes.get(*s).and_then(|s| s.audience.as_deref()) == Some(target))
            .cloned()
            .collect(),
    };
    if let Some(identity) = scopes.iter().find(|s| !loaded.scopes.contains_key(*s)) {
        return Err(OAuthError::invalid_scope(format!(
            "{identity} is not an API scope: an exchange issues access tokens for APIs"
        )));
    }
    if !scopes
        .iter()
        .any(|s| loaded.scopes[s].audience.as_deref() == Some(target))
    {
        return Err(OAuthError::invalid_scope(format!(
            "none of the scopes is one of {target}'s"
        )));
    }
    let Some(subject_exp) = subject["exp"].as_i64() else {
        return Err(OAuthError::invalid_request(
            "the subject token has no expiry",
        ));
    };
    // 4. may_act, when present, names this client (and this issuer, if it names one).
    let may_act = &subject["may_act"];
    if !may_act.is_null()
        && (may_act["sub"].as_str() != Some(me)
            || !(may_act["iss"].is_null() || may_act["iss"].as_str() == Some(loaded.issuer())))
    {
        return Err(OAuthError::invalid_request(
            "the subject token's may_act does not name this client",
        ));
    }
    // The chain: this client acts now, for whoever acted before (RFC 8693 §4.1).
    let prior = &subject["act"];
    if actors(prior) >= MAX_ACTORS {
        return Err(OAuthError::invalid_request(format!(
            "the delegation chain would exceed {MAX_ACTORS} actors"
        )));
    }
    let mut act = json!({"sub": me});
    if !prior.is_null() {
        act["act"] = prior.clone();
    }
    let mut origins: Vec<String> = subject[tokens::ORIGINS]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    origins.extend(subject["jti"].as_str().map(str::to_owned));
    Ok(Exchange {
        sub: subject["sub"].as_str().unwrap_or_default().to_owned(),
        scopes,
        audience: target.to_owned(),
        exp: (now + client.lifetimes.access_token as i64).min(subject_exp),
        act: Some(act),
        origins,
        auth_time: subject["auth_time"].as_i64(),
    })
}

/// The ApiScope whose audience is `audience`.
fn scope_of<'a>(loaded: &'a Loaded, audience: &str) -> Option<&'a signet_crds::snapshot::Scope> {
    loaded
        .snapshot
        .scopes
        .iter()
        .find(|s| s.audience.as_deref() == Some(audience))
}

/// The number of actors in an `act` chain.
fn actors(act: &Value) -> usize {
    let mut count = 0;
    let mut at = act;
    while at.is_object() {
        count += 1;
        at = &at["act"];
    }
    count
}

#[cfg(test)]
#[path = "token_exchange_tests.rs"]
mod tests;
