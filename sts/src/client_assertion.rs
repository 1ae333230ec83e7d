//! private_key_jwt (RFC 7523 §2.2, OIDC Core §9): the client signs a JWT with its own key.
//! `iss` and `sub` are the client_id, `aud` is the issuer and nothing else (a string or a
//! one-element array, draft-ietf-oauth-rfc7523bis §4: an assertion that also names another
//! party, or names the token endpoint URL, is refused), `exp` at most five minutes ahead, and
//! `jti` used once. The header may say `typ: client-authentication+jwt`; nothing requires it.

use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;
use signet_crds::snapshot::Client;
use signet_crds::v1alpha1::AuthMethod;

use crate::app::App;
use crate::error::OAuthError;
use crate::jwks::{self, PublicKey};
use crate::loaded::Loaded;

/// The assertion type RFC 7523 defines.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest an assertion may live.
const MAX_LIFETIME: i64 = 300;
/// Clock skew tolerated on iat and nbf.
const SKEW: i64 = 30;

/// The claims of an assertion that passed every check but the replay check.
#[derive(Debug, PartialEq)]
pub struct Checked {
    /// The client.
    pub client_id: String,
    /// Its jti.
    pub jti: String,
    /// Its expiry.
    pub exp: i64,
}

/// The parsed header and the client an assertion names, before any signature check.
fn peek<'a>(
    loaded: &'a Loaded,
    assertion: &str,
    client_id: Option<&str>,
) -> Result<(jsonwebtoken::Header, &'a Client), OAuthError> {
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|_| OAuthError::invalid_client())?;
    if !matches!(
        header.alg,
        Algorithm::ES256 | Algorithm::RS256 | Algorithm::PS256 | Algorithm::EdDSA
    ) {
        return Err(OAuthError::invalid_client());
    }
    // The issuer claim names the client; read it before verifying, then verify with its keys.
    let payload = assertion
        .split('.')
        .nth(1)
        .ok_or_else(OAuthError::invalid_client)?;
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        .map_err(|_| OAuthError::invalid_client())?;
    let unverified: Value =
        serde_json::from_slice(&bytes).map_err(|_| OAuthError::invalid_client())?;
    let iss = unverified["iss"]
        .as_str()
        .ok_or_else(OAuthError::invalid_client)?;
    if client_id.is_some_and(|id| id != iss) {
        return Err(OAuthError::invalid_request(
            "client_id does not match the assertion",
        ));
    }
    let client = loaded
        .clients
        .get(iss)
        .ok_or_else(OAuthError::invalid_client)?;
    if client.auth_method != AuthMethod::PrivateKeyJwt {
        return Err(OAuthError::invalid_client());
    }
    Ok((header, client))
}

/// Verifies the signature with one of `keys` and every claim rule, at `now`.
fn verify(
    loaded: &Loaded,
    client: &Client,
    header: &jsonwebtoken::Header,
    keys: &[PublicKey],
    assertion: &str,
    now: i64,
) -> Result<Checked, OAuthError> {
    let iss = client.client_id.as_str();
    let mut validation = Validation::new(header.alg);
    // Checked below: jsonwebtoken accepts an aud array that holds the issuer among others.
    validation.validate_aud = false;
    validation.set_issuer(&[iss]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = 0;
    validation.validate_exp = false; // checked below against `now`, not the wall clock
    let claims = jwks::verified(keys, header, assertion, &validation)
        .ok_or_else(OAuthError::invalid_client)?;
    let exp = claims["exp"]
        .as_i64()
        .ok_or_else(OAuthError::invalid_client)?;
    let fresh = exp > now && exp <= now + MAX_LIFETIME;
    let not_future = ["iat", "nbf"]
        .iter()
        .all(|c| claims[*c].as_i64().is_none_or(|t| t <= now + SKEW));
    let for_us_alone = sole_audience(&claims["aud"], loaded.issuer());
    if claims["sub"].as_str() != Some(iss) || !for_us_alone || !fresh || !not_future {
        return Err(OAuthError::invalid_client());
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty())
        .ok_or_else(OAuthError::invalid_client)?;
    Ok(Checked {
        client_id: iss.to_owned(),
        jti: jti.to_owned(),
        exp,
    })
}

/// Whether `aud` is `issuer` alone: the string, or an array of just it. An assertion that
/// also names another party could have been made for that party, which could replay it here
/// (the 2025 audience-injection research behind draft-ietf-oauth-rfc7523bis).
fn sole_audience(aud: &Value, issuer: &str) -> bool {
    match aud {
        Value::String(aud) => aud == issuer,
        Value::Array(auds) => matches!(auds.as_slice(), [Value::String(aud)] if aud == issuer),
        _ => false,
    }
}

/// Verifies an assertion of a client with inline `jwks` (pure: no store, no network).
#[cfg(test)]
fn check<'a>(
    loaded: &'a Loaded,
    assertion: &str,
    client_id: Option<&str>,
    now: i64,
) -> Result<(&'a Client, Checked), OAuthError> {
    let (header, client) = peek(loaded, assertion, client_id)?;
    let keys = loaded
        .client_keys
        .get(&client.client_id)
        .ok_or_else(OAuthError::invalid_client)?;
    Ok((
        client,
        verify(loaded, client, &header, keys, assertion, now)?,
    ))
}

