//! Tokens of another cluster (one of the TokenService's `trustedClusters`), verified offline
//! with the keys that cluster publishes: its JWK Set (named, or found through the issuer's
//! discovery document) is fetched with the shared remote-JWKS cache, under the SSRF rules, over
//! TLS that trusts the cluster's CA bundle when it has one. Checked: the signature, `iss`
//! exactly, the issuer among the audiences, `exp` in the future, `iat` and `nbf` not ahead by
//! more than [`LEEWAY`], a lifetime within the cluster's `maxTokenLifetime`, and the
//! `kubernetes.io` claims (namespace, ServiceAccount name and uid, the pod when bound) agreeing
//! with `sub`. A legacy Secret-based token (no `exp`, no `kubernetes.io`) is refused.
//!
//! Offline, a deleted pod or ServiceAccount is not seen: its tokens work until they expire,
//! which `maxTokenLifetime` bounds (docs/workload-identity.md).

use std::collections::HashMap;
use std::sync::Mutex;

use jsonwebtoken::{Header, Validation};
use serde_json::Value;
use signet_crds::snapshot::{Client, TrustedCluster};

use super::{Checkers, holds_audience};
use crate::error::OAuthError;
use crate::jwks::{self, PublicKey};
use crate::outbound::{Outbound, OutboundError};
use crate::remote_jwks::Fetch;

/// Clock skew tolerated between clusters, on `iat` and `nbf`.
pub const LEEWAY: i64 = 30;
/// How long a discovered `jwks_uri` is kept.
const DISCOVERY_SECS: i64 = 300;
/// How long a failed discovery is not retried: a flood of tokens makes one fetch per period.
const DISCOVERY_BACKOFF_SECS: i64 = 5;

/// Fetches for one trusted cluster: over TLS that trusts its CA bundle, if it has one.
struct ClusterFetch<'a> {
    outbound: &'a Outbound,
    ca: Option<&'a str>,
    /// The hash of `ca` (empty without one).
    anchor: &'a str,
}

impl Fetch for ClusterFetch<'_> {
    async fn fetch(&self, url: &str, allow_private: bool) -> Result<Value, OutboundError> {
        match self.ca {
            Some(ca) => {
                self.outbound
                    .get_json_trusting(url, ca, allow_private)
                    .await
            }
            None => self.outbound.get_json(url, allow_private).await,
        }
    }

    fn anchor(&self) -> &str {
        self.anchor
    }
}

/// When a discovery document was asked for, and the `jwks_uri` it gave or why it gave none.
type Asked = (i64, Result<String, String>);

/// The `jwks_uri` of each trusted cluster that names none, read from its discovery document.
#[derive(Default)]
pub struct Discovered {
    /// By issuer and TLS anchor.
    by_issuer: Mutex<HashMap<(String, String), Asked>>,
}

impl Discovered {
    /// The JWK Set URL of `cluster` at `now`: cached, or read from
    /// `{issuer}/.well-known/openid-configuration`.
    async fn jwks_uri(
        &self,
        fetch: &impl Fetch,
        cluster: &TrustedCluster,
        now: i64,
    ) -> Result<String, String> {
        let key = (cluster.issuer.clone(), fetch.anchor().to_owned());
        if let Some((asked, result)) = self.by_issuer.lock().expect("discovery lock").get(&key) {
            let ttl = match result {
                Ok(_) => DISCOVERY_SECS,
                Err(_) => DISCOVERY_BACKOFF_SECS,
            };
            if now - asked < ttl {
                return result.clone();
            }
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            cluster.issuer.trim_end_matches('/')
        );
        let result = match fetch.fetch(&url, cluster.allow_private_network).await {
            Ok(document) => read_discovery(&document, &cluster.issuer),
            Err(error) => Err(error.to_string()),
        };
        let mut cached = self.by_issuer.lock().expect("discovery lock");
        cached.insert(key, (now, result.clone()));
        result
    }
}

/// The https `jwks_uri` of a discovery document that names `issuer` exactly.
fn read_discovery(document: &Value, issuer: &str) -> Result<String, String> {
    if document["issuer"].as_str() != Some(issuer) {
        return Err(format!(
            "the discovery document names issuer {}",
            document["issuer"]
        ));
    }
    document["jwks_uri"]
        .as_str()
        .filter(|uri| uri.starts_with("https://"))
        .map(str::to_owned)
        .ok_or_else(|| "the discovery document has no https jwks_uri".into())
}

