//! Tokens of the cluster the STS runs in, reviewed by its API server (TokenReview, with the
//! issuer as audience): it sees a deleted ServiceAccount or a deleted bound pod. A positive
//! review is kept at most [`CACHE_SECS`] (never past the token's `exp`), keyed by the token's
//! hash, so the API server's write rate does not bound the token rate. Before a review, the
//! token's signature is checked against the cluster's own published keys, so a made-up token
//! (the right claims under someone else's key) costs the API server nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use serde_json::Value;
use signet_crds::snapshot::Client;

use super::{Checkers, Claims};
use crate::error::OAuthError;
use crate::jwks;
use crate::outbound::OutboundError;
use crate::remote_jwks::{Fetch, RemoteJwks};
use crate::store::token_key;

/// Where the API server publishes the keys that sign its ServiceAccount tokens; every
/// ServiceAccount may read it (the default binding of `system:service-account-issuer-discovery`).
const JWKS_PATH: &str = "/openid/v1/jwks";

/// Longest a positive review is believed.
pub const CACHE_SECS: i64 = 30;
/// Reviews kept at most (a flood of distinct tokens cannot grow memory without bound).
const MAX_CACHED: usize = 10_000;

/// What the API server said about a token.
#[derive(Clone, Debug, PartialEq)]
pub struct Reviewed {
    /// `system:serviceaccount:NS:NAME`.
    pub username: String,
    /// Until when this is believed.
    pub until: i64,
}

/// Positive reviews by token hash.
#[derive(Default)]
pub struct Reviews {
    cached: Mutex<HashMap<String, Reviewed>>,
}

impl Reviews {
    /// The review of `token` still believed at `now`.
    pub fn get(&self, token: &str, now: i64) -> Option<Reviewed> {
        let cached = self.cached.lock().expect("reviews lock");
        cached
            .get(&token_key(token))
            .filter(|r| r.until > now)
            .cloned()
    }

    /// Keeps a positive review of `token` (whose `exp` is `exp`) from `now`.
    pub fn keep(&self, token: &str, username: String, exp: i64, now: i64) {
        let mut cached = self.cached.lock().expect("reviews lock");
        if cached.len() >= MAX_CACHED {
            cached.retain(|_, r| r.until > now);
            if cached.len() >= MAX_CACHED {
                cached.clear();
            }
        }
        let until = (now + CACHE_SECS).min(exp);
        cached.insert(token_key(token), Reviewed { username, until });
    }
}

/// Asks the API server about `token` for audience `issuer`; the ServiceAccount's username when
/// it is authenticated for that audience.
pub async fn review(
    kube: &kube::Client,
    token: &str,
    issuer: &str,
) -> Result<Option<String>, kube::Error> {
    let request = TokenReview {
        spec: TokenReviewSpec {
            token: token.to_owned(),
            audiences: Some(vec![issuer.to_owned()]),
        },
        ..Default::default()
    };
    let reviewed = Api::<TokenReview>::all(kube.clone())
        .create(&PostParams::default(), &request)
        .await?;
    let Some(status) = reviewed.status else {
        return Ok(None);
    };
    let for_us = status
        .audiences
        .as_ref()
        .is_some_and(|a| a.iter().any(|a| a == issuer));
    if status.authenticated != Some(true) || !for_us {
        return Ok(None);
    }
    Ok(status.user.and_then(|u| u.username))
}

/// Reads the cluster's ServiceAccount keys through the STS's own API server connection.
struct ApiServerKeys<'a>(&'a kube::Client);

impl Fetch for ApiServerKeys<'_> {
    async fn fetch(&self, path: &str, _: bool) -> Result<Value, OutboundError> {
        let failed = |message: String| OutboundError::Failed {
            url: path.to_owned(),
            message,
        };
        let request = hyper::Request::get(path)
            .header(
                hyper::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .body(Vec::new())
            .map_err(|e| failed(e.to_string()))?;
        let text = self
            .0
            .request_text(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| failed(format!("JSON: {e}")))
    }

    fn anchor(&self) -> &str {
        "kube-apiserver"
    }
}

/// Whether one of the cluster's keys signed `token`: `Some(false)` refuses it without a
/// review; `None` (the keys out of reach) leaves the decision to the review alone.
async fn signed_by_cluster(
    jwks: &RemoteJwks,
    kube: &kube::Client,
    token: &str,
    now: i64,
) -> Option<bool> {
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Some(false);
    };
    let fetch = ApiServerKeys(kube);
    let kid = header.kid.as_deref();
    let keys = match jwks.keys(&fetch, JWKS_PATH, true, kid, now).await {
        Ok(keys) => keys,
        Err(error) => {
            tracing::debug!(%error, "no ServiceAccount keys of this cluster: the review alone decides");
            return None;
        }
    };
    // The signature only: the claims are the review's to judge.
    let validation = jwks::signature_only(header.alg);
    Some(jwks::verified(&keys, &header, token, &validation).is_some())
}

/// Authenticates `client` (whose ServiceAccounts live in this cluster) with `token`, whose
/// unverified claims are `claims`, at `now`.
pub(super) async fn authenticate<'a>(
    checkers: &Checkers<'_>,
    client: &'a Client,
    issuer: &str,
    token: &str,
    claims: &Claims,
    now: i64,
) -> Result<&'a Client, OAuthError> {
    let accepted = |username: &str| client.service_accounts.iter().any(|s| s == username);
    let reviews = checkers.reviews;
    if let Some(reviewed) = reviews.get(token, now) {
        return match accepted(&reviewed.username) {
            true => Ok(client),
            false => Err(OAuthError::invalid_client()),
        };
    }
    let Some(kube) = checkers.kube else {
        tracing::warn!(client_id = %client.client_id, "a ServiceAccount token needs a cluster to review it: this STS runs standalone");
        return Err(OAuthError::invalid_client());
    };
    if signed_by_cluster(checkers.jwks, kube, token, now).await == Some(false) {
        tracing::info!(client_id = %client.client_id, "ServiceAccount token refused: no key of this cluster signed it");
        return Err(OAuthError::invalid_client());
    }
    let username = review(kube, token, issuer).await.map_err(|error| {
        OAuthError::temporarily_unavailable(format!("TokenReview failed: {error}"))
    })?;
    match username {
        Some(username) if accepted(&username) && username == claims.sub => {
            reviews.keep(token, username, claims.exp, now);
            Ok(client)
        }
        _ => {
            tracing::info!(client_id = %client.client_id, "ServiceAccount token refused by the API server's review");
            Err(OAuthError::invalid_client())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_review_is_believed_thirty_seconds_at_most_and_never_past_the_token() {
        let reviews = Reviews::default();
        reviews.keep("t1", "system:serviceaccount:a:w".into(), NOW + 600, NOW);
        assert!(reviews.get("t1", NOW + CACHE_SECS - 1).is_some());
        assert!(reviews.get("t1", NOW + CACHE_SECS).is_none());
        reviews.keep("t2", "system:serviceaccount:a:w".into(), NOW + 5, NOW);
        assert!(
            reviews.get("t2", NOW + 5).is_none(),
            "the token's exp bounds it"
        );
        assert!(reviews.get("t3", NOW).is_none());
    }
}
