//! Minimal HTTP/1.0 on loopback for tests that only need a status and a body.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `Authorization` value of HTTP Basic client authentication (RFC 6749 §2.3.1; the ids
/// and secrets the tests use need no form-encoding).
pub fn basic_auth(client_id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")))
}

/// The claims of a JWT, unverified: what a test inspects after the STS issued it.
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).expect("a JWS has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

/// The JOSE header of a JWT, unverified (its `alg`, `kid`, `typ`).
pub fn jwt_header(jwt: &str) -> serde_json::Value {
    let header = jwt.split('.').next().expect("a JWS has a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON")
}

/// A response: status code, headers (lower-cased names) and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn exchange(addr: &str, request: Vec<u8>) -> anyhow::Result<Response> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(&request).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .parse()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// GET `path` from `addr` (host:port).
pub async fn get(addr: &str, path: &str) -> anyhow::Result<Response> {
    exchange(
        addr,
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").into_bytes(),
    )
    .await
}

/// Any method, with extra header lines and no body.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Response> {
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    exchange(addr, request.into_bytes()).await
}

/// GET `path` with extra header lines.
pub async fn get_with(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Response> {
    request(addr, "GET", path, headers).await
}

/// A query string (or form body) from pairs, percent-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// POST a raw body with extra header lines.
pub async fn post(
    addr: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> anyhow::Result<Response> {
    let mut request = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    exchange(addr, bytes).await
}

/// POST a form (`application/x-www-form-urlencoded`).
pub async fn post_form(
    addr: &str,
    path: &str,
    form: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> anyhow::Result<Response> {
    post(
        addr,
        path,
        "application/x-www-form-urlencoded",
        query(form).as_bytes(),
        headers,
    )
    .await
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
