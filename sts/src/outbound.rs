//! Outbound calls to addresses that tenants choose (a client's `jwksUri`; later back-channel
//! logout and upstream providers) are an SSRF surface. Rules: https only; every resolved
//! address checked at connect time (so DNS rebinding gains nothing), private, loopback,
//! link-local and other non-public addresses (`public_ip`) refused unless the TokenService
//! allows them; short timeouts; response size capped.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;

/// Longest an outbound call may take, connect to last byte.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response body read.
pub const MAX_BODY: usize = 64 * 1024;

/// Why an outbound call was not made or failed (no secrets inside).
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// Not an https URL.
    #[error("{0} is not an https URL")]
    NotHttps(String),
    /// The request failed (including a refused address).
    #[error("{url}: {message}")]
    Failed { url: String, message: String },
}

pub use crate::public_ip::is_public;

/// A resolver that drops addresses the policy refuses.
#[derive(Clone)]
struct GuardedResolver {
    allow_private: bool,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "no public address (private targets are not allowed)",
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

type Https = HttpsConnector<HttpConnector<GuardedResolver>>;

type HttpsClient = Client<Https, Full<Bytes>>;

/// Clients for tenant-chosen URLs: one that refuses non-public addresses, one that allows them;
/// and for the platform's trusted clusters, clients that trust only a given CA bundle.
pub struct Outbound {
    public_only: HttpsClient,
    any: HttpsClient,
    /// By SHA-256 of the PEM bundle and whether private targets are allowed.
    anchored: Mutex<HashMap<(String, bool), HttpsClient>>,
}

fn client(allow_private: bool, roots: Option<rustls::RootCertStore>) -> HttpsClient {
    let mut http = HttpConnector::new_with_resolver(GuardedResolver { allow_private });
    http.set_connect_timeout(Some(TIMEOUT));
    http.enforce_http(false);
    let tls = match roots {
        None => hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .expect("the system's root certificates load"),
        Some(roots) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ),
    };
    let tls = tls.https_only().enable_http1().wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(tls)
}

/// The certificates of a PEM bundle as a root store; an error when it holds none.
fn roots(pem: &str) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the CA bundle is not PEM: {e}"))?;
    let mut store = rustls::RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certs);
    match added {
        0 => Err("the CA bundle holds no usable certificate".into()),
        _ => Ok(store),
    }
}

impl Default for Outbound {
    fn default() -> Self {
        Self::new()
    }
}

impl Outbound {
    /// Both clients.
    pub fn new() -> Self {
        Self {
            public_only: client(false, None),
            any: client(true, None),
            anchored: Mutex::default(),
        }
    }

    /// GETs `url` as JSON, within the timeout and the size cap.
    pub async fn get_json(
        &self,
        url: &str,
        allow_private: bool,
    ) -> Result<serde_json::Value, OutboundError> {
        self.get_json_with(url, &[], allow_private).await
    }

    /// GETs `url` as JSON, trusting only the certificates of `ca` (a PEM bundle) for TLS.
    pub async fn get_json_trusting(
        &self,
        url: &str,
        ca: &str,
        allow_private: bool,
    ) -> Result<serde_json::Value, OutboundError> {
        let key = (crate::store::token_key(ca), allow_private);
        let anchored = self
            .anchored
            .lock()
            .expect("anchored clients lock")
            .get(&key)
            .cloned();
        let client = match anchored {
            Some(client) => client,
            None => {
                let roots = roots(ca).map_err(|message| OutboundError::Failed {
                    url: url.to_owned(),
                    message,
                })?;
                let client = client(allow_private, Some(roots));
                let mut anchored = self.anchored.lock().expect("anchored clients lock");
                anchored.insert(key, client.clone());
                client
            }
        };
        let body = self
            .call_with(&client, url, allow_private, json_get(&[]))
            .await?;
        parse_json(url, &body)
    }

    /// GETs `url` as JSON with extra headers (a Bearer token for an upstream's userinfo).
    pub async fn get_json_with(
        &self,
        url: &str,
        headers: &[(hyper::header::HeaderName, String)],
        allow_private: bool,
    ) -> Result<serde_json::Value, OutboundError> {
        let body = self.call(url, allow_private, json_get(headers)).await?;
        parse_json(url, &body)
    }

    /// POSTs a form to `url` with extra headers; the body of a 2xx answer.
    pub async fn post_form(
        &self,
        url: &str,
        form: String,
        headers: &[(hyper::header::HeaderName, String)],
        allow_private: bool,
    ) -> Result<Bytes, OutboundError> {
        let request = |uri: hyper::Uri| {
            let mut request = hyper::Request::post(uri).header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
            for (name, value) in headers {
                request = request.header(name, value);
            }
            request.body(Full::new(Bytes::from(form.clone())))
        };
        self.call(url, allow_private, request).await
    }

    /// One call under the rules with the client for the system's roots.
    async fn call(
        &self,
        url: &str,
        allow_private: bool,
        request: impl Fn(hyper::Uri) -> Result<hyper::Request<Full<Bytes>>, hyper::http::Error>,
    ) -> Result<Bytes, OutboundError> {
        let client = if allow_private {
            &self.any
        } else {
            &self.public_only
        };
        self.call_with(client, url, allow_private, request).await
    }