/// Verifies `assertion` (keys inline, or from the client's `jwksUri` under the SSRF rules)
/// and spends its jti (atomic in the store, so a replay racing the original loses too).
pub async fn authenticate<'a>(
    loaded: &'a Loaded,
    app: &App,
    assertion: &str,
    client_id: Option<&str>,
    now: i64,
) -> Result<&'a Client, OAuthError> {
    let (header, client) = peek(loaded, assertion, client_id)?;
    let checked = match (&client.jwks, &client.jwks_uri) {
        (Some(_), _) => {
            let keys = loaded
                .client_keys
                .get(&client.client_id)
                .ok_or_else(OAuthError::invalid_client)?;
            verify(loaded, client, &header, keys, assertion, now)?
        }
        (None, Some(uri)) => {
            let allow_private = loaded.snapshot.allow_private_network_targets;
            let keys = app
                .jwks
                .keys(
                    &app.outbound,
                    uri,
                    allow_private,
                    header.kid.as_deref(),
                    now,
                )
                .await
                .map_err(|error| {
                    tracing::warn!(%error, client = %client.client_id, "no keys at the client's jwksUri");
                    OAuthError::invalid_client()
                })?;
            verify(loaded, client, &header, &keys, assertion, now)?
        }
        (None, None) => return Err(OAuthError::invalid_client()),
    };
    // Per client: one client cannot burn another's jti.
    let id = format!("assertion:{}:{}", checked.client_id, checked.jti);
    let first = app
        .store
        .load()
        .first_use(&id, checked.exp, now)
        .await
        .map_err(|e| OAuthError::temporarily_unavailable(e.to_string()))?;
    if first {
        Ok(client)
    } else {
        Err(OAuthError::invalid_client())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;
    use signet_crds::keygen;
    use signet_crds::v1alpha1::{Algorithm, GrantType};

    use super::*;
    use crate::jose::Signer;

    const ISSUER: &str = "http://127.0.0.1:1";
    const NOW: i64 = 1_800_000_000;

    /// The examples' snapshot plus a private_key_jwt client whose inline JWK Set is `keys`.
    fn loaded_with_keys(keys: Vec<Value>) -> Loaded {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let state = std::env::temp_dir().join(format!("signet-assertion-{}", std::process::id()));
        let mut snapshot = crate::source::standalone::compile_dir(&examples, &state, Some(ISSUER))
            .unwrap()
            .snapshot;
        let mut client = snapshot
            .clients
            .iter()
            .find(|c| c.client_id == "default.orders-worker")
            .unwrap()
            .clone();
        client.client_id = "default.jwt-client".into();
        client.auth_method = AuthMethod::PrivateKeyJwt;
        client.secret_hashes.clear();
        client.grant_types = vec![GrantType::ClientCredentials];
        client.jwks = Some(json!({ "keys": keys }));
        snapshot.clients.push(client);
        Loaded::new(snapshot.seal()).unwrap()
    }

    /// The snapshot with a client of one key; returns it, the client's signer and a forger.
    fn setup() -> (Loaded, Signer, Signer) {
        let key = keygen::generate(Algorithm::ES256, None).unwrap();
        let other = keygen::generate(Algorithm::ES256, None).unwrap();
        let loaded = loaded_with_keys(vec![key.public_jwk]);
        let signer = Signer::from_pem(&key.kid, Algorithm::ES256, &key.private_pem).unwrap();
        // Same kid, wrong key: a forger who knows the kid.
        let forger = Signer::from_pem(&key.kid, Algorithm::ES256, &other.private_pem).unwrap();
        (loaded, signer, forger)
    }

    /// Signs with an ES256 `key` under a header of the test's choosing (no kid, another typ).
    fn sign_raw(
        key: &keygen::Generated,
        kid: Option<&str>,
        typ: Option<&str>,
        claims: &Value,
    ) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = kid.map(str::to_owned);
        header.typ = typ.map(str::to_owned);
        let der: String = key
            .private_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, der).unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_der(&der);
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    fn claims(aud: &str, exp: i64, iat: i64, jti: &str) -> Value {
        json!({"iss": "default.jwt-client", "sub": "default.jwt-client", "aud": aud, "exp": exp, "iat": iat, "jti": jti})
    }

    #[test]
    fn a_good_assertion_authenticates_its_client() {
        let (loaded, signer, _) = setup();
        let assertion = signer.sign("JWT", &claims(ISSUER, NOW + 60, NOW, "a"));
        let (client, checked) =
            check(&loaded, &assertion, Some("default.jwt-client"), NOW).unwrap();
        assert_eq!(client.client_id, "default.jwt-client");
        assert_eq!(checked.jti, "a");
    }

    #[test]
    fn bad_assertions_are_invalid_client() {
        let (loaded, signer, forger) = setup();
        let token_endpoint = format!("{ISSUER}/token");
        let cases = [
            ("the token endpoint as aud", signer.sign("JWT", &claims(&token_endpoint, NOW + 60, NOW, "a"))),
            ("expired", signer.sign("JWT", &claims(ISSUER, NOW, NOW - 60, "a"))),
            ("exp too far ahead", signer.sign("JWT", &claims(ISSUER, NOW + 600, NOW, "a"))),
            ("issued in the future", signer.sign("JWT", &claims(ISSUER, NOW + 200, NOW + 120, "a"))),
            ("no jti", signer.sign("JWT", &json!({"iss": "default.jwt-client", "sub": "default.jwt-client", "aud": ISSUER, "exp": NOW + 60}))),
            ("sub differs", signer.sign("JWT", &json!({"iss": "default.jwt-client", "sub": "x", "aud": ISSUER, "exp": NOW + 60, "jti": "a"}))),
            ("forged signature", forger.sign("JWT", &claims(ISSUER, NOW + 60, NOW, "a"))),
            ("garbage", "a.b.c".to_owned()),
        ];
        for (name, assertion) in cases {
            assert!(
                check(&loaded, &assertion, None, NOW).is_err(),
                "{name} was accepted"
            );
        }
    }

    /// The 2025 audience-injection research: an assertion a client made for some other party
    /// that lists us too must not authenticate it here (draft-ietf-oauth-rfc7523bis §4).
    #[test]
    fn an_assertion_that_also_names_another_audience_is_refused() {
        let (loaded, signer, _) = setup();
        let token_endpoint = format!("{ISSUER}/token");
        for aud in [
            json!([ISSUER, "https://other.example"]),
            json!(["https://other.example", ISSUER]),
            json!([ISSUER, ISSUER]),
            json!([ISSUER, token_endpoint]),
            json!([token_endpoint]),
            json!([]),
            json!(null),
        ] {
            let mut claims = claims(ISSUER, NOW + 60, NOW, "a");
            claims["aud"] = aud.clone();
            let assertion = signer.sign("JWT", &claims);
            assert!(
                check(&loaded, &assertion, None, NOW).is_err(),
                "aud {aud} was accepted"
            );
        }
    }

    #[test]
    fn the_issuer_as_a_string_or_a_one_element_array_is_the_audience_with_or_without_typ() {
        let key = keygen::generate(Algorithm::ES256, None).unwrap();
        let loaded = loaded_with_keys(vec![key.public_jwk.clone()]);
        for (aud, typ) in [
            (json!(ISSUER), Some("client-authentication+jwt")),
            (json!([ISSUER]), Some("client-authentication+jwt")),
            (json!(ISSUER), Some("application/client-authentication+jwt")),
            (json!(ISSUER), Some("JWT")),
            (json!([ISSUER]), None),
        ] {
            let mut claims = claims(ISSUER, NOW + 60, NOW, "a");
            claims["aud"] = aud.clone();
            let assertion = sign_raw(&key, Some(&key.kid), typ, &claims);
            assert!(
                check(&loaded, &assertion, None, NOW).is_ok(),
                "aud {aud} typ {typ:?} was refused"
            );
        }
    }

    /// Every endpoint that authenticates clients applies the audience rule: driven over HTTP,
    /// each refuses the two-audience assertion and accepts (gets past authentication with)
    /// the same assertion made for us alone.
    #[tokio::test]
    async fn every_client_authenticating_endpoint_refuses_an_assertion_for_two_audiences() {
        use std::future::IntoFuture;
        let (loaded, signer, _) = setup();
        let app = App::new();
        app.loaded.store(Some(std::sync::Arc::new(loaded)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(axum::serve(listener, crate::http::router(app)).into_future());
        // The endpoints read the wall clock.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let endpoints = [
            ("/token", ("grant_type", "client_credentials")),
            ("/introspect", ("token", "x")),
            ("/revoke", ("token", "x")),
            ("/device_authorization", ("scope", "openid")),
        ];
        for (path, parameter) in endpoints {
            for (aud, refused) in [
                (json!([ISSUER, "https://other.example"]), true),
                (json!(ISSUER), false),
            ] {
                let mut claims = claims(ISSUER, now + 60, now, &format!("{path}{refused}"));
                claims["aud"] = aud.clone();
                let assertion = signer.sign("JWT", &claims);
                let form = [
                    parameter,
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", assertion.as_str()),
                ];
                let response = signet_tests::http::post_form(&addr, path, &form, &[])
                    .await
                    .unwrap();
                let invalid_client =
                    response.status == 401 && response.json()["error"] == "invalid_client";
                assert_eq!(
                    invalid_client, refused,
                    "{path} with aud {aud}: {} {}",
                    response.status, response.body
                );
            }
        }
    }

    /// An assertion without `kid` is tried against every key that fits its algorithm, not
    /// only the first of the set.
    #[test]
    fn an_assertion_without_kid_is_checked_against_every_key_of_its_type() {
        let first = keygen::generate(Algorithm::ES256, None).unwrap();
        let rsa = keygen::generate(Algorithm::RS256, None).unwrap();
        let signing = keygen::generate(Algorithm::ES256, None).unwrap();
        let stranger = keygen::generate(Algorithm::ES256, None).unwrap();
        let loaded = loaded_with_keys(vec![
            first.public_jwk.clone(),
            rsa.public_jwk.clone(),
            signing.public_jwk.clone(),
        ]);
        let assertion = sign_raw(&signing, None, None, &claims(ISSUER, NOW + 60, NOW, "a"));
        assert!(
            check(&loaded, &assertion, None, NOW).is_ok(),
            "the third key was not tried"
        );
        let forged = sign_raw(&stranger, None, None, &claims(ISSUER, NOW + 60, NOW, "b"));
        assert!(
            check(&loaded, &forged, None, NOW).is_err(),
            "a key not in the set verified"
        );
    }

    #[tokio::test]
    async fn a_replayed_assertion_is_refused() {
        let (loaded, signer, _) = setup();
        let app = App::new();
        let assertion = signer.sign("JWT", &claims(ISSUER, NOW + 60, NOW, "once"));
        assert!(
            authenticate(&loaded, &app, &assertion, None, NOW)
                .await
                .is_ok()
        );
        assert!(
            authenticate(&loaded, &app, &assertion, None, NOW + 1)
                .await
                .is_err()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn never_panics_on_any_input(assertion in "[A-Za-z0-9_.-]{0,300}") {
            let _ = check(&LOADED, &assertion, None, NOW);
        }
    }

    /// Set up once for the property test's many cases.
    static LOADED: std::sync::LazyLock<Loaded> = std::sync::LazyLock::new(|| setup().0);
}
