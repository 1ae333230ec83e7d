//! The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1) checked without side
//! effects. The client and its redirect_uri come first: until both are known good, errors are
//! shown on a page, never sent anywhere. After that, errors go back to the client.

use serde::{Deserialize, Serialize};
use signet_crds::snapshot::Client;
use signet_crds::v1alpha1::{ClientType, GrantType};

use crate::form::Form;
use crate::loaded::Loaded;

/// `prompt`, parsed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// No page may be shown.
    pub none: bool,
    /// Sign in again even with a session.
    pub login: bool,
    /// Ask for consent even when remembered.
    pub consent: bool,
}

/// A valid authorization request, kept in the store while the person signs in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The client.
    pub client_id: String,
    /// The redirect_uri exactly as sent (it matched a registered one).
    pub redirect_uri: String,
    /// Echoed back.
    pub state: Option<String>,
    /// Into the ID token.
    pub nonce: Option<String>,
    /// Requested scopes, in request order, without duplicates.
    pub scopes: Vec<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age`, seconds.
    pub max_age: Option<i64>,
    /// Prefills the username.
    pub login_hint: Option<String>,
    /// Subject of a valid `id_token_hint`.
    pub hint_sub: Option<String>,
}

impl AuthorizationRequest {
    /// Whether `scope` was requested.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Why a request was refused.
#[derive(Debug, PartialEq)]
pub enum Rejected {
    /// Shown as an error page: the client or its redirect_uri cannot be trusted.
    Page(String),
    /// Sent to the client's redirect_uri (RFC 6749 §4.1.2.1).
    Redirect(ErrorRedirect),
}

/// An error for the client, with where to send it.
#[derive(Debug, PartialEq)]
pub struct ErrorRedirect {
    /// The verified redirect_uri.
    pub redirect_uri: String,
    /// The client's state.
    pub state: Option<String>,
    /// RFC 6749 / OIDC error code.
    pub error: &'static str,
    /// For the developer.
    pub description: String,
}

/// A parameter; RFC 6749 §3.1: one sent without a value is treated as omitted.
fn param<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.get(name).filter(|v| !v.is_empty())
}

/// The longest value of each parameter an interaction keeps, in bytes; an `id_token_hint`
/// is only verified, never kept, and may be a large signed token.
const CAPS: &[(&str, usize)] = &[
    ("client_id", 256),
    ("redirect_uri", 2048),
    ("state", 2048),
    ("nonce", 2048),
    ("login_hint", 2048),
    ("scope", 2048),
    ("code_challenge", 128),
    ("id_token_hint", 16 * 1024),
];

/// The first parameter longer than its cap, with the cap. Checked before anything else, so an
/// over-long request is answered with a page (a redirect would have to carry the long state)
/// and nothing of it is stored.
fn over_long(form: &Form) -> Option<(&'static str, usize)> {
    CAPS.iter()
        .find(|(name, cap)| form.get(name).is_some_and(|v| v.len() > *cap))
        .copied()
}

/// Checks the request. `hint_sub` verifies an `id_token_hint` (our signature, expiry
/// tolerated) and gives its subject.
pub fn validate(
    loaded: &Loaded,
    form: &Form,
    hint_sub: impl FnOnce(&str) -> Option<String>,
) -> Result<AuthorizationRequest, Rejected> {
    if let Some((name, cap)) = over_long(form) {
        return Err(Rejected::Page(format!(
            "The application sent a sign-in request whose {name} is too long (at most {cap} bytes)."
        )));
    }
    let Some(client_id) = param(form, "client_id") else {
        return Err(Rejected::Page(
            "The request names no client (client_id).".into(),
        ));
    };
    let Some(client) = loaded.clients.get(client_id) else {
        return Err(Rejected::Page(format!("There is no client {client_id}.")));
    };
    let Some(redirect_uri) = param(form, "redirect_uri") else {
        return Err(Rejected::Page("The request has no redirect_uri.".into()));
    };
    if !redirect_allowed(client, redirect_uri) {
        return Err(Rejected::Page(
            "The redirect_uri is not registered for this client.".into(),
        ));
    }
    let state = param(form, "state").map(str::to_owned);
    let fail = |error: &'static str, description: &str| {
        Rejected::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.to_owned(),
            state: state.clone(),
            error,
            description: description.to_owned(),
        })
    };
    if param(form, "request").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if param(form, "request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match param(form, "response_type") {
        None => return Err(fail("invalid_request", "response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if param(form, "response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization code grant",
        ));
    }
    let scopes =
        scopes(loaded, client, param(form, "scope")).map_err(|d| fail("invalid_scope", &d))?;
    let code_challenge = pkce(client, form).map_err(|d| fail("invalid_request", d))?;
    let prompt = prompt(param(form, "prompt")).map_err(|d| fail("invalid_request", d))?;
    let max_age = match param(form, "max_age") {
        None => None,
        Some(text) => Some(
            text.parse::<u32>()
                .map_err(|_| fail("invalid_request", "max_age must be a number of seconds"))?
                as i64,
        ),
    };
    let hint_sub = match param(form, "id_token_hint") {
        None => None,
        Some(hint) => Some(
            hint_sub(hint).ok_or_else(|| fail("invalid_request", "id_token_hint is not valid"))?,
        ),
    };
    Ok(AuthorizationRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        state: state.clone(),
        nonce: param(form, "nonce").map(str::to_owned),
        scopes,
        code_challenge,
        prompt,
        max_age,
        login_hint: param(form, "login_hint").map(str::to_owned),
        hint_sub,
    })
}

/// Exact string comparison with a registered URI; for public (native) clients, RFC 8252 §7.3
/// also lets a loopback IP redirect use any port.
pub fn redirect_allowed(client: &Client, requested: &str) -> bool {
    if client.redirect_uris.iter().any(|r| r == requested) {
        return true;
    }
    client.client_type == ClientType::Public
        && without_loopback_port(requested).is_some_and(|requested| {
            client
                .redirect_uris
                .iter()
                .filter_map(|r| without_loopback_port(r))
                .any(|registered| registered == requested)
        })
}

/// `http://127.0.0.1:PORT/path` or `http://[::1]:PORT/path` without its port; None for any
/// other URI. String work only: no normalisation may make two different URIs equal.
fn without_loopback_port(uri: &str) -> Option<String> {
    let (host, rest) = ["http://127.0.0.1", "http://[::1]"]
        .into_iter()
        .find_map(|host| Some((host, uri.strip_prefix(host)?)))?;
    let rest = match rest.strip_prefix(':') {
        Some(port_and_path) => {
            let digits = port_and_path.len()
                - port_and_path
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .len();
            if digits == 0 || digits > 5 {
                return None;
            }
            &port_and_path[digits..]
        }
        None => rest,
    };
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
        return None; // e.g. http://127.0.0.1.evil.example/
    }
    Some(format!("{host}{rest}"))
}

