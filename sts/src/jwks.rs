//! The public keys of a JWK Set (a client's `jwks` or `jwksUri`, an upstream provider's keys),
//! parsed once, and which of them may have signed a given JWS. A JWS without `kid` is checked
//! against every key that fits its algorithm, not just the first of the set.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use serde_json::Value;

/// A signature verification key of a JWK Set.
#[derive(Clone, Debug)]
pub struct PublicKey {
    /// Its `kid`, if it has one.
    pub kid: Option<String>,
    /// The parsed key.
    pub key: DecodingKey,
    /// Key type and curve.
    kind: Kind,
    /// The algorithm the set restricts it to (`alg`), if any.
    alg: Option<KeyAlgorithm>,
}

/// Key type and curve: what decides which JWS algorithms a key can verify.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Kind {
    /// The kind of key that verifies `alg`; none for HMAC (a shared secret proves nothing of
    /// a client or a provider here) and algorithms we do not know.
    fn verifying(alg: Algorithm) -> Option<Self> {
        use Algorithm as A;
        match alg {
            A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => Some(Self::Rsa),
            A::ES256 => Some(Self::P256),
            A::ES384 => Some(Self::P384),
            A::EdDSA => Some(Self::Ed25519),
            _ => None,
        }
    }

    fn of(jwk: &Jwk) -> Option<Self> {
        match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Some(Self::Rsa),
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => Some(Self::P256),
                EllipticCurve::P384 => Some(Self::P384),
                _ => None,
            },
            AlgorithmParameters::OctetKeyPair(okp) => {
                (okp.curve == EllipticCurve::Ed25519).then_some(Self::Ed25519)
            }
            _ => None,
        }
    }
}

impl PublicKey {
    /// Whether this key may have signed a JWS with `header`: the same `kid` when the header
    /// names one, a key type and curve that fit the algorithm, and the key's own `alg` if the
    /// set gives one.
    pub fn fits(&self, header: &Header) -> bool {
        header
            .kid
            .as_deref()
            .is_none_or(|kid| self.kid.as_deref() == Some(kid))
            && Kind::verifying(header.alg) == Some(self.kind)
            && self
                .alg
                .is_none_or(|alg| alg == KeyAlgorithm::from(header.alg))
    }
}

/// The keys of `keys` that may have signed a JWS with `header`, in the set's order.
pub fn candidates<'a>(
    keys: &'a [PublicKey],
    header: &'a Header,
) -> impl Iterator<Item = &'a PublicKey> {
    keys.iter().filter(|key| key.fits(header))
}

/// A validation of the signature alone, for callers that check every claim themselves
/// (against their own `now` and audience rules).
pub fn signature_only(alg: jsonwebtoken::Algorithm) -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation
}

/// The claims of `token` (a JWS with `header`) if one of the `keys` that fit it verifies it
/// under `validation`. Without a kid, each key that fits the algorithm is tried, not only the
/// first.
pub fn verified(
    keys: &[PublicKey],
    header: &Header,
    token: &str,
    validation: &jsonwebtoken::Validation,
) -> Option<Value> {
    candidates(keys, header)
        .find_map(|key| jsonwebtoken::decode::<Value>(token, &key.key, validation).ok())
        .map(|data| data.claims)
}

/// The signature keys of a JWK Set; keys that do not parse, encryption keys and symmetric keys
/// are skipped (nothing can be verified with them).
pub fn parse(jwks: &Value) -> Vec<PublicKey> {
    jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter(|jwk| {
            jwk.common
                .public_key_use
                .as_ref()
                .is_none_or(|u| *u == PublicKeyUse::Signature)
        })
        .filter_map(|jwk| {
            Some(PublicKey {
                kind: Kind::of(&jwk)?,
                key: DecodingKey::from_jwk(&jwk).ok()?,
                kid: jwk.common.key_id,
                alg: jwk.common.key_algorithm,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use signet_crds::keygen;
    use signet_crds::v1alpha1::Algorithm as Alg;

    use super::*;

    fn header(alg: Algorithm, kid: Option<&str>) -> Header {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        header
    }

    #[test]
    fn a_header_without_kid_fits_every_key_of_its_type_and_curve() {
        let ec = keygen::generate(Alg::ES256, None).unwrap();
        let ec2 = keygen::generate(Alg::ES256, None).unwrap();
        let rsa = keygen::generate(Alg::RS256, None).unwrap();
        let ed = keygen::generate(Alg::EdDSA, None).unwrap();
        let mut unpinned_rsa = rsa.public_jwk.clone();
        unpinned_rsa.as_object_mut().unwrap().remove("alg");
        let mut encryption = ec.public_jwk.clone();
        encryption["use"] = json!("enc");
        let keys = parse(&json!({"keys": [
            ec.public_jwk, rsa.public_jwk, ed.public_jwk, ec2.public_jwk, unpinned_rsa,
            encryption, {"kty": "oct", "k": "c2VjcmV0"}, {"kty": "EC", "crv": "P-256"},
        ]}));
        assert_eq!(
            keys.len(),
            5,
            "the encryption, symmetric and broken keys are skipped"
        );
        let kids = |h: &Header| -> Vec<Option<String>> {
            candidates(&keys, h).map(|k| k.kid.clone()).collect()
        };
        let es256 = header(Algorithm::ES256, None);
        assert_eq!(kids(&es256), [Some(ec.kid.clone()), Some(ec2.kid.clone())]);
        // RS256 fits both RSA keys; PS256 only the one whose set does not pin it to RS256.
        assert_eq!(
            candidates(&keys, &header(Algorithm::RS256, None)).count(),
            2
        );
        assert_eq!(
            candidates(&keys, &header(Algorithm::PS256, None)).count(),
            1
        );
        assert_eq!(
            kids(&header(Algorithm::EdDSA, None)),
            [Some(ed.kid.clone())]
        );
        assert_eq!(
            candidates(&keys, &header(Algorithm::ES384, None)).count(),
            0
        );
        assert_eq!(
            candidates(&keys, &header(Algorithm::HS256, None)).count(),
            0
        );
        // A kid narrows to that key, and only if its type fits too.
        assert_eq!(
            kids(&header(Algorithm::ES256, Some(&ec2.kid))),
            [Some(ec2.kid.clone())]
        );
        assert_eq!(
            candidates(&keys, &header(Algorithm::RS256, Some(&ec2.kid))).count(),
            0
        );
    }
}
