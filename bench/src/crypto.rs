//! Raw ES256 rates of one core, in-process: signing with the STS's `Signer` and verifying the
//! way introspection does (`tokens::resolve`: header, kid lookup, jsonwebtoken with the issuer
//! checked). These are the bounds the endpoints are compared with.

use std::time::{Duration, Instant};

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};
use signet_crds::keygen;
use signet_crds::v1alpha1::Algorithm;
use signet_sts::jose::Signer;

const ISSUER: &str = "http://127.0.0.1:8080";

/// Operations per second of one thread.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// `Signer::sign` of access-token claims.
    pub sign: f64,
    /// Header decode plus signature and claim validation.
    pub verify: f64,
}

/// The claims shape of `tokens::access_claims` for a client_credentials token.
pub fn access_claims(issuer: &str, client_id: &str, scope: &str, now: i64) -> Value {
    json!({
        "iss": issuer,
        "sub": client_id,
        "aud": "https://orders.example.com",
        "client_id": client_id,
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": signet_sts::random::token(),
        "team": "orders",
    })
}

/// A fresh ES256 signer and the matching verification key.
pub fn es256() -> anyhow::Result<(Signer, DecodingKey)> {
    let generated = keygen::generate(Algorithm::ES256, None)?;
    let signer = Signer::from_pem(&generated.kid, Algorithm::ES256, &generated.private_pem)?;
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(generated.public_jwk)?;
    Ok((signer, DecodingKey::from_jwk(&jwk)?))
}

fn per_second(run_for: Duration, mut op: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < run_for {
        // Check the clock every 64 operations: reading it costs little next to ECDSA.
        for _ in 0..64 {
            op();
        }
        count += 64;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// Measures both rates on the calling thread, `run_for` each.
pub fn measure(run_for: Duration) -> anyhow::Result<Rates> {
    let (signer, key) = es256()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let claims = access_claims(ISSUER, "default.bench-0", "orders.read", now);
    let sign = per_second(run_for, || {
        std::hint::black_box(signer.sign("at+jwt", &claims));
    });
    let token = signer.sign("at+jwt", &claims);
    let kid = signer.kid.clone();
    let verify = per_second(run_for, || {
        let header = jsonwebtoken::decode_header(&token).expect("our header");
        assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
        let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_issuer(&[ISSUER]);
        validation.validate_aud = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("valid");
        std::hint::black_box(data.claims);
    });
    Ok(Rates { sign, verify })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_something() {
        let rates = measure(Duration::from_millis(20)).unwrap();
        assert!(rates.sign > 0.0 && rates.verify > 0.0, "{rates:?}");
    }
}
