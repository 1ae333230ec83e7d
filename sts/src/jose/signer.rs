//! Signing: the header of each token type is encoded once per key, the claims are serialised
//! straight into the signing input.

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
    /// The encoded header of each token type the STS signs, by position in [`TYPES`].
    headers: [String; TYPES.len()],
}

/// The `typ` of every token the STS signs: ID tokens and other plain JWTs, access tokens
/// (RFC 9068), logout tokens (OIDC Back-Channel Logout §2.4).
const TYPES: [&str; 3] = ["JWT", "at+jwt", "logout+jwt"];

/// The base64url of the JOSE header, as `Signer::sign` writes it.
fn encoded_header(alg: Algorithm, kid: &str, typ: &str) -> String {
    let header = serde_json::json!({"alg": format!("{alg:?}"), "kid": kid, "typ": typ});
    URL_SAFE_NO_PAD.encode(header.to_string())
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

impl KeyError {
    pub(super) fn new(kid: &str, alg: Algorithm) -> Self {
        Self {
            kid: kid.to_owned(),
            alg,
        }
    }
}

/// The DER inside a PEM block.
pub(super) fn der_from_pem(pem: &str) -> Option<Vec<u8>> {
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
            headers: TYPES.map(|typ| encoded_header(alg, kid, typ)),
        })
    }

    /// Signs `claims` as a compact JWS with header `typ`.
    pub fn sign(&self, typ: &str, claims: &impl serde::Serialize) -> String {
        let claims = serde_json::to_vec(claims).expect("claims serialise to JSON");
        let mut input = match TYPES.iter().position(|t| *t == typ) {
            Some(n) => self.headers[n].clone(),
            None => encoded_header(self.alg, &self.kid, typ),
        };
        input.reserve(claims.len().div_ceil(3) * 4 + 2 + self.signature_len().div_ceil(3) * 4);
        input.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut input);
        // Signatures are written straight into the token; only RSA's needs a buffer.
        let (fixed, rsa): (signature::Signature, Vec<u8>);
        let signature: &[u8] = match &self.key {
            Key::Ec(k) => {
                fixed = k
                    .sign(&SystemRandom::new(), input.as_bytes())
                    .expect("ECDSA signing succeeds");
                fixed.as_ref()
            }
            Key::Ed(k) => {
                fixed = k.sign(input.as_bytes());
                fixed.as_ref()
            }
            Key::Rsa(k) => {
                let padding: &'static dyn signature::RsaEncoding = if self.alg == Algorithm::PS256 {
                    &signature::RSA_PSS_SHA256
                } else {
                    &signature::RSA_PKCS1_SHA256
                };
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(padding, &SystemRandom::new(), input.as_bytes(), &mut out)
                    .expect("RSA signing succeeds");
                rsa = out;
                &rsa
            }
        };
        input.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut input);
        input
    }

    /// Bytes of a signature: the token's length is known before signing.
    fn signature_len(&self) -> usize {
        match &self.key {
            Key::Ec(_) => 64,
            Key::Ed(_) => 64,
            Key::Rsa(k) => k.public_modulus_len(),
        }
    }
}