/// The requested scopes: known to the issuer and allowed for the client. `offline_access`
/// is dropped for a client without the refresh_token grant (OIDC Core §11).
pub fn scopes(
    loaded: &Loaded,
    client: &Client,
    scope: Option<&str>,
) -> Result<Vec<String>, String> {
    let Some(scope) = scope else {
        return Err("scope is required".into());
    };
    let mut scopes: Vec<String> = Vec::new();
    for name in scope.split(' ').filter(|s| !s.is_empty()) {
        let known = signet_crds::compile::IDENTITY_SCOPES.contains(&name)
            || loaded.scopes.contains_key(name);
        if !known || !client.allowed_scopes.iter().any(|s| s == name) {
            return Err(format!("scope {name} is not allowed for this client"));
        }
        if name == "offline_access" && !client.grant_types.contains(&GrantType::RefreshToken) {
            continue;
        }
        if !scopes.iter().any(|s| s == name) {
            scopes.push(name.to_owned());
        }
    }
    if scopes.is_empty() {
        return Err("scope is required".into());
    }
    Ok(scopes)
}

/// PKCE (RFC 7636): S256 only; required where the client requires it (always for public).
fn pkce(client: &Client, form: &Form) -> Result<Option<String>, &'static str> {
    let challenge = param(form, "code_challenge");
    let method = param(form, "code_challenge_method");
    match (challenge, method) {
        (None, None) if client.require_pkce || client.client_type == ClientType::Public => {
            Err("code_challenge is required (PKCE with S256)")
        }
        (None, None) => Ok(None),
        (None, Some(_)) => Err("code_challenge_method without code_challenge"),
        // An absent method means plain (RFC 7636 §4.3), which is refused like an explicit one.
        (Some(_), None | Some("plain")) => {
            Err("code_challenge_method must be S256; plain is not accepted")
        }
        (Some(_), Some(m)) if m != "S256" => Err("code_challenge_method must be S256"),
        (Some(c), Some(_)) => {
            let well_formed = c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if well_formed {
                Ok(Some(c.to_owned()))
            } else {
                Err("code_challenge must be a base64url SHA-256 (43 characters)")
            }
        }
    }
}

/// `prompt`: none alone, or any of login and consent (select_account is treated as login).
fn prompt(prompt: Option<&str>) -> Result<Prompt, &'static str> {
    let mut parsed = Prompt::default();
    let values: Vec<&str> = prompt
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    for value in &values {
        match *value {
            "none" => parsed.none = true,
            "login" | "select_account" => parsed.login = true,
            "consent" => parsed.consent = true,
            _ => {} // unknown values are ignored, like unknown parameters
        }
    }
    if parsed.none && values.len() > 1 {
        return Err("prompt=none cannot be combined with other values");
    }
    Ok(parsed)
}

/// Whether `verifier` (RFC 7636 §4.1) hashes to `challenge` with S256, compared in constant
/// time. A malformed verifier never matches.
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    well_formed
        && aws_lc_rs::constant_time::verify_slices_are_equal(
            computed.as_bytes(),
            challenge.as_bytes(),
        )
        .is_ok()
}