    /// One call under the rules: https, address check, timeout, size cap, 2xx.
    async fn call_with(
        &self,
        client: &HttpsClient,
        url: &str,
        allow_private: bool,
        request: impl Fn(hyper::Uri) -> Result<hyper::Request<Full<Bytes>>, hyper::http::Error>,
    ) -> Result<Bytes, OutboundError> {
        if !url.starts_with("https://") {
            return Err(OutboundError::NotHttps(url.to_owned()));
        }
        let failed = |message: String| OutboundError::Failed {
            url: url.to_owned(),
            message,
        };
        let uri: hyper::Uri = url.parse().map_err(|e| failed(format!("{e}")))?;
        // An IP literal never reaches the resolver: check it here.
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>()
            && !allow_private
            && !is_public(ip)
        {
            return Err(failed(
                "no public address (private targets are not allowed)".into(),
            ));
        }
        let request = request(uri).map_err(|e| failed(format!("{e}")))?;
        let call = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| failed(format!("{e:?}")))?;
            if !response.status().is_success() {
                return Err(failed(format!("status {}", response.status())));
            }
            Ok(Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| failed(format!("body: {e}")))?
                .to_bytes())
        };
        tokio::time::timeout(TIMEOUT, call)
            .await
            .map_err(|_| failed("timed out".into()))?
    }
}

/// A GET that asks for JSON, with `headers`.
fn json_get(
    headers: &[(hyper::header::HeaderName, String)],
) -> impl Fn(hyper::Uri) -> Result<hyper::Request<Full<Bytes>>, hyper::http::Error> + '_ {
    move |uri| {
        // A JWK Set's own media type (RFC 7517 §8.5) too: kube-apiserver answers 406 to a
        // request for its /openid/v1/jwks that accepts only application/json.
        let mut request = hyper::Request::get(uri).header(
            hyper::header::ACCEPT,
            "application/json, application/jwk-set+json",
        );
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.body(Full::default())
    }
}

fn parse_json(url: &str, body: &[u8]) -> Result<serde_json::Value, OutboundError> {
    serde_json::from_slice(body).map_err(|e| OutboundError::Failed {
        url: url.to_owned(),
        message: format!("JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
        ] {
            assert!(
                !is_public(private.parse().unwrap()),
                "{private} counted as public"
            );
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(
                is_public(public.parse().unwrap()),
                "{public} counted as private"
            );
        }
    }

    /// Blocks of the IANA special-purpose registries that reach what a tenant must not: a
    /// NAT64 or 6to4 gateway forwards to the IPv4 address inside, and the others are not
    /// globally reachable. Each with an ordinary neighbour just outside it.
    #[test]
    fn special_purpose_addresses_are_not_public() {
        let refused = [
            "64:ff9b::7f00:1",    // NAT64 of 127.0.0.1
            "64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
            "64:ff9b:1::a00:1",   // local-use NAT64 (RFC 8215)
            "2002:7f00:1::1",     // 6to4 of 127.0.0.1
            "2002:808:808::1",    // 6to4, even of a public address (deprecated, RFC 7526)
            "::7f00:1",           // IPv4-compatible 127.0.0.1 (deprecated)
            "::808:808",          // IPv4-compatible 8.8.8.8
            "fec0::1",            // site-local (deprecated, RFC 3879)
            "feff:ffff::1",       // site-local, its last /16
            "198.18.0.1",         // benchmarking (RFC 2544)
            "198.19.255.255",     // benchmarking, its last address
            "2001::1",            // Teredo (RFC 4380)
            "2001:2::1",          // IPv6 benchmarking (RFC 5180)
            "2001:10::1",         // ORCHID (RFC 4843)
            "2001:20::1",         // ORCHIDv2 (RFC 7343)
            "2001:1ff:ffff::1",   // IETF protocol assignments, its end (RFC 2928)
            "100::1",             // discard-only (RFC 6666)
            "192.88.99.1",        // 6to4 relay anycast (deprecated, RFC 7526)
            "192.0.0.170",        // NAT64 discovery (RFC 7050)
            "3fff::1",            // documentation (RFC 9637)
            "5f00::1",            // SRv6 SIDs (RFC 9602)
            "ff02::1",            // multicast
            "240.0.0.1",          // reserved
            "255.255.255.255",    // broadcast
            "203.0.113.7",        // documentation
            "::ffff:198.18.0.1",  // IPv4-mapped benchmarking
        ];
        for address in refused {
            assert!(
                !is_public(address.parse().unwrap()),
                "{address} counted as public"
            );
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "64:ff9b::808:808", // NAT64 of 8.8.8.8: how an IPv6-only cluster reaches IPv4 hosts
            "198.17.255.255",   // just below benchmarking
            "198.20.0.0",       // just above benchmarking
            "100.63.255.255",   // just below shared address space
            "100.128.0.0",      // just above it
            "192.88.98.255",    // just below the 6to4 relay
            "192.88.100.0",     // just above it
            "2001:200::1",      // just above the IETF protocol assignments
            "2003::1",          // just above 6to4
            "3ffe:ffff::1",     // just below 3fff::/20
            "3fff:1000::1",     // just above it
        ];
        for address in public {
            assert!(
                is_public(address.parse().unwrap()),
                "{address} counted as private"
            );
        }
    }

    #[tokio::test]
    async fn http_urls_and_private_targets_are_refused() {
        let outbound = Outbound::new();
        assert!(matches!(
            outbound.get_json("http://example.com/jwks", true).await,
            Err(OutboundError::NotHttps(_))
        ));
        let refused = outbound
            .get_json("https://127.0.0.1:1/jwks", false)
            .await
            .unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("private targets are not allowed"),
            "{refused}"
        );
    }
}