/// Verifies `token` (whose header is `header`) with `keys` of `cluster` for `client` of
/// `issuer` at `now`: the ServiceAccount's username, or why it was refused.
pub(super) fn check(
    token: &str,
    header: &Header,
    keys: &[PublicKey],
    cluster: &TrustedCluster,
    client: &Client,
    issuer: &str,
    now: i64,
) -> Result<String, &'static str> {
    let mut validation = Validation::new(header.alg);
    // Each checked below against `now` and Signet's own rules.
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.leeway = 0;
    validation.set_issuer(&[cluster.issuer.as_str()]);
    validation.set_required_spec_claims(&["iss", "sub", "aud"]);
    let claims = jwks::verified(keys, header, token, &validation)
        .ok_or("no key of the cluster verifies it for the cluster's issuer")?;
    let time = |name: &str| claims[name].as_i64();
    let exp = time("exp").ok_or("no exp (a legacy Secret-based token)")?;
    let iat = time("iat").ok_or("no iat")?;
    if exp <= now {
        return Err("expired");
    }
    if iat > now + LEEWAY || time("nbf").is_some_and(|nbf| nbf > now + LEEWAY) {
        return Err("not valid yet");
    }
    if exp.saturating_sub(iat) > i64::try_from(cluster.max_token_lifetime_secs).unwrap_or(0) {
        return Err("it lives longer than the cluster's maxTokenLifetime");
    }
    if !holds_audience(&claims["aud"], issuer) {
        return Err("the issuer is not among its audiences");
    }
    let kubernetes = &claims["kubernetes.io"];
    fn text(v: &Value) -> Option<&str> {
        v.as_str().filter(|s| !s.is_empty())
    }
    let namespace = text(&kubernetes["namespace"])
        .ok_or("no kubernetes.io claims (not a bound ServiceAccount token)")?;
    let account = &kubernetes["serviceaccount"];
    let name = text(&account["name"]).ok_or("no ServiceAccount name")?;
    text(&account["uid"]).ok_or("no ServiceAccount uid")?;
    if let Some(pod) = kubernetes.get("pod")
        && (text(&pod["name"]).is_none() || text(&pod["uid"]).is_none())
    {
        return Err("a pod binding without the pod's name and uid");
    }
    let username = format!("system:serviceaccount:{namespace}:{name}");
    if claims["sub"].as_str() != Some(username.as_str()) {
        return Err("sub disagrees with the kubernetes.io claims");
    }
    if !client.service_accounts.contains(&username) {
        return Err("a ServiceAccount the client does not name");
    }
    Ok(username)
}

