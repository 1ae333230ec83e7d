//! Raw rates of one core, in-process, the bounds the endpoints are compared with: ES256 signing
//! with the STS's `Signer`; ES256 verification as a JWT library does it (jsonwebtoken: header,
//! kid lookup, signature, claims with the issuer checked; the bound of issue 23); and the bare
//! primitives of aws-lc, which no endpoint can beat: an RSA-2048 PKCS#1 signature and an ES256
//! signature check with a parsed key, each over a token-sized message.

use std::time::{Duration, Instant};

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};
use signet_crds::keygen;
use signet_crds::v1alpha1::Algorithm;
use signet_sts::jose::Signer;

const ISSUER: &str = "http://127.0.0.1:8080";

/// Operations per second of one core (of the measuring thread's CPU time).
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// `Signer::sign` of access-token claims.
    pub sign: f64,
    /// Header decode plus signature and claim validation.
    pub verify: f64,
    /// aws-lc RSA-2048 PKCS#1 v1.5 SHA-256 signature of a token-sized message.
    pub rsa_sign: f64,
    /// aws-lc ES256 signature check with a parsed public key, nothing else.
    pub ecdsa_verify: f64,
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

/// CPU time this thread has used, from the scheduler's own count (ns, /proc/thread-self).
fn thread_cpu() -> Duration {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = schedstat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// Operations per second of this thread's CPU time (not of the wall clock): on a machine
/// that other work shares, a rate per wall second would count the time the thread waited for
/// a core, and every ratio against it would flatter the endpoint.
fn per_second(run_for: Duration, mut op: impl FnMut()) -> f64 {
    let (started, cpu_before) = (Instant::now(), thread_cpu());
    let mut count = 0u64;
    while started.elapsed() < run_for {
        // Check the clock every 64 operations: reading it costs little next to ECDSA.
        for _ in 0..64 {
            op();
        }
        count += 64;
    }
    let cpu = thread_cpu().saturating_sub(cpu_before);
    let seconds = if cpu.is_zero() {
        started.elapsed()
    } else {
        cpu
    };
    count as f64 / seconds.as_secs_f64()
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
    let (rsa_sign, ecdsa_verify) = primitives(run_for, token.as_bytes())?;
    Ok(Rates {
        sign,
        verify,
        rsa_sign,
        ecdsa_verify,
    })
}

/// The aws-lc primitives alone over `message` (a signed token's bytes).
fn primitives(run_for: Duration, message: &[u8]) -> anyhow::Result<(f64, f64)> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, ParsedPublicKey, RsaKeyPair};
    let rng = SystemRandom::new();
    let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|e| anyhow::anyhow!("RSA key: {e}"))?;
    let mut out = vec![0; rsa.public_modulus_len()];
    let rsa_sign = per_second(run_for, || {
        rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut out)
            .expect("RSA signs");
        std::hint::black_box(&out);
    });
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|e| anyhow::anyhow!("EC key: {e}"))?;
    let ec = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|e| anyhow::anyhow!("EC key: {e}"))?;
    let sig = ec.sign(&rng, message).map_err(|e| anyhow::anyhow!("{e}"))?;
    let public = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, ec.public_key())
        .map_err(|e| anyhow::anyhow!("EC public key: {e}"))?;
    let ecdsa_verify = per_second(run_for, || {
        public
            .verify_sig(message, sig.as_ref())
            .expect("the signature holds");
    });
    Ok((rsa_sign, ecdsa_verify))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_something() {
        let rates = measure(Duration::from_millis(20)).unwrap();
        assert!(rates.sign > 0.0 && rates.verify > 0.0, "{rates:?}");
        assert!(
            rates.rsa_sign > 0.0 && rates.ecdsa_verify > rates.rsa_sign,
            "{rates:?}"
        );
    }
}
