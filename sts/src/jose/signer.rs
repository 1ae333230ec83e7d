//! Compact JWS signing with keys parsed once per snapshot (aws-lc-rs). Parsing a key costs
//! more than signing with it (see architecture.md), so the STS never parses on a request.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use signet_crds::v1alpha1::Algorithm;

/// A private key ready to sign. `Debug` shows only the kid and algorithm.
pub struct Signer {
    /// Key ID, put in every header.
    pub kid: String,
    /// The algorithm.
    pub alg: Algorithm,
    key: Key,
}

enum Key {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A key that could not be parsed (never includes the key).
#[derive(Debug, thiserror::Error)]
#[error("signing key {kid} ({alg:?}) does not parse")]
pub struct KeyError {
    kid: String,
    alg: Algorithm,
}

fn der_from_pem(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
}

impl Signer {
    /// Parses a PKCS#8 PEM private key for `alg`.
    pub fn from_pem(kid: &str, alg: Algorithm, pem: &str) -> Result<Self, KeyError> {
        let error = || KeyError {
            kid: kid.to_owned(),
            alg,
        };
        let der = der_from_pem(pem).ok_or_else(error)?;
        let key = match alg {
            Algorithm::ES256 => Key::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .map_err(|_| error())?,
            ),
            Algorithm::RS256 | Algorithm::PS256 => {
                Key::Rsa(RsaKeyPair::from_pkcs8(&der).map_err(|_| error())?)
            }
            Algorithm::EdDSA => Key::Ed(Ed25519KeyPair::from_pkcs8(&der).map_err(|_| error())?),
        };
        Ok(Self {
            kid: kid.to_owned(),
            alg,
            key,
        })
    }

    /// Signs `claims` as a compact JWS with header `typ`.
    pub fn sign(&self, typ: &str, claims: &serde_json::Value) -> String {
        let header =
            serde_json::json!({"alg": format!("{:?}", self.alg), "kid": self.kid, "typ": typ});
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = match &self.key {
            Key::Ec(k) => k
                .sign(&SystemRandom::new(), input.as_bytes())
                .expect("ECDSA signing succeeds")
                .as_ref()
                .to_vec(),
            Key::Ed(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
            Key::Rsa(k) => {
                let padding: &'static dyn signature::RsaEncoding = if self.alg == Algorithm::PS256 {
                    &signature::RSA_PSS_SHA256
                } else {
                    &signature::RSA_PKCS1_SHA256
                };
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(padding, &SystemRandom::new(), input.as_bytes(), &mut out)
                    .expect("RSA signing succeeds");
                out
            }
        };
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(signature));
        input
    }
}
