//! The one OAuth error type (RFC 6749 §5.2): a code the client sees, an optional description
//! for it, and an internal source that is logged and never sent. It knows no HTTP: the web
//! layer (`http::error`) picks the status and headers from the code.

/// An OAuth error.
#[derive(Debug)]
pub struct OAuthError {
    code: &'static str,
    description: Option<String>,
    source: Option<String>,
}

impl OAuthError {
    fn new(code: &'static str, description: Option<String>) -> Self {
        Self {
            code,
            description,
            source: None,
        }
    }

    /// The RFC 6749 error code (`invalid_grant`, ...).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// What the client is told besides the code.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// What went wrong inside, for the log only.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// `invalid_request`, with what was wrong.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", Some(description.into()))
    }

    /// `invalid_client`: 401 with `WWW-Authenticate`. Says nothing about which part failed.
    pub fn invalid_client() -> Self {
        Self::new(
            "invalid_client",
            Some("client authentication failed".into()),
        )
    }

    /// `unauthorized_client`: this client may not use this grant.
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new("unauthorized_client", Some(description.into()))
    }

    /// `unsupported_grant_type`.
    pub fn unsupported_grant_type() -> Self {
        Self::new("unsupported_grant_type", None)
    }

    /// `invalid_grant`: a code, refresh token or device code that is not good (RFC 6749
    /// §5.2); the description says which check failed.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", Some(description.into()))
    }

    /// A device-flow polling answer (RFC 8628 §3.5): authorization_pending, slow_down,
    /// access_denied or expired_token, all 400.
    pub fn device(code: &'static str) -> Self {
        Self::new(code, None)
    }

    /// `invalid_scope`.
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new("invalid_scope", Some(description.into()))
    }

    /// `invalid_target` (RFC 8707).
    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new("invalid_target", Some(description.into()))
    }

    /// `temporarily_unavailable`: no snapshot yet, or the store is down (503).
    pub fn temporarily_unavailable(source: impl Into<String>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new("temporarily_unavailable", None)
        }
    }

    /// `server_error`: a bug or an unexpected failure; the source is logged only.
    pub fn server_error(source: impl Into<String>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new("server_error", None)
        }
    }
}
