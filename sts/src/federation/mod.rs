//! Signing in at an upstream OpenID provider (`IdentityProvider` of type `oidc`): its metadata
//! (discovery, cached), the authorization request we send there (code + PKCE S256, state,
//! nonce), and the code exchange with ID token validation (signature by the upstream's JWKS,
//! then the claims, `id_token`). All calls follow the outbound SSRF rules.

pub mod claims;
pub mod id_token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use signet_crds::snapshot::OidcUpstream;

use crate::outbound::Outbound;
use crate::remote_jwks::{Fetch, RemoteJwks};

/// How long upstream metadata is reused.
const METADATA_SECS: i64 = 300;

/// Why an upstream sign-in failed (for the log; the person sees a plain page).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Discovery, token or JWKS call failed.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// The upstream answered something we cannot accept.
    #[error("upstream answer refused: {0}")]
    Invalid(String),
}

/// The endpoints of an upstream provider.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// Its issuer, equal to the configured one.
    pub issuer: String,
    /// Where people sign in.
    pub authorization_endpoint: String,
    /// Where codes are exchanged.
    pub token_endpoint: String,
    /// Its keys.
    pub jwks_uri: String,
    /// Where the person's claims are, when the ID token does not carry them all.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
}

/// Metadata by issuer, cached (their keys are in the shared `RemoteJwks`).
#[derive(Default)]
pub struct Upstreams {
    cache: Mutex<HashMap<String, (i64, Arc<Metadata>)>>,
}

impl Upstreams {
    /// The metadata of `issuer` (OIDC Discovery §4; the issuer must match exactly).
    pub async fn metadata(
        &self,
        outbound: &Outbound,
        issuer: &str,
        allow_private: bool,
        now: i64,
    ) -> Result<Arc<Metadata>, UpstreamError> {
        if let Some((fetched, metadata)) = self.cache.lock().expect("metadata lock").get(issuer)
            && now - fetched < METADATA_SECS
        {
            return Ok(metadata.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let document = outbound
            .get_json(&url, allow_private)
            .await
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        let metadata: Metadata = serde_json::from_value(document)
            .map_err(|e| UpstreamError::Invalid(format!("discovery: {e}")))?;
        if metadata.issuer != issuer {
            return Err(UpstreamError::Invalid(format!(
                "discovery names issuer {}",
                metadata.issuer
            )));
        }
        let metadata = Arc::new(metadata);
        self.cache
            .lock()
            .expect("metadata lock")
            .insert(issuer.to_owned(), (now, metadata.clone()));
        Ok(metadata)
    }
}

/// A sign-in at an upstream in flight, stored under its `state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// Our interaction.
    pub interaction: String,
    /// The IdentityProvider.
    pub idp: String,
    /// Sent upstream; must come back in the ID token.
    pub nonce: String,
    /// PKCE verifier of our request upstream.
    pub verifier: String,
}

impl crate::store::Record for Pending {
    const KIND: crate::store::Kind = crate::store::Kind::Upstream;
}

/// The URL that sends the person to the upstream.
pub fn authorization_url(
    metadata: &Metadata,
    upstream: &OidcUpstream,
    redirect_uri: &str,
    state: &str,
    pending: &Pending,
) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pending.verifier.as_bytes()));
    let mut scopes = upstream.scopes.clone();
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &upstream.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", state)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if metadata.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{}{separator}{query}", metadata.authorization_endpoint)
}

