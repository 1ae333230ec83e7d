//! Access tokens: JWTs per RFC 9068, or opaque reference tokens resolved by introspection.

use serde::Serialize;
use serde_json::Value;
use signet_crds::snapshot::Client;
use signet_crds::v1alpha1::AccessTokenFormat;

use crate::error::OAuthError;
use crate::loaded::Loaded;
use crate::store::Store;

/// The claims of an access token (RFC 9068 §2.2), written as JSON straight from these fields
/// (no JSON tree on the client_credentials path): the client's static claims, if any, then the
/// issuer's.
#[derive(Debug, Serialize)]
pub struct AccessClaims<'a> {
    #[serde(flatten)]
    statics: Statics<'a>,
    iss: &'a str,
    sub: &'a str,
    aud: Audience<'a>,
    client_id: &'a str,
    scope: String,
    iat: i64,
    nbf: i64,
    /// Expiry, Unix seconds.
    pub exp: i64,
    jti: String,
}

/// The names the issuer sets: a static claim never takes one (compile() already drops them;
/// this holds even if it did not, and keeps every name once in the JSON).
const ISSUER_CLAIMS: [&str; 9] = [
    "iss",
    "sub",
    "aud",
    "client_id",
    "scope",
    "iat",
    "nbf",
    "exp",
    "jti",
];

/// A client's static claims without the issuer's names.
#[derive(Debug)]
struct Statics<'a>(Option<&'a std::collections::BTreeMap<String, String>>);

impl Serialize for Statics<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.0
                .into_iter()
                .flatten()
                .filter(|(name, _)| !ISSUER_CLAIMS.contains(&name.as_str())),
        )
    }
}

/// `aud`: one audience as a string, several as an array (RFC 7519 §4.1.3).
#[derive(Debug)]
struct Audience<'a>(&'a [String]);

impl Serialize for Audience<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

impl<'a> AccessClaims<'a> {
    /// The claims for `sub`, with the client's static claims when `statics`.
    pub fn new(
        loaded: &'a Loaded,
        client: &'a Client,
        sub: &'a str,
        scopes: &[String],
        audiences: &'a [String],
        now: i64,
        statics: bool,
    ) -> Self {
        Self {
            statics: Statics(statics.then_some(&client.claims)),
            iss: loaded.issuer(),
            sub,
            aud: Audience(audiences),
            client_id: &client.client_id,
            scope: scopes.join(" "),
            iat: now,
            nbf: now,
            exp: now + client.lifetimes.access_token as i64,
            jti: crate::random::token(),
        }
    }

    /// As a JSON object, for grants that add claims (auth_time, act, userClaims).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("claims serialise to JSON")
    }
}

/// The claims of an access token as a JSON object: the client's static claims, then the
/// issuer's.
pub fn access_claims(
    loaded: &Loaded,
    client: &Client,
    sub: &str,
    scopes: &[String],
    audiences: &[String],
    now: i64,
) -> Value {
    AccessClaims::new(loaded, client, sub, scopes, audiences, now, true).to_value()
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
    AccessClaims::new(loaded, client, sub, scopes, audiences, now, false).to_value()
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

/// Issues the access token with `claims` (expiring at `exp`): signed, or stored and
/// referenced.
pub async fn issue(
    loaded: &Loaded,
    store: &Store,
    client: &Client,
    claims: &impl Serialize,
    exp: i64,
    now: i64,
) -> Result<String, OAuthError> {
    match client.access_token_format {
        AccessTokenFormat::Jwt => {
            let signer = loaded
                .signers
                .get(&loaded.snapshot.access_token_signing_alg)
                .ok_or_else(|| OAuthError::server_error("no active access-token key"))?;
            Ok(signer.sign("at+jwt", claims))
        }
        AccessTokenFormat::Reference => {
            let token = crate::random::token();
            let claims = serde_json::to_value(claims).expect("claims serialise to JSON");
            store
                .put_reference(&token, &claims, exp, now)
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
    let Some(verified) = crate::jose::verify(token, &loaded.verifiers) else {
        return Ok(None);
    };
    let claims = verified.claims;
    if claims["iss"].as_str() != Some(loaded.issuer()) {
        return Ok(None);
    }
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
    let verified = crate::jose::verify(token, &loaded.verifiers)?;
    // An access token is not an ID token.
    (verified.claims["iss"].as_str() == Some(loaded.issuer())
        && verified.typ.as_deref() != Some("at+jwt"))
    .then_some(verified.claims)
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

    /// The signed form is written straight from the struct, not through a JSON object that
    /// would keep the last of two equal names: a static claim named like an issuer claim
    /// must not appear in the token's JSON at all.
    #[test]
    fn a_signed_token_names_each_issuer_claim_once() {
        let loaded = crate::testing::examples("access-claims-once");
        let mut client = loaded.clients["default.orders-worker"].clone();
        for name in ISSUER_CLAIMS {
            client.claims.insert(name.into(), "forged".into());
        }
        let audiences = ["https://orders.example.com".to_owned()];
        let claims = AccessClaims::new(
            &loaded,
            &client,
            "default.orders-worker",
            &["orders.read".into()],
            &audiences,
            1_800_000_000,
            true,
        );
        let json = serde_json::to_string(&claims).unwrap();
        assert!(!json.contains("forged"), "{json}");
        for name in ISSUER_CLAIMS {
            assert_eq!(
                json.matches(&format!("\"{name}\":")).count(),
                1,
                "{name} in {json}"
            );
        }
    }
}
