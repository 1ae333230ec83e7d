//! Verifying this issuer's own tokens (introspection, revocation, `id_token_hint`): the header
//! is decoded once and only `alg`, `kid` and `typ` are read from it; the public key was parsed
//! when the snapshot loaded; the claims are decoded once, after the signature holds.

use std::collections::HashMap;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use signet_crds::v1alpha1::Algorithm;

use super::KeyError;

/// A published public key of this issuer, ready to verify.
pub struct Verifier {
    alg: Algorithm,
    /// The JWS name of `alg`, as a header must carry it (spelled once, not per token).
    name: String,
    key: PublicKey,
}

enum PublicKey {
    /// EC and Ed25519 keys, parsed (point decoded and checked) once.
    Parsed(ParsedPublicKey),
    /// RSA keys as modulus and exponent: a verification with e = 65537 costs little next to
    /// the DER encoding a parsed key would need.
    Rsa(RsaPublicKeyComponents<Vec<u8>>),
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// What a verified token says: its claims and the `typ` of its header.
#[derive(Debug)]
pub struct Verified {
    /// The payload.
    pub claims: Value,
    /// The header's `typ` (`at+jwt` for access tokens), if any.
    pub typ: Option<String>,
}

/// The header fields a verification reads. `crit` is kept to refuse it: this issuer never
/// sets one, so a token that has one is not its own (RFC 7515 §4.1.11).
#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Value>,
}

/// A base64url member of a JWK, decoded.
fn member(jwk: &Value, name: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(jwk.get(name)?.as_str()?).ok()
}

impl Verifier {
    /// Parses the public JWK of key `kid` for `alg`.
    pub fn from_jwk(kid: &str, alg: Algorithm, jwk: &Value) -> Result<Self, KeyError> {
        let error = || KeyError::new(kid, alg);
        let key = match alg {
            Algorithm::ES256 => {
                let (x, y) = (member(jwk, "x"), member(jwk, "y"));
                let (x, y) = x
                    .zip(y)
                    .filter(|(x, y)| x.len() == 32 && y.len() == 32)
                    .ok_or_else(error)?;
                // SEC 1 uncompressed point: 0x04 || x || y.
                let point = [&[4u8][..], &x, &y].concat();
                PublicKey::Parsed(
                    ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                        .map_err(|_| error())?,
                )
            }
            Algorithm::EdDSA => PublicKey::Parsed(
                ParsedPublicKey::new(&signature::ED25519, member(jwk, "x").ok_or_else(error)?)
                    .map_err(|_| error())?,
            ),
            Algorithm::RS256 | Algorithm::PS256 => PublicKey::Rsa(RsaPublicKeyComponents {
                n: member(jwk, "n").ok_or_else(error)?,
                e: member(jwk, "e").ok_or_else(error)?,
            }),
        };
        Ok(Self {
            alg,
            name: format!("{alg:?}"),
            key,
        })
    }

    fn holds(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            PublicKey::Parsed(key) => key.verify_sig(message, signature).is_ok(),
            PublicKey::Rsa(key) => {
                let params = match self.alg {
                    Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    _ => &signature::RSA_PKCS1_2048_8192_SHA256,
                };
                key.verify(params, message, signature).is_ok()
            }
        }
    }
}

/// The claims of `token` if it is a compact JWS that one of `keys` (by `kid`) signed with the
/// key's own algorithm; None for anything else. Claims are not checked here: the caller
/// checks the issuer and the time it cares about.
pub fn verify(token: &str, keys: &HashMap<String, Verifier>) -> Option<Verified> {
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header_len = header.len();
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let key = keys.get(header.kid.as_deref()?)?;
    // The key decides the algorithm; the header must agree (no `none`, no confusion).
    if header.crit.is_some() || header.alg != key.name {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let signed = &token[..header_len + 1 + payload.len()];
    if !key.holds(signed.as_bytes(), &signature) {
        return None;
    }
    let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some(Verified {
        claims,
        typ: header.typ,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::Signer;
    use serde_json::json;
    use signet_crds::keygen;

    fn keys(alg: Algorithm) -> (Signer, HashMap<String, Verifier>) {
        let generated = keygen::generate(alg, None).unwrap();
        let signer = Signer::from_pem(&generated.kid, alg, &generated.private_pem).unwrap();
        let verifier = Verifier::from_jwk(&generated.kid, alg, &generated.public_jwk).unwrap();
        (signer, HashMap::from([(generated.kid, verifier)]))
    }

    #[test]
    fn every_algorithm_round_trips_and_a_changed_byte_fails() {
        for alg in [
            Algorithm::ES256,
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::EdDSA,
        ] {
            let (signer, keys) = keys(alg);
            let token = signer.sign("at+jwt", &json!({"sub": "a", "n": 1}));
            let verified = verify(&token, &keys).unwrap_or_else(|| panic!("{alg:?}"));
            assert_eq!(verified.claims, json!({"sub": "a", "n": 1}));
            assert_eq!(verified.typ.as_deref(), Some("at+jwt"));
            // A claim changed after signing: same length, another payload.
            let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"b","n":1}"#);
            let mut forged: Vec<&str> = token.split('.').collect();
            forged[1] = &payload;
            assert!(verify(&forged.join("."), &keys).is_none(), "{alg:?}");
        }
    }

    /// A token with any `header`, signed by the real ES256 key: what an attacker who could
    /// get a signature over a header of their choosing would send. Only the header's claims
    /// about itself are wrong, never the signature.
    fn signed_with_header(pem: &str, header: &Value, claims: &Value) -> String {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let der = crate::jose::signer::der_from_pem(pem).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).unwrap();
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = key
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    #[test]
    fn a_validly_signed_token_whose_header_names_another_algorithm_or_key_or_crit_is_refused() {
        let generated = keygen::generate(Algorithm::ES256, None).unwrap();
        let kid = generated.kid.clone();
        let keys = HashMap::from([(
            kid.clone(),
            Verifier::from_jwk(&kid, Algorithm::ES256, &generated.public_jwk).unwrap(),
        )]);
        let claims = json!({"sub": "a"});
        // The control: the same construction with an honest header verifies.
        let honest = signed_with_header(
            &generated.private_pem,
            &json!({"alg": "ES256", "kid": kid}),
            &claims,
        );
        assert_eq!(verify(&honest, &keys).unwrap().claims, claims);
        for header in [
            json!({"alg": "none", "kid": kid}),
            json!({"alg": "HS256", "kid": kid}),
            json!({"alg": "ES384", "kid": kid}),
            json!({"alg": "ES256", "kid": "another"}),
            json!({"alg": "ES256"}),
            json!({"alg": "ES256", "kid": kid, "crit": ["exp"]}),
        ] {
            let token = signed_with_header(&generated.private_pem, &header, &claims);
            assert!(verify(&token, &keys).is_none(), "{header}");
        }
        let token = honest.clone();
        for garbage in ["", "a.b", "a.b.c.d", &format!("{token}.x"), "..."] {
            assert!(verify(garbage, &keys).is_none(), "{garbage}");
        }
    }

    #[test]
    fn a_public_key_that_does_not_parse_is_an_error_naming_the_key_only() {
        let bad = json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"});
        let error = Verifier::from_jwk("k1", Algorithm::ES256, &bad).unwrap_err();
        assert!(error.to_string().contains("k1"), "{error}");
    }
}
