//! The authorization code flow (RFC 6749 §4.1, OIDC Core §3.1, RFC 7636), in one place: the
//! authorization request checked without side effects, PKCE included (`request`); the code a
//! signed-in person's browser carries to the client, and the consent it remembers (`code`);
//! and the token endpoint's redemption of that code (`grant`). The pages and redirects are
//! `http/signin.rs`; who is signed in and what comes next is `signin`.

pub mod code;
pub mod grant;
pub mod request;
#[cfg(test)]
mod request_tests;
