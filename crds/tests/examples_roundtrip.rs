//! Every Signet object in examples/ parses into its Rust type and survives a serde round trip;
//! omitted fields take the documented defaults.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use signet_crds::v1alpha1::*;

fn examples() -> Vec<serde_json::Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in serde_norway::Deserializer::from_str(&text) {
                docs.push(serde_json::Value::deserialize(doc).unwrap());
            }
        }
    }
    docs
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: &serde_json::Value,
) {
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value}"));
    let again: T = serde_json::from_value(serde_json::to_value(&typed).unwrap()).unwrap();
    assert_eq!(typed, again);
}

#[test]
fn every_example_round_trips_through_its_type() {
    let mut kinds = std::collections::BTreeSet::new();
    for doc in examples()
        .iter()
        .filter(|d| d["apiVersion"] == "signet.dev/v1alpha1")
    {
        let kind = doc["kind"].as_str().unwrap();
        match kind {
            "TokenService" => round_trip::<TokenService>(doc),
            "OidcClient" => round_trip::<OidcClient>(doc),
            "ApiScope" => round_trip::<ApiScope>(doc),
            "IdentityProvider" => round_trip::<IdentityProvider>(doc),
            "SigningKey" => round_trip::<SigningKey>(doc),
            other => panic!("unknown Signet kind {other}"),
        }
        kinds.insert(kind.to_owned());
    }
    assert_eq!(kinds.len(), 5, "examples hold every kind: {kinds:?}");
}

#[test]
fn durations_keep_their_text_and_parse_like_go() {
    let d: KubeDuration = "1h30m".parse().unwrap();
    assert_eq!(d.get(), std::time::Duration::from_secs(5400));
    assert_eq!(serde_json::to_value(&d).unwrap(), "1h30m");
    assert_eq!(
        "250ms".parse::<KubeDuration>().unwrap().get(),
        std::time::Duration::from_millis(250)
    );
    for bad in ["", "0", "15", "15 minutes", "-1h", "1d", "1.h", "h"] {
        assert!(
            bad.parse::<KubeDuration>().is_err(),
            "{bad:?} must be refused"
        );
    }
}

#[test]
fn omitted_client_fields_take_their_defaults() {
    let spec: OidcClientSpec = serde_json::from_value(serde_json::json!({})).unwrap();
    assert_eq!(spec.client_type, ClientType::Confidential);
    assert_eq!(spec.grant_types, vec![GrantType::AuthorizationCode]);
    assert!(spec.require_pkce);
    assert!(!spec.require_consent);
    assert_eq!(spec.access_token_format, AccessTokenFormat::Jwt);
    assert_eq!(spec.token_endpoint_auth_method, None);
}

#[test]
fn omitted_key_and_issuer_fields_take_their_defaults() {
    let key: SigningKeySpec = serde_json::from_value(serde_json::json!({})).unwrap();
    assert_eq!(key.algorithm, Algorithm::ES256);
    assert_eq!(key.rotation_interval.as_str(), "720h");
    assert_eq!(key.propagation_time.as_str(), "1h");
    assert_eq!(key.retention_time.as_str(), "25h");

    let ts: TokenServiceSpec =
        serde_json::from_value(serde_json::json!({"issuer": "https://id.example.com"})).unwrap();
    assert_eq!(ts.id_token_signing_alg, Algorithm::RS256);
    assert_eq!(ts.access_token_signing_alg, Algorithm::ES256);
    assert_eq!(ts.store.store_type, StoreType::Memory);
    assert!(!ts.allow_private_network_targets);
}

#[test]
fn schema_defaults_match_the_serde_defaults() {
    // The API server fills defaults from the schema; the STS in standalone mode from serde.
    // Both must agree, so read the defaults back out of the generated CRD.
    let crd = signet_crds::crd::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "SigningKey")
        .unwrap();
    let schema = crd.spec.versions[0]
        .schema
        .clone()
        .unwrap()
        .open_api_v3_schema
        .unwrap();
    let spec = &schema.properties.unwrap()["spec"];
    let props = spec.properties.as_ref().unwrap();
    let default_of = |f: &str| props[f].default.as_ref().map(|d| d.0.clone());
    assert_eq!(
        default_of("rotationInterval"),
        Some(serde_json::json!("720h"))
    );
    assert_eq!(default_of("propagationTime"), Some(serde_json::json!("1h")));
    assert_eq!(default_of("retentionTime"), Some(serde_json::json!("25h")));
    assert_eq!(default_of("algorithm"), Some(serde_json::json!("ES256")));
}

#[test]
fn rsa_key_size_accepts_only_supported_sizes() {
    assert_eq!(
        serde_json::from_value::<RsaKeySize>(serde_json::json!(3072)).unwrap(),
        RsaKeySize::Bits3072
    );
    assert!(serde_json::from_value::<RsaKeySize>(serde_json::json!(4096)).is_err());
}