/// Exchanges the upstream code (client_secret_basic) and returns the validated ID token's
/// claims.
#[allow(clippy::too_many_arguments)] // each is one piece of the exchange
pub async fn exchange(
    jwks: &RemoteJwks,
    outbound: &Outbound,
    metadata: &Metadata,
    upstream: &OidcUpstream,
    code: &str,
    redirect_uri: &str,
    pending: &Pending,
    allow_private: bool,
    now: i64,
) -> Result<Value, UpstreamError> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", &pending.verifier)
        .finish();
    // RFC 6749 §2.3.1: id and secret are form-encoded before Basic.
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode(&upstream.client_id),
        encode(&upstream.client_secret.0)
    ));
    let headers = [
        (hyper::header::AUTHORIZATION, format!("Basic {basic}")),
        (hyper::header::ACCEPT, "application/json".to_owned()),
    ];
    let body = outbound
        .post_form(&metadata.token_endpoint, form, &headers, allow_private)
        .await
        .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
    let tokens: Value = serde_json::from_slice(&body)
        .map_err(|e| UpstreamError::Invalid(format!("token response: {e}")))?;
    let id_token = tokens["id_token"]
        .as_str()
        .ok_or_else(|| UpstreamError::Invalid("no id_token".into()))?;
    let mut claims = verify_id_token(
        jwks,
        outbound,
        metadata,
        upstream,
        id_token,
        &pending.nonce,
        allow_private,
        now,
    )
    .await?;
    // Providers may release the scopes' claims at userinfo only (OIDC Core §5.4): fetch them
    // and add what the ID token lacks; a userinfo answer about someone else is refused.
    if let (Some(endpoint), Some(access_token)) = (
        metadata.userinfo_endpoint.as_deref(),
        tokens["access_token"].as_str(),
    ) {
        let headers = [(
            hyper::header::AUTHORIZATION,
            format!("Bearer {access_token}"),
        )];
        let info = outbound
            .get_json_with(endpoint, &headers, allow_private)
            .await
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        if info["sub"] != claims["sub"] {
            return Err(UpstreamError::Invalid(
                "userinfo describes another subject".into(),
            ));
        }
        merge_missing(&mut claims, &info);
    }
    Ok(claims)
}

/// Adds the claims of `extra` that `claims` does not have.
fn merge_missing(claims: &mut Value, extra: &Value) {
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        for (name, value) in extra {
            claims.entry(name.clone()).or_insert_with(|| value.clone());
        }
    }
}

