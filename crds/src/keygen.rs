//! Secrets Signet generates: signing keys (aws-lc-rs; a PKCS#8 PEM and its public JWK, with
//! the RFC 7638 thumbprint as `kid`) and client secrets. Shared by the operator and the STS's
//! standalone mode.

use std::fmt;

use crate::v1alpha1::{Algorithm, RsaKeySize};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A new key version. `Debug` never shows the private key.
pub struct Generated {
    /// RFC 7638 thumbprint of the public key, base64url.
    pub kid: String,
    /// PKCS#8 private key, PEM.
    pub private_pem: String,
    /// Public JWK with kid, alg and use.
    pub public_jwk: Value,
}

impl fmt::Debug for Generated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generated")
            .field("kid", &self.kid)
            .field("private_pem", &"<redacted>")
            .finish()
    }
}

/// Why a key could not be generated (the crypto library refused; nothing secret inside).
#[derive(Debug, thiserror::Error)]
#[error("key generation failed for {0:?}")]
pub struct GenerateError(Algorithm);

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// The RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
pub fn thumbprint(jwk: &Value) -> String {
    let required: &[&str] = match jwk["kty"].as_str() {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("RSA") => &["e", "kty", "n"],
        Some("OKP") => &["crv", "kty", "x"],
        _ => &[],
    };
    let members: Vec<String> = required
        .iter()
        .map(|k| format!("\"{k}\":{}", jwk[*k]))
        .collect();
    b64(&Sha256::digest(
        format!("{{{}}}", members.join(",")).as_bytes(),
    ))
}

/// A new client secret: 256 random bits, base64url (43 characters). Stored hashed (SHA-256)
/// in the snapshot: with this much entropy a slow hash would only slow the token endpoint.
pub fn client_secret() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the OS random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Generates a key for `alg` (`rsa_bits` for RS256 and PS256).
pub fn generate(alg: Algorithm, rsa_bits: Option<RsaKeySize>) -> Result<Generated, GenerateError> {
    let fail = |_| GenerateError(alg);
    let (der, mut jwk) = match alg {
        Algorithm::ES256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(fail)?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                .map_err(|_| GenerateError(alg))?;
            // Uncompressed point: 0x04 || x || y.
            let point = pair.public_key().as_ref();
            (
                doc.as_ref().to_vec(),
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])}),
            )
        }
        Algorithm::EdDSA => {
            let doc = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).map_err(fail)?;
            let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| GenerateError(alg))?;
            (
                doc.as_ref().to_vec(),
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())}),
            )
        }
        Algorithm::RS256 | Algorithm::PS256 => {
            let size = match rsa_bits.unwrap_or(RsaKeySize::Bits2048) {
                RsaKeySize::Bits2048 => aws_lc_rs::rsa::KeySize::Rsa2048,
                RsaKeySize::Bits3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
            };
            let pair = aws_lc_rs::rsa::KeyPair::generate(size).map_err(fail)?;
            let der = pair.as_der().map_err(fail)?;
            let public = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
            (
                der.as_ref().to_vec(),
                json!({"kty": "RSA", "n": b64(&public.n), "e": b64(&public.e)}),
            )
        }
    };
    let kid = thumbprint(&jwk);
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!(format!("{alg:?}"));
    jwk["use"] = json!("sig");
    Ok(Generated {
        kid,
        private_pem: pem(&der),
        public_jwk: jwk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_a_public_jwk_with_its_thumbprint() {
        for (alg, kty) in [
            (Algorithm::ES256, "EC"),
            (Algorithm::EdDSA, "OKP"),
            (Algorithm::RS256, "RSA"),
            (Algorithm::PS256, "RSA"),
        ] {
            let key = generate(alg, None).unwrap();
            assert_eq!(key.public_jwk["kty"], kty);
            assert_eq!(key.public_jwk["alg"], format!("{alg:?}"));
            assert_eq!(key.public_jwk["kid"], key.kid);
            assert_eq!(thumbprint(&key.public_jwk), key.kid);
            assert!(key.private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let public = key.public_jwk.to_string();
            assert!(
                !public.contains("\"d\""),
                "no private member in the public JWK"
            );
            assert!(
                !format!("{key:?}").contains("PRIVATE"),
                "Debug redacts the private key"
            );
        }
    }

    #[test]
    fn client_secrets_are_256_bit_base64url() {
        let a = client_secret();
        assert_eq!(a.len(), 43);
        assert_ne!(a, client_secret());
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
    }

    #[test]
    fn rsa_sizes_follow_the_spec() {
        let key = generate(Algorithm::RS256, Some(RsaKeySize::Bits3072)).unwrap();
        let n = URL_SAFE_NO_PAD
            .decode(key.public_jwk["n"].as_str().unwrap())
            .unwrap();
        assert_eq!(n.len() * 8, 3072);
    }

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // The RSA key of RFC 7638 §3.1 and its published thumbprint.
        let jwk = json!({
            "kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        });
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
