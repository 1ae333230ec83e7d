//! `kubernetes_service_account`: a pod authenticates with the ServiceAccount token Kubernetes
//! projected into it, sent as the client assertion together with `client_id` (Signet's
//! profile, docs/workload-identity.md). A ServiceAccount token's `iss` is the cluster and its
//! `sub` is `system:serviceaccount:NS:NAME`, so RFC 7523's rule that both name the client does
//! not fit; instead the client names the ServiceAccounts it accepts, `client_id` says which
//! client is meant, and the token's audiences must hold the issuer, the only audience Signet
//! accepts it for (as for private_key_jwt).
//!
//! The token is reviewed by the API server of the cluster the STS runs in (TokenReview, with
//! the issuer as audience): it sees a deleted ServiceAccount or a deleted bound pod. A positive
//! review is kept at most [`CACHE_SECS`] (never past the token's `exp`), keyed by the token's
//! hash, so the API server's write rate does not bound the token rate.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use serde_json::Value;
use signet_crds::snapshot::Client;

use crate::error::OAuthError;
use crate::store::token_key;

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

/// The claims read from a token before any review: enough to refuse what no review could
/// accept without asking the API server.
#[derive(Debug, PartialEq)]
pub struct Claims {
    /// `sub`.
    pub sub: String,
    /// `exp`.
    pub exp: i64,
}

/// Reads `token`'s claims unverified and checks what needs no key: an expiry in the future
/// (a legacy Secret-based token has none: refused), `issuer` among the audiences, and a `sub`
/// the client accepts.
pub fn precheck(token: &str, client: &Client, issuer: &str, now: i64) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims["exp"].as_i64().filter(|exp| *exp > now)?;
    let for_us = match &claims["aud"] {
        Value::String(aud) => aud == issuer,
        Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(issuer)),
        _ => false,
    };
    let sub = claims["sub"].as_str()?;
    (for_us && client.service_accounts.iter().any(|s| s == sub)).then(|| Claims {
        sub: sub.to_owned(),
        exp,
    })
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

/// Authenticates `client` (one that names ServiceAccounts) with `token` at `now`.
pub async fn authenticate<'a>(
    kube: Option<&kube::Client>,
    reviews: &Reviews,
    client: &'a Client,
    issuer: &str,
    token: &str,
    now: i64,
) -> Result<&'a Client, OAuthError> {
    let accepted = |username: &str| client.service_accounts.iter().any(|s| s == username);
    let Some(claims) = precheck(token, client, issuer, now) else {
        tracing::info!(client_id = %client.client_id, "ServiceAccount token refused before review: expired, legacy, another audience or another ServiceAccount");
        return Err(OAuthError::invalid_client());
    };
    if let Some(reviewed) = reviews.get(token, now) {
        return match accepted(&reviewed.username) {
            true => Ok(client),
            false => Err(OAuthError::invalid_client()),
        };
    }
    let Some(kube) = kube else {
        tracing::warn!(client_id = %client.client_id, "a ServiceAccount token needs a cluster to review it: this STS runs standalone");
        return Err(OAuthError::invalid_client());
    };
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

    fn token(claims: Value) -> String {
        let encode = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        format!(
            "{}.{}.sig",
            encode(&serde_json::json!({"alg": "RS256"})),
            encode(&claims)
        )
    }

    fn client() -> Client {
        let loaded = crate::testing::examples("workload");
        let mut client = loaded.clients.get("default.orders-worker").unwrap().clone();
        client.service_accounts = vec!["system:serviceaccount:team-a:worker".into()];
        client
    }

    const ISSUER: &str = "https://id.example";
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn what_no_review_could_accept_is_refused_without_asking() {
        let client = client();
        let good = serde_json::json!({
            "iss": "https://kubernetes.default.svc",
            "sub": "system:serviceaccount:team-a:worker",
            "aud": [ISSUER],
            "exp": NOW + 600,
        });
        assert_eq!(
            precheck(&token(good.clone()), &client, ISSUER, NOW),
            Some(Claims {
                sub: "system:serviceaccount:team-a:worker".into(),
                exp: NOW + 600
            })
        );
        let with = |key: &str, value: Value| {
            let mut claims = good.clone();
            claims[key] = value;
            token(claims)
        };
        let without = |key: &str| {
            let mut claims = good.clone();
            claims.as_object_mut().unwrap().remove(key);
            token(claims)
        };
        for (why, refused) in [
            ("expired", with("exp", NOW.into())),
            ("legacy: no exp", without("exp")),
            (
                "the API server's audience",
                with("aud", serde_json::json!(["https://kubernetes.default.svc"])),
            ),
            (
                "another ServiceAccount",
                with("sub", "system:serviceaccount:team-a:other".into()),
            ),
            (
                "another namespace",
                with("sub", "system:serviceaccount:team-b:worker".into()),
            ),
            ("not a JWT", "garbage".to_owned()),
        ] {
            assert_eq!(precheck(&refused, &client, ISSUER, NOW), None, "{why}");
        }
    }

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
