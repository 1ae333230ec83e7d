//! The issuer's cookies in a person's browser, and only those: the session (who is signed in)
//! and the binding (which browser started an interaction; see `interaction`).
//!
//! With an https issuer both carry the `__Host-` prefix, which browsers accept only from the
//! issuer's own host, with `Secure`, `Path=/` and no `Domain`: a page on a sibling subdomain
//! (same site, so it may set cookies for the parent domain) cannot plant either one. Because
//! `__Host-` forces `Path=/`, an issuer with a path (`https://id.example.com/team-a`) adds a
//! suffix of its own to both names, so two issuers on one host never read each other's cookies.
//! A plain-http loopback issuer (development, tests) gets the same names without the prefix
//! and without `Secure`, which browsers would refuse there.

use cookie::time::Duration;
use cookie::{Cookie, SameSite};
use sha2::{Digest, Sha256};

/// How long a binding cookie lives: as long as the interactions it binds.
const BINDING_SECS: i64 = super::interaction::INTERACTION_SECS;

/// The cookie names and attributes of one issuer.
#[derive(Clone, Debug, PartialEq)]
pub struct Names {
    /// The session cookie's name.
    pub session: String,
    /// The binding cookie's name.
    pub binding: String,
    /// Whether the cookies are `Secure` (all but plain-http loopback issuers).
    secure: bool,
}

impl Names {
    /// The names for `issuer`.
    pub fn of(issuer: &str) -> Self {
        let https = issuer.starts_with("https://");
        let prefix = if https { "__Host-" } else { "" };
        let suffix = match issuer_path(issuer) {
            "" | "/" => String::new(),
            _ => {
                let digest = Sha256::digest(issuer.as_bytes());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                format!("-{}", &hex[..12])
            }
        };
        Self {
            session: format!("{prefix}signet_session{suffix}"),
            binding: format!("{prefix}signet_binding{suffix}"),
            secure: !is_loopback_http(issuer),
        }
    }

    /// `Set-Cookie` for a session: HttpOnly, SameSite=Lax, host-only.
    pub fn set_session(&self, value: &str, max_age: i64) -> String {
        self.build(&self.session, value, max_age).to_string()
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn clear_session(&self) -> String {
        let mut cookie = self.build(&self.session, "", 0);
        cookie.make_removal();
        cookie.to_string()
    }

    /// `Set-Cookie` for a binding value. SameSite=Lax, not Strict: it must come along on the
    /// top-level redirect back from an upstream provider to `/federate/callback`.
    pub fn set_binding(&self, value: &str) -> String {
        self.build(&self.binding, value, BINDING_SECS).to_string()
    }

    fn build(&self, name: &str, value: &str, max_age: i64) -> Cookie<'static> {
        Cookie::build((name.to_owned(), value.to_owned()))
            .path("/")
            .max_age(Duration::seconds(max_age))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .build()
    }

    /// The issuer's cookies among the `Cookie` headers of a request. A cookie that appears
    /// twice (only the issuer's own host can set these names) counts by its first value.
    pub fn read<'h>(&self, headers: impl IntoIterator<Item = &'h str>) -> Browser {
        let mut browser = Browser::default();
        for header in headers {
            for cookie in Cookie::split_parse(header).flatten() {
                let slot = if cookie.name() == self.session {
                    &mut browser.session
                } else if cookie.name() == self.binding {
                    &mut browser.binding
                } else {
                    continue;
                };
                if slot.is_none() && !cookie.value().is_empty() {
                    *slot = Some(cookie.value().to_owned());
                }
            }
        }
        browser
    }
}

/// What the issuer's cookies in one request say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Browser {
    /// The session cookie's value.
    pub session: Option<String>,
    /// The binding cookie's value.
    pub binding: Option<String>,
}

/// What an interaction stores of the binding value: its SHA-256, so that reading the store
/// does not give away a value a browser would be accepted with.
pub fn binding_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The path of an absolute `issuer` URL ("" when it has none).
fn issuer_path(issuer: &str) -> &str {
    let rest = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    rest.find('/').map_or("", |slash| &rest[slash..])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_https_issuer_gets_host_only_prefixed_secure_cookies() {
        let names = Names::of("https://id.example.com");
        assert_eq!(names.session, "__Host-signet_session");
        assert_eq!(names.binding, "__Host-signet_binding");
        assert_eq!(
            names.set_session("v", 60),
            "__Host-signet_session=v; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=60"
        );
        let binding = names.set_binding("b");
        assert!(
            binding.starts_with("__Host-signet_binding=b; HttpOnly; SameSite=Lax; Secure; Path=/;"),
            "{binding}"
        );
        assert!(binding.ends_with("Max-Age=900"), "{binding}");
        assert!(!binding.contains("Domain"), "host-only");
        let cleared = names.clear_session();
        assert!(
            cleared.starts_with("__Host-signet_session=; ") && cleared.contains("Max-Age=0"),
            "{cleared}"
        );
    }

    #[test]
    fn issuers_with_paths_on_one_host_never_share_a_cookie() {
        let a = Names::of("https://id.example.com/team-a");
        let b = Names::of("https://id.example.com/team-b");
        assert!(a.session.starts_with("__Host-signet_session-"), "{a:?}");
        assert_eq!(a.session.len(), "__Host-signet_session-".len() + 12);
        assert_ne!(a.session, b.session);
        assert_ne!(a.binding, b.binding);
        assert_eq!(
            Names::of("https://id.example.com/").session,
            "__Host-signet_session"
        );
    }

    #[test]
    fn a_loopback_http_issuer_gets_plain_names_without_secure() {
        let names = Names::of("http://127.0.0.1:8080");
        assert_eq!(names.session, "signet_session");
        assert!(!names.set_session("v", 60).contains("Secure"));
        // Not loopback, whatever it starts with.
        let elsewhere = Names::of("http://127.0.0.1.evil.example");
        assert!(elsewhere.set_session("v", 60).contains("Secure"));
    }

    #[test]
    fn only_the_issuers_own_names_are_read() {
        let names = Names::of("https://id.example.com");
        let browser = names.read([
            "signet_session=tossed; x__Host-signet_session=no",
            "__Host-signet_session=s1; __Host-signet_binding=b1; __Host-signet_session=s2",
            "__Host-signet_binding=",
        ]);
        assert_eq!(
            browser,
            Browser {
                session: Some("s1".into()),
                binding: Some("b1".into()),
            }
        );
        assert_eq!(names.read(["__Host-signet_session="]), Browser::default());
        assert_eq!(names.read(["garbage"]), Browser::default());
    }
}
