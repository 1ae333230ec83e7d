//! Types shared by several kinds: durations, lifetimes, Secret references, status.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::cel;

/// A Kubernetes duration string such as `15m`, `720h` or `1h30m`: the format of Go's
/// `time.ParseDuration`, which CEL's `duration()` reads. The text is kept as written so that a
/// round trip through the API changes nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct KubeDuration {
    text: String,
    value: Duration,
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration {:?}: use a Go duration such as 15m or 720h",
            self.0
        )
    }
}

impl std::error::Error for DurationError {}

impl KubeDuration {
    /// The duration as a standard library value.
    pub fn get(&self) -> Duration {
        self.value
    }

    /// The text as written in the manifest.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for KubeDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if !follows_schema_pattern(text) {
            return Err(DurationError(text.to_owned()));
        }
        let parsed: kube::core::Duration =
            text.parse().map_err(|_| DurationError(text.to_owned()))?;
        if parsed.is_negative() {
            return Err(DurationError(text.to_owned()));
        }
        Ok(Self {
            text: text.to_owned(),
            value: parsed.into(),
        })
    }
}

/// The grammar of `cel::DURATION_PATTERN`: one or more `<digits>[.<digits>]<unit>`. Go (and
/// kube's parser) also take "" and "0"; the API refuses them, so standalone mode does too.
fn follows_schema_pattern(mut text: &str) -> bool {
    const UNITS: [&str; 7] = ["ns", "us", "µs", "ms", "s", "m", "h"];
    if text.is_empty() {
        return false;
    }
    while !text.is_empty() {
        let int = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if int == 0 {
            return false;
        }
        text = &text[int..];
        if let Some(rest) = text.strip_prefix('.') {
            let frac = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if frac == 0 {
                return false;
            }
            text = &rest[frac..];
        }
        // Longest unit first, so "ms" is not read as "m" followed by "s".
        match UNITS
            .iter()
            .filter(|u| text.starts_with(*u))
            .max_by_key(|u| u.len())
        {
            Some(unit) => text = &text[unit.len()..],
            None => return false,
        }
    }
    true
}

impl fmt::Debug for KubeDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for KubeDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for KubeDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for KubeDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for KubeDuration {
    fn schema_name() -> Cow<'static, str> {
        "KubeDuration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // Units as Go's time.ParseDuration knows them; no sign, since every Signet duration
        // is positive. Bounds are per field, as CEL rules.
        cel::string_schema(32, Some(cel::DURATION_PATTERN), &[])
    }
}

/// Token and session lifetimes. On a TokenService these are the defaults; on an OidcClient
/// they override them for that client. Unset means "inherit".
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Lifetimes {
    /// Lifetime of access tokens. Default 1h, at most 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = cel::duration_at_most("24h"))]
    pub access_token: Option<KubeDuration>,
    /// Lifetime of ID tokens. Default 1h, at most 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = cel::duration_at_most("24h"))]
    pub id_token: Option<KubeDuration>,
    /// Longest life of a refresh-token family from its first issue, however often it is used.
    /// Default 720h (30 days), at most 8760h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = cel::duration_at_most("8760h"))]
    pub refresh_token_absolute: Option<KubeDuration>,
    /// A refresh token expires when unused for this long. Default 168h (7 days), at most 8760h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = cel::duration_at_most("8760h"))]
    pub refresh_token_sliding: Option<KubeDuration>,
    /// Lifetime of an authorization code. Default 1m, at most 10m (RFC 6749 §4.1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = cel::duration_at_most("10m"))]
    pub authorization_code: Option<KubeDuration>,
    /// Lifetime of a device code and its user code (RFC 8628). Default 10m, at most 30m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = cel::duration_at_most("30m"))]
    pub device_code: Option<KubeDuration>,
}

/// A key in a Secret in the same namespace as the object that refers to it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the namespace of the referring object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// The status fields every Signet kind shares.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// The `metadata.generation` that the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current state: `Ready` plus kind-specific conditions, each with a reason and message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
