//! `SigningKey`: one algorithm's signing keys for a TokenService, rotated by the operator.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cel;
use super::common::{CommonStatus, KubeDuration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// A rotating signing key of one algorithm. Each key version is announced in the JWKS for
/// `propagationTime` before it signs, signs for `rotationInterval`, and stays in the JWKS for
/// `retentionTime` after it stops, so that no verifier ever meets an unknown key.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "signet.dev",
    version = "v1alpha1",
    kind = "SigningKey",
    namespaced,
    derive = "PartialEq",
    status = "SigningKeyStatus",
    shortname = "sigkey",
    category = "signet",
    printcolumn = r#"{"name":"Algorithm","type":"string","jsonPath":".spec.algorithm"}"#,
    printcolumn = r#"{"name":"Active KID","type":"string","jsonPath":".status.activeKid"}"#,
    printcolumn = r#"{"name":"Next Rotation","type":"date","jsonPath":".status.nextRotation"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.rsaKeySize) || self.algorithm in ['RS256', 'PS256']")
        .message("rsaKeySize applies only to RS256 and PS256").field_path(".rsaKeySize"),
    validation = Rule::new(format!("!self.propagationTime.matches('{p}') || !self.rotationInterval.matches('{p}') || duration(self.propagationTime) < duration(self.rotationInterval)", p = cel::DURATION_PATTERN))
        .message("propagationTime must be shorter than rotationInterval").field_path(".propagationTime")
)]
pub struct SigningKeySpec {
    /// JWS algorithm of every key version. Immutable: a new algorithm is a new SigningKey.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("algorithm is immutable: create a new SigningKey for another algorithm"))]
    pub algorithm: Algorithm,

    /// RSA modulus size in bits for RS256 and PS256. Default 2048.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsa_key_size: Option<RsaKeySize>,

    /// How long a key version signs before the next one takes over. Default 720h (30 days).
    #[serde(default = "default_rotation_interval")]
    #[x_kube(validation = cel::positive_duration())]
    pub rotation_interval: KubeDuration,

    /// How long a new key version is published before it signs. At least the TokenService's
    /// jwksMaxAge plus clock skew, so every verifier's cache holds it first. Default 1h.
    #[serde(default = "default_propagation_time")]
    #[x_kube(validation = cel::positive_duration())]
    pub propagation_time: KubeDuration,

    /// How long a key version stays published after it stops signing. At least the longest
    /// token lifetime plus clock skew, so every token it signed can still be verified.
    /// Default 25h.
    #[serde(default = "default_retention_time")]
    #[x_kube(validation = cel::positive_duration())]
    pub retention_time: KubeDuration,
}

fn duration(text: &str) -> KubeDuration {
    text.parse().expect("built-in default duration parses")
}

fn default_rotation_interval() -> KubeDuration {
    duration("720h")
}

fn default_propagation_time() -> KubeDuration {
    duration("1h")
}

fn default_retention_time() -> KubeDuration {
    duration("25h")
}

/// JWS signing algorithm (RFC 7518, RFC 8037).
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    JsonSchema,
)]
pub enum Algorithm {
    /// ECDSA with P-256 and SHA-256: small and fast; the default.
    #[default]
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256: what every OpenID relying party accepts.
    RS256,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// Ed25519.
    EdDSA,
}

/// RSA modulus size in bits.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(try_from = "u32", into = "u32")]
#[schemars(with = "RsaKeySizeSchema")]
pub enum RsaKeySize {
    /// 2048-bit modulus.
    Bits2048,
    /// 3072-bit modulus.
    Bits3072,
}

#[derive(JsonSchema)]
#[allow(dead_code)] // only its schema is used
#[schemars(extend("enum" = [2048, 3072]))]
struct RsaKeySizeSchema(i32);

impl TryFrom<u32> for RsaKeySize {
    type Error = String;

    fn try_from(bits: u32) -> Result<Self, Self::Error> {
        match bits {
            2048 => Ok(Self::Bits2048),
            3072 => Ok(Self::Bits3072),
            other => Err(format!("rsaKeySize must be 2048 or 3072, not {other}")),
        }
    }
}

impl From<RsaKeySize> for u32 {
    fn from(size: RsaKeySize) -> u32 {
        match size {
            RsaKeySize::Bits2048 => 2048,
            RsaKeySize::Bits3072 => 3072,
        }
    }
}

/// Lifecycle phase of one key version.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum KeyPhase {
    /// Published in the JWKS, not yet signing.
    Pending,
    /// The one version that signs.
    Active,
    /// Published, no longer signing; removed after retentionTime.
    Retired,
    /// Removed from the JWKS at once by an emergency revoke.
    Revoked,
}

/// One version of a signing key. Private material lives only in its Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyVersion {
    /// Key ID, as in the JWKS and in token headers.
    pub kid: String,
    /// Current phase.
    pub phase: KeyPhase,
    /// When the key was generated.
    pub created: Time,
    /// When the key starts (or started) signing.
    pub activates: Time,
    /// When the key stops (or stopped) signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retires: Option<Time>,
    /// When the key leaves the JWKS and its Secret is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Time>,
    /// Name of the Secret that holds the private key.
    pub secret_name: String,
}

/// Observed state of a SigningKey.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyStatus {
    /// Generation and conditions.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Every key version that is published or still has a Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyVersion>,
    /// Key ID of the version that signs now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_kid: Option<String>,
    /// When the next rotation starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation: Option<Time>,
    /// Last `signet.dev/rotate` annotation value acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotate_request: Option<String>,
    /// Last `signet.dev/revoke` annotation value acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_revoke_request: Option<String>,
}