/// Authenticates `client`, whose ServiceAccounts live in `cluster`, with `token` at `now`.
pub(super) async fn authenticate<'a>(
    checkers: &Checkers<'_>,
    cluster: &TrustedCluster,
    anchor: &str,
    client: &'a Client,
    issuer: &str,
    token: &str,
    now: i64,
) -> Result<&'a Client, OAuthError> {
    let refuse = |why: &str| {
        tracing::info!(client_id = %client.client_id, cluster = %cluster.name, why, "ServiceAccount token of a trusted cluster refused");
        OAuthError::invalid_client()
    };
    // The cluster's keys being out of reach is not the client's fault: it may retry.
    let unavailable = |error: String| {
        tracing::warn!(cluster = %cluster.name, %error, "no keys of a trusted cluster");
        OAuthError::temporarily_unavailable(format!(
            "the keys of trusted cluster {} are out of reach",
            cluster.name
        ))
    };
    let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("not a JWS"))?;
    let fetch = ClusterFetch {
        outbound: checkers.outbound,
        ca: cluster.ca_bundle.as_deref(),
        anchor,
    };
    let jwks_uri = match &cluster.jwks_uri {
        Some(uri) => uri.clone(),
        None => checkers
            .discovered
            .jwks_uri(&fetch, cluster, now)
            .await
            .map_err(unavailable)?,
    };
    let allow_private = cluster.allow_private_network;
    let kid = header.kid.as_deref();
    let keys = checkers
        .jwks
        .keys(&fetch, &jwks_uri, allow_private, kid, now)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    check(token, &header, &keys, cluster, client, issuer, now)
        .map(|_| client)
        .map_err(refuse)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, encode};
    use serde_json::json;
    use signet_crds::keygen;
    use signet_crds::v1alpha1::Algorithm;

    use super::super::tests::{ISSUER, NOW, client};
    use super::*;

    const EAST: &str = "https://east.clusters.example";

    fn cluster() -> TrustedCluster {
        TrustedCluster {
            name: "east".into(),
            issuer: EAST.into(),
            jwks_uri: None,
            ca_bundle: None,
            max_token_lifetime_secs: 3600,
            allow_private_network: false,
        }
    }

    /// A token as east's API server makes them (`kubectl create token worker -n team-a
    /// --audience ISSUER`, bound to a pod), signed by `key`.
    fn good() -> Value {
        json!({
            "iss": EAST,
            "sub": "system:serviceaccount:team-a:worker",
            "aud": [ISSUER],
            "exp": NOW + 600,
            "iat": NOW,
            "nbf": NOW,
            "kubernetes.io": {
                "namespace": "team-a",
                "serviceaccount": {"name": "worker", "uid": "3c1e5a52-0000-4000-8000-000000000001"},
                "pod": {"name": "worker-7d9f", "uid": "3c1e5a52-0000-4000-8000-000000000002"},
            },
        })
    }

    fn signed(key: &keygen::Generated, claims: &Value) -> String {
        let signer = crate::jose::Signer::from_pem(&key.kid, Algorithm::ES256, &key.private_pem);
        signer.unwrap().sign("JWT", claims)
    }

    fn verify(keys: &[PublicKey], token: &str) -> Result<String, &'static str> {
        let header = jsonwebtoken::decode_header(token).unwrap();
        check(token, &header, keys, &cluster(), &client(), ISSUER, NOW)
    }

    #[test]
    fn a_token_of_the_trusted_cluster_authenticates_the_service_account_it_names() {
        let key = keygen::generate(Algorithm::ES256, None).unwrap();
        let keys = jwks::parse(&json!({"keys": [key.public_jwk]}));
        assert_eq!(
            verify(&keys, &signed(&key, &good())),
            Ok("system:serviceaccount:team-a:worker".into())
        );
        let mut unbound = good();
        unbound["kubernetes.io"]
            .as_object_mut()
            .unwrap()
            .remove("pod");
        assert!(
            verify(&keys, &signed(&key, &unbound)).is_ok(),
            "not bound to a pod"
        );
        let mut skewed = good();
        skewed["iat"] = (NOW + LEEWAY).into();
        assert!(
            verify(&keys, &signed(&key, &skewed)).is_ok(),
            "within the leeway"
        );
    }

    #[test]
    fn every_claim_of_another_cluster_is_checked_offline() {
        let key = keygen::generate(Algorithm::ES256, None).unwrap();
        let keys = jwks::parse(&json!({"keys": [key.public_jwk]}));
        let with = |path: &[&str], value: Option<Value>| {
            let mut claims = good();
            let (last, parents) = path.split_last().unwrap();
            let parent = parents.iter().fold(&mut claims, |c, p| &mut c[*p]);
            match value {
                Some(value) => parent[*last] = value,
                None => {
                    parent.as_object_mut().unwrap().remove(*last);
                }
            }
            signed(&key, &claims)
        };
        let other_key = keygen::generate(Algorithm::ES256, None).unwrap();
        let mut legacy = json!({
            "iss": "kubernetes/serviceaccount",
            "sub": "system:serviceaccount:team-a:worker",
            "kubernetes.io/serviceaccount/namespace": "team-a",
            "kubernetes.io/serviceaccount/service-account.name": "worker",
        });
        legacy["aud"] = json!([ISSUER]);
        for (why, token, refused) in [
            (
                "signed by another key",
                signed(&other_key, &good()),
                "no key of the cluster verifies it for the cluster's issuer",
            ),
            (
                "another issuer (the local cluster's)",
                with(&["iss"], Some("https://kubernetes.default.svc".into())),
                "no key of the cluster verifies it for the cluster's issuer",
            ),
            (
                "a legacy Secret-based token",
                signed(&key, &legacy),
                "no key of the cluster verifies it for the cluster's issuer",
            ),
            (
                "a legacy token claiming the cluster's issuer",
                {
                    let mut claims = legacy.clone();
                    claims["iss"] = EAST.into();
                    signed(&key, &claims)
                },
                "no exp (a legacy Secret-based token)",
            ),
            ("expired", with(&["exp"], Some(NOW.into())), "expired"),
            ("no iat", with(&["iat"], None), "no iat"),
            (
                "issued in the future",
                with(&["iat"], Some((NOW + LEEWAY + 1).into())),
                "not valid yet",
            ),
            (
                "not before the future",
                with(&["nbf"], Some((NOW + LEEWAY + 1).into())),
                "not valid yet",
            ),
            (
                "a lifetime past maxTokenLifetime",
                with(&["exp"], Some((NOW + 3601).into())),
                "it lives longer than the cluster's maxTokenLifetime",
            ),
            (
                "for the API server, not for us",
                with(&["aud"], Some(json!(["https://kubernetes.default.svc"]))),
                "the issuer is not among its audiences",
            ),
            (
                "no kubernetes.io claims",
                with(&["kubernetes.io"], None),
                "no kubernetes.io claims (not a bound ServiceAccount token)",
            ),
            (
                "no ServiceAccount uid",
                with(&["kubernetes.io", "serviceaccount", "uid"], None),
                "no ServiceAccount uid",
            ),
            (
                "a pod without uid",
                with(&["kubernetes.io", "pod", "uid"], None),
                "a pod binding without the pod's name and uid",
            ),
            (
                "sub naming another namespace than the claims",
                with(&["kubernetes.io", "namespace"], Some("team-b".into())),
                "sub disagrees with the kubernetes.io claims",
            ),
            (
                "another ServiceAccount",
                {
                    let mut claims = good();
                    claims["sub"] = "system:serviceaccount:team-a:other".into();
                    claims["kubernetes.io"]["serviceaccount"]["name"] = "other".into();
                    signed(&key, &claims)
                },
                "a ServiceAccount the client does not name",
            ),
        ] {
            assert_eq!(verify(&keys, &token), Err(refused), "{why}");
        }
        // HMAC with the public key's bytes as secret is no signature of the cluster.
        let hs = encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &good(),
            &EncodingKey::from_secret(key.public_jwk.to_string().as_bytes()),
        )
        .unwrap();
        assert!(verify(&keys, &hs).is_err());
    }

    /// Answers a discovery document and counts the fetches.
    struct Serving {
        document: Option<Value>,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl Fetch for Serving {
        async fn fetch(&self, url: &str, _: bool) -> Result<Value, OutboundError> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            assert_eq!(url, format!("{EAST}/.well-known/openid-configuration"));
            self.document.clone().ok_or_else(|| OutboundError::Failed {
                url: url.into(),
                message: "status 503".into(),
            })
        }
    }

    #[tokio::test]
    async fn without_a_jwks_uri_the_keys_are_found_through_discovery_of_the_exact_issuer() {
        let calls = |s: &Serving| s.calls.load(std::sync::atomic::Ordering::SeqCst);
        let serving = |document: Option<Value>| Serving {
            document,
            calls: Default::default(),
        };
        let discovered = Discovered::default();
        let good = serving(Some(
            json!({"issuer": EAST, "jwks_uri": "https://10.0.0.1:6443/openid/v1/jwks"}),
        ));
        assert_eq!(
            discovered.jwks_uri(&good, &cluster(), NOW).await,
            Ok("https://10.0.0.1:6443/openid/v1/jwks".into())
        );
        assert_eq!(
            discovered
                .jwks_uri(&good, &cluster(), NOW + DISCOVERY_SECS - 1)
                .await,
            Ok("https://10.0.0.1:6443/openid/v1/jwks".into())
        );
        assert_eq!(calls(&good), 1, "kept");

        for document in [
            json!({"issuer": "https://evil.example", "jwks_uri": "https://evil.example/jwks"}),
            json!({"issuer": EAST, "jwks_uri": "http://10.0.0.1/openid/v1/jwks"}),
            json!({"issuer": EAST}),
        ] {
            let refused = serving(Some(document.clone()));
            let fresh = Discovered::default();
            assert!(
                fresh.jwks_uri(&refused, &cluster(), NOW).await.is_err(),
                "{document}"
            );
        }
        let down = serving(None);
        let fresh = Discovered::default();
        assert!(fresh.jwks_uri(&down, &cluster(), NOW).await.is_err());
        assert!(fresh.jwks_uri(&down, &cluster(), NOW + 1).await.is_err());
        assert_eq!(calls(&down), 1, "a failure is not retried at once");
        assert!(
            fresh
                .jwks_uri(&down, &cluster(), NOW + DISCOVERY_BACKOFF_SECS)
                .await
                .is_err()
        );
        assert_eq!(calls(&down), 2, "but after the backoff");
    }
}
