//! Access tokens: JWTs per RFC 9068, or opaque reference tokens resolved by introspection.

use serde_json::{Value, json};
use signet_crds::snapshot::Client;
use signet_crds::v1alpha1::AccessTokenFormat;

use crate::error::OAuthError;
use crate::loaded::Loaded;
use crate::store::Store;

/// The claims of an access token (RFC 9068 §2.2): the client's static claims, then the
/// issuer's.
pub fn access_claims(
    loaded: &Loaded,
    client: &Client,
    sub: &str,
    scopes: &[String],
    audiences: &[String],
    now: i64,
) -> Value {
    // Static claims first, so nothing a tenant wrote can replace a claim the issuer sets
    // (compile() already drops reserved names; this holds even if it did not).
    let mut claims = json!(client.claims);
    if let (Value::Object(claims), Value::Object(issued)) = (
        &mut claims,
        issuer_claims(loaded, client, sub, scopes, audiences, now),
    ) {
        claims.extend(issued);
    }
    claims
}

/// The claims the issuer sets in every access token, without the client's static claims
/// (which a delegated token leaves out: they speak for the client, not for the subject).
pub fn issuer_claims(
    loaded: &Loaded,
    client: &Client,
    sub: &str,
    scopes: &[String],
    audiences: &[String],
    now: i64,
) -> Value {
    json!({
        "iss": loaded.issuer(),
        "sub": sub,
        "aud": if audiences.len() == 1 { json!(audiences[0]) } else { json!(audiences) },
        "client_id": client.client_id,
        "scope": scopes.join(" "),
        "iat": now,
        "nbf": now,
        "exp": now + client.lifetimes.access_token as i64,
        "jti": crate::random::token(),
    })
}

/// The audiences of an `aud` claim, a string or an array (RFC 7519 §4.1.3).
pub fn audiences(aud: &Value) -> Vec<&str> {
    match aud {
        Value::String(a) => vec![a.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// The claim of an exchanged token (RFC 8693) listing the `jti` of every token it was derived
/// from, oldest first: denying any of them (a revoked token, an ended refresh family) denies
/// it too. Signet's own; no RFC names one.
pub const ORIGINS: &str = "signet_origins";

/// Whether the token with `claims` is denied: its own `jti`, or that of a token it was
/// exchanged from.
async fn denied(
    store: &Store,
    claims: &Value,
    now: i64,
) -> Result<bool, crate::store::Unavailable> {
    let jti = claims["jti"].as_str().unwrap_or_default();
    if store.is_denied(jti, now).await? {
        return Ok(true);
    }
    let origins = claims[ORIGINS]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for origin in origins {
        if store
            .is_denied(origin.as_str().unwrap_or_default(), now)
            .await?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Issues the access token: signed, or stored and referenced.
pub async fn issue(
    loaded: &Loaded,
    store: &Store,
    client: &Client,
    claims: Value,
    now: i64,
) -> Result<String, OAuthError> {
    match client.access_token_format {
        AccessTokenFormat::Jwt => {
            let signer = loaded
                .signers
                .get(&loaded.snapshot.access_token_signing_alg)
                .ok_or_else(|| OAuthError::server_error("no active access-token key"))?;
            Ok(signer.sign("at+jwt", &claims))
        }
        AccessTokenFormat::Reference => {
            let token = crate::random::token();
            let expires = claims["exp"].as_i64().unwrap_or(now);
            store
                .put_reference(&token, &claims, expires, now)
                .await
                .map_err(|e| OAuthError::temporarily_unavailable(e.to_string()))?;
            Ok(token)
        }
    }
}

/// The claims of a token this issuer made and that is still good, or None: a bad signature,
/// another issuer, expiry, revocation and garbage all look the same.
pub async fn resolve(
    loaded: &Loaded,
    store: &Store,
    token: &str,
    now: i64,
) -> Result<Option<Value>, OAuthError> {
    let unavailable =
        |e: crate::store::Unavailable| OAuthError::temporarily_unavailable(e.to_string());
    if token.split('.').count() != 3 {
        let Some(claims) = store.get_reference(token, now).await.map_err(unavailable)? else {
            return Ok(None);
        };
        // A reference token is denied by its `jti` like a JWT (a replayed code, an ended
        // refresh family), since whoever denies it knows the id, not the token.
        if denied(store, &claims, now).await.map_err(unavailable)? {
            return Ok(None);
        }
        return Ok(Some(claims));
    }
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Ok(None);
    };
    let Some((alg, key)) = header
        .kid
        .as_ref()
        .and_then(|kid| loaded.verifiers.get(kid))
    else {
        return Ok(None);
    };
    let Ok(jws_alg) = format!("{alg:?}").parse::<jsonwebtoken::Algorithm>() else {
        return Ok(None);
    };
    let mut validation = jsonwebtoken::Validation::new(jws_alg);
    validation.set_issuer(&[loaded.issuer()]);
    validation.validate_aud = false;
    validation.leeway = 0;
    let Ok(data) = jsonwebtoken::decode::<Value>(token, key, &validation) else {
        return Ok(None);
    };
    let claims = data.claims;
    if claims["exp"].as_i64().is_none_or(|exp| exp <= now) {
        return Ok(None);
    }
    if denied(store, &claims, now).await.map_err(unavailable)? {
        return Ok(None);
    }
    Ok(Some(claims))
}

/// The claims of an ID token this issuer signed, whether or not it has expired (an
/// `id_token_hint` may be old, OIDC Core §3.1.2.1); None for anything else.
pub fn verify_own_id_token(loaded: &Loaded, token: &str) -> Option<Value> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let (alg, key) = loaded.verifiers.get(header.kid.as_ref()?)?;
    let jws_alg = format!("{alg:?}").parse::<jsonwebtoken::Algorithm>().ok()?;
    let mut validation = jsonwebtoken::Validation::new(jws_alg);
    validation.set_issuer(&[loaded.issuer()]);
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(token, key, &validation)
        .ok()?
        .claims;
    // An access token is not an ID token.
    (header.typ.as_deref() != Some("at+jwt")).then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Even a client whose static claims bypassed compile() cannot replace a claim the issuer
    /// sets (iss, sub, aud, client_id, scope, exp, jti).
    #[test]
    fn static_claims_never_replace_the_issuers_claims() {
        let loaded = crate::testing::examples("access-claims");
        let mut client = loaded.clients["default.orders-worker"].clone();
        for name in ["iss", "sub", "aud", "client_id", "scope", "exp", "jti"] {
            client.claims.insert(name.into(), "forged".into());
        }
        client.claims.insert("team".into(), "orders".into());
        let claims = access_claims(
            &loaded,
            &client,
            "default.orders-worker",
            &["orders.read".into()],
            &["https://orders.example.com".into()],
            1_800_000_000,
        );
        assert_eq!(claims["iss"], loaded.issuer());
        assert_eq!(claims["sub"], "default.orders-worker");
        assert_eq!(claims["aud"], "https://orders.example.com");
        assert_eq!(claims["client_id"], "default.orders-worker");
        assert_eq!(claims["scope"], "orders.read");
        assert_eq!(claims["exp"], 1_800_000_000 + client.lifetimes.access_token);
        assert_ne!(claims["jti"], "forged");
        assert_eq!(claims["team"], "orders");
    }
}
