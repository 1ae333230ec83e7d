//! `kubernetes_service_account`: a pod authenticates with the ServiceAccount token Kubernetes
//! projected into it, sent as the client assertion together with `client_id` (Signet's
//! profile, docs/workload-identity.md). A ServiceAccount token's `iss` is the cluster and its
//! `sub` is `system:serviceaccount:NS:NAME`, so RFC 7523's rule that both name the client does
//! not fit; instead the client names the ServiceAccounts it accepts, `client_id` says which
//! client is meant, and the token's audiences must hold the issuer, the only audience Signet
//! accepts it for (as for private_key_jwt).
//!
//! Where the ServiceAccounts live decides how a token is checked: in the cluster the STS runs
//! in, its API server reviews it (`review`: it sees a deleted pod or ServiceAccount); in one
//! of the TokenService's trusted clusters, it is verified offline with that cluster's
//! published keys (`offline`).

mod offline;
mod review;

use base64::Engine;
use serde_json::Value;
use signet_crds::snapshot::Client;

pub use offline::Discovered;
pub use review::{CACHE_SECS, Reviews};

use crate::error::OAuthError;
use crate::loaded::Loaded;
use crate::outbound::Outbound;
use crate::remote_jwks::RemoteJwks;

/// What checks ServiceAccount tokens: the shared services of the app that the two ways use.
pub struct Checkers<'a> {
    /// The API server of the cluster the STS runs in, if it runs in one.
    pub kube: Option<&'a kube::Client>,
    /// Its recent positive reviews.
    pub reviews: &'a Reviews,
    /// JWK Sets by URL: this cluster's published keys and trusted clusters' keys.
    pub jwks: &'a RemoteJwks,
    /// Outbound https, for trusted clusters' keys.
    pub outbound: &'a Outbound,
    /// Trusted clusters' discovered JWK Set URLs.
    pub discovered: &'a Discovered,
}

/// The claims read from a token before any check of its signature: enough to refuse what no
/// check could accept, without asking an API server or fetching keys.
#[derive(Debug, PartialEq)]
pub struct Claims {
    /// `sub`.
    pub sub: String,
    /// `exp`.
    pub exp: i64,
}

/// The unverified claims of a JWT, if it is one: to route a token, never to trust it.
pub fn unverified(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether `aud` (a string or an array) holds `issuer`.
fn holds_audience(aud: &Value, issuer: &str) -> bool {
    crate::tokens::audiences(aud).contains(&issuer)
}

/// Reads `token`'s claims unverified and checks what needs no key: an expiry in the future
/// (a legacy Secret-based token has none: refused), `issuer` among the audiences, and a `sub`
/// the client accepts.
pub fn precheck(token: &str, client: &Client, issuer: &str, now: i64) -> Option<Claims> {
    let claims = unverified(token)?;
    let exp = claims["exp"].as_i64().filter(|exp| *exp > now)?;
    let sub = claims["sub"].as_str()?;
    let accepted = client.service_accounts.iter().any(|s| s == sub);
    (holds_audience(&claims["aud"], issuer) && accepted).then(|| Claims {
        sub: sub.to_owned(),
        exp,
    })
}

/// Authenticates `client` (one that names ServiceAccounts) with `token` at `now`.
pub async fn authenticate<'a>(
    loaded: &Loaded,
    checkers: &Checkers<'_>,
    client: &'a Client,
    token: &str,
    now: i64,
) -> Result<&'a Client, OAuthError> {
    verify(loaded, checkers, client, token, now).await?;
    Ok(client)
}

/// Checks that `token` is a live token of one of the ServiceAccounts `client` names, in the
/// cluster it names, and returns its claims; `invalid_client` otherwise (the caller of a
/// token exchange says `invalid_request` instead).
pub async fn verify(
    loaded: &Loaded,
    checkers: &Checkers<'_>,
    client: &Client,
    token: &str,
    now: i64,
) -> Result<Claims, OAuthError> {
    let issuer = loaded.issuer();
    let Some(claims) = precheck(token, client, issuer, now) else {
        tracing::info!(client_id = %client.client_id, "ServiceAccount token refused before any check: expired, legacy, another audience or another ServiceAccount");
        return Err(OAuthError::invalid_client());
    };
    let Some(name) = &client.workload_cluster else {
        review::authenticate(checkers, client, issuer, token, &claims, now).await?;
        return Ok(claims);
    };
    let trusted = &loaded.snapshot.trusted_clusters;
    let Some(cluster) = trusted.iter().find(|c| &c.name == name) else {
        // The compiler keeps such a client out; a hand-made snapshot could still say it.
        tracing::warn!(client_id = %client.client_id, cluster = %name, "the client's cluster is not trusted");
        return Err(OAuthError::invalid_client());
    };
    let anchor = loaded.cluster_anchors.get(name).map_or("", String::as_str);
    offline::authenticate(checkers, cluster, anchor, client, issuer, token, now).await?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    pub(super) use crate::testing::unsigned_jwt as token;

    pub(super) fn client() -> Client {
        let loaded = crate::testing::examples("workload");
        let mut client = loaded.clients.get("default.orders-worker").unwrap().clone();
        client.service_accounts = vec!["system:serviceaccount:team-a:worker".into()];
        client
    }

    pub(super) const ISSUER: &str = "https://id.example";
    pub(super) const NOW: i64 = 1_800_000_000;

    #[test]
    fn what_no_check_could_accept_is_refused_without_asking() {
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
}