/// Validates an upstream ID token (OIDC Core §3.1.3.7).
#[allow(clippy::too_many_arguments)] // each is one piece of the check
async fn verify_id_token(
    jwks: &RemoteJwks,
    fetch: &impl Fetch,
    metadata: &Metadata,
    upstream: &OidcUpstream,
    id_token: &str,
    nonce: &str,
    allow_private: bool,
    now: i64,
) -> Result<Value, UpstreamError> {
    let invalid = |m: &str| UpstreamError::Invalid(m.to_owned());
    let header = jsonwebtoken::decode_header(id_token).map_err(|_| invalid("ID token header"))?;
    // Only asymmetric algorithms: a shared-secret MAC or `none` proves nothing here.
    use jsonwebtoken::Algorithm as A;
    if !matches!(
        header.alg,
        A::RS256
            | A::RS384
            | A::RS512
            | A::PS256
            | A::PS384
            | A::PS512
            | A::ES256
            | A::ES384
            | A::EdDSA
    ) {
        return Err(invalid("ID token algorithm"));
    }
    let keys = jwks
        .keys(
            fetch,
            &metadata.jwks_uri,
            allow_private,
            header.kid.as_deref(),
            now,
        )
        .await
        .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
    // The signature only: the claims are checked at `now` below, not at the wall clock, and
    // jsonwebtoken would accept an aud array that names another party besides us.
    let validation = crate::jwks::signature_only(header.alg);
    let claims = crate::jwks::verified(&keys, &header, id_token, &validation)
        .ok_or_else(|| invalid("ID token signature"))?;
    id_token::check(&claims, &metadata.issuer, &upstream.client_id, nonce, now).map_err(invalid)?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_fills_in_but_never_overrides_the_id_token() {
        let mut claims = serde_json::json!({"sub": "u", "email": "a@x"});
        merge_missing(
            &mut claims,
            &serde_json::json!({"sub": "u", "email": "b@x", "groups": ["g"]}),
        );
        assert_eq!(
            claims,
            serde_json::json!({"sub": "u", "email": "a@x", "groups": ["g"]})
        );
    }

    #[test]
    fn the_upstream_request_carries_pkce_state_and_nonce() {
        let metadata = Metadata {
            issuer: "https://up".into(),
            authorization_endpoint: "https://up/auth?tenant=1".into(),
            token_endpoint: "https://up/token".into(),
            jwks_uri: "https://up/jwks".into(),
            userinfo_endpoint: None,
        };
        let upstream = OidcUpstream {
            issuer: "https://up".into(),
            client_id: "signet".into(),
            client_secret: signet_crds::snapshot::Redacted("s".into()),
            scopes: vec!["email".into()],
            claim_mappings: Default::default(),
            allowed_email_domains: vec![],
            allowed_groups: vec![],
        };
        let pending = Pending {
            interaction: "i".into(),
            idp: "up".into(),
            nonce: "n".into(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        };
        let url = authorization_url(
            &metadata,
            &upstream,
            "https://signet/federate/callback",
            "st",
            &pending,
        );
        assert!(
            url.starts_with("https://up/auth?tenant=1&response_type=code&"),
            "{url}"
        );
        for part in [
            "client_id=signet",
            "scope=openid+email",
            "state=st",
            "nonce=n",
            "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method=S256",
            "redirect_uri=https%3A%2F%2Fsignet%2Ffederate%2Fcallback",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
    }

    /// Serves one JWK Set for any URL.
    struct Serving(Value);

    impl Fetch for Serving {
        async fn fetch(&self, _: &str, _: bool) -> Result<Value, crate::outbound::OutboundError> {
            Ok(self.0.clone())
        }
    }

    const NOW: i64 = 1_800_000_000;

    fn upstream() -> OidcUpstream {
        OidcUpstream {
            issuer: "https://up".into(),
            client_id: "signet".into(),
            client_secret: signet_crds::snapshot::Redacted("s".into()),
            scopes: vec![],
            claim_mappings: Default::default(),
            allowed_email_domains: vec![],
            allowed_groups: vec![],
        }
    }

    /// Signs `claims` as the upstream would and checks them as an ID token at `NOW`.
    async fn check(claims: &Value) -> Result<Value, UpstreamError> {
        use signet_crds::v1alpha1::Algorithm;
        let key = signet_crds::keygen::generate(Algorithm::ES256, None).unwrap();
        let signer =
            crate::jose::Signer::from_pem(&key.kid, Algorithm::ES256, &key.private_pem).unwrap();
        let metadata = Metadata {
            issuer: "https://up".into(),
            authorization_endpoint: "https://up/auth".into(),
            token_endpoint: "https://up/token".into(),
            jwks_uri: "https://up/jwks".into(),
            userinfo_endpoint: None,
        };
        let keys = Serving(serde_json::json!({"keys": [key.public_jwk]}));
        let id_token = signer.sign("JWT", claims);
        let jwks = RemoteJwks::default();
        verify_id_token(
            &jwks,
            &keys,
            &metadata,
            &upstream(),
            &id_token,
            "n",
            false,
            NOW,
        )
        .await
    }

    /// An ID token from the upstream with `changes` applied (a null removes the claim).
    fn id_token(changes: Value) -> Value {
        let mut claims = serde_json::json!({
            "iss": "https://up", "sub": "u1", "aud": "signet", "nonce": "n",
            "exp": NOW + 300, "iat": NOW,
        });
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    /// OIDC Core §3.1.3.7 (errata set 2): an ID token also meant for another party, handed
    /// to another party, not valid yet or issued in the future (beyond a minute of clock
    /// skew), or expired at `now`, does not sign anyone in.
    #[tokio::test]
    async fn id_tokens_for_other_parties_or_outside_their_time_are_refused() {
        use serde_json::json;
        let refused = [
            (
                "aud with another party",
                json!({"aud": ["signet", "other"]}),
            ),
            (
                "aud with another party first",
                json!({"aud": ["other", "signet"]}),
            ),
            ("aud of another party", json!({"aud": "other"})),
            ("empty aud", json!({"aud": []})),
            ("azp of another party", json!({"azp": "other"})),
            (
                "azp of another party, aud an array",
                json!({"aud": ["signet"], "azp": "other"}),
            ),
            ("issued in the future", json!({"iat": NOW + 61})),
            ("no iat", json!({"iat": null})),
            ("not valid yet", json!({"nbf": NOW + 61})),
            ("expired", json!({"exp": NOW - 61})),
            ("no exp", json!({"exp": null})),
            ("another issuer", json!({"iss": "https://elsewhere"})),
            ("another nonce", json!({"nonce": "m"})),
        ];
        for (case, changes) in refused {
            assert!(
                check(&id_token(changes)).await.is_err(),
                "{case} was accepted"
            );
        }
        let accepted = [
            ("plain", json!({})),
            ("aud an array of us", json!({"aud": ["signet"]})),
            ("azp us", json!({"aud": ["signet"], "azp": "signet"})),
            ("iat within the skew", json!({"iat": NOW + 60})),
            ("nbf within the skew", json!({"nbf": NOW + 60})),
            (
                "expired within the skew",
                json!({"exp": NOW - 59, "iat": NOW - 300}),
            ),
        ];
        for (case, changes) in accepted {
            let claims = check(&id_token(changes)).await;
            assert!(claims.is_ok(), "{case} was refused: {claims:?}");
        }
    }
}
