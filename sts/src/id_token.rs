//! ID tokens (OIDC Core §2, §3.1.3.6): who signed in, for which client, when; plus the
//! person's claims by scope.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};
use signet_crds::snapshot::Client;
use signet_crds::v1alpha1::Algorithm;

use crate::error::OAuthError;
use crate::loaded::Loaded;

/// `at_hash`: the left half of the hash of the access token, with the hash of the signing
/// algorithm (SHA-256 for ES256, RS256, PS256; SHA-512 for Ed25519).
pub fn at_hash(alg: Algorithm, access_token: &str) -> String {
    let digest = match alg {
        Algorithm::EdDSA => Sha512::digest(access_token.as_bytes()).to_vec(),
        _ => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// What goes into one ID token besides the fixed claims.
pub struct Subject<'a> {
    /// Subject.
    pub sub: &'a str,
    /// When the person authenticated.
    pub auth_time: i64,
    /// Session id.
    pub sid: Option<&'a str>,
    /// From the authorization request (not on refresh).
    pub nonce: Option<&'a str>,
    /// Claims by scope.
    pub claims: Map<String, Value>,
}

/// Signs an ID token for `client` with its algorithm, bound to `access_token` by `at_hash`.
pub fn issue(
    loaded: &Loaded,
    client: &Client,
    subject: Subject<'_>,
    access_token: &str,
    now: i64,
) -> Result<String, OAuthError> {
    let alg = client.id_token_signing_alg;
    let signer = loaded
        .signers
        .get(&alg)
        .ok_or_else(|| OAuthError::server_error(format!("no active {alg:?} key for ID tokens")))?;
    let mut claims = json!({
        "iss": loaded.issuer(),
        "sub": subject.sub,
        "aud": client.client_id,
        "iat": now,
        "exp": now + client.lifetimes.id_token as i64,
        "auth_time": subject.auth_time,
        "at_hash": at_hash(alg, access_token),
    });
    if let Some(sid) = subject.sid {
        claims["sid"] = json!(sid);
    }
    if let Some(nonce) = subject.nonce {
        claims["nonce"] = json!(nonce);
    }
    for (name, value) in subject.claims {
        claims[name] = value;
    }
    Ok(signer.sign("JWT", &claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core A.3 (RS256): access token and at_hash of the example.
        assert_eq!(
            at_hash(
                Algorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(at_hash(Algorithm::EdDSA, "x").len(), 43, "32 of 64 bytes");
    }
}
