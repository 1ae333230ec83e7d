//! The SSO session: a random cookie value that names a record in the store (by its hash).
//! The record carries a separate public `sid` for ID tokens, so an ID token never reveals the
//! cookie.

use serde::{Deserialize, Serialize};

/// Name of the session cookie.
pub const COOKIE: &str = "signet_session";

/// A signed-in person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Public session id (`sid` claim).
    pub sid: String,
    /// Subject.
    pub sub: String,
    /// When the person last entered credentials (`auth_time`).
    pub auth_time: i64,
    /// The identity provider used.
    pub idp: String,
    /// When the session ends.
    pub expires: i64,
    /// Clients that received tokens in this session (for logout).
    #[serde(default)]
    pub clients: Vec<String>,
}

/// `Set-Cookie` for a session: host-only (no Domain), HttpOnly, SameSite=Lax, and Secure
/// unless the issuer is plain http on loopback (development and tests), where browsers would
/// drop a Secure cookie.
pub fn set_cookie(value: &str, max_age: i64, issuer: &str) -> String {
    let mut cookie = format!("{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax");
    if !is_loopback_http(issuer) {
        cookie.push_str("; Secure");
    }
    cookie
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(issuer: &str) -> String {
    set_cookie("", 0, issuer)
}

fn is_loopback_http(issuer: &str) -> bool {
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|prefix| {
            issuer.strip_prefix(prefix).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with(':') || rest.starts_with('/')
            })
        })
}

/// The session cookie's value in a `Cookie` header, if any.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_except_on_loopback_http() {
        let https = set_cookie("v", 60, "https://id.example.com");
        assert_eq!(
            https,
            "signet_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(!set_cookie("v", 60, "http://127.0.0.1:8080").contains("Secure"));
        assert!(set_cookie("v", 60, "http://127.0.0.1.evil.example").contains("Secure"));
        assert!(!https.contains("Domain"), "host-only");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(
            from_cookie_header("a=1; signet_session=xyz; b=2"),
            Some("xyz")
        );
        assert_eq!(from_cookie_header("signet_session="), None);
        assert_eq!(from_cookie_header("x_signet_session=1"), None);
    }
}
