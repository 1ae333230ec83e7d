//! Server-rendered pages: askama templates compiled into the binary (HTML-escaped by
//! default), served with headers that forbid framing, sniffing, referrers and caching. There is
//! no script on any page, so the CSP allows none.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::loaded::Loaded;

/// Branding from the TokenService.
pub struct Brand {
    /// Page title suffix and header text.
    pub title: String,
    /// Logo image.
    pub logo_url: Option<String>,
}

impl Brand {
    /// The TokenService's branding, or Signet's.
    pub fn of(loaded: Option<&Loaded>) -> Self {
        let snapshot = loaded.map(|l| &l.snapshot);
        Self {
            title: snapshot
                .and_then(|s| s.branding_title.clone())
                .unwrap_or_else(|| "Signet".into()),
            logo_url: snapshot.and_then(|s| s.branding_logo_url.clone()),
        }
    }
}

/// The login form.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// Branding.
    pub brand: Brand,
    /// The client's display name.
    pub client_name: Option<&'a str>,
    /// What went wrong with the last attempt.
    pub error: Option<&'a str>,
    /// Interaction id.
    pub interaction: &'a str,
    /// CSRF token of the interaction.
    pub csrf: &'a str,
    /// Prefilled username (login_hint or the last attempt).
    pub username: &'a str,
    /// Show the username and password form (a static provider applies).
    pub password: bool,
    /// Upstream providers to offer.
    pub upstreams: Vec<ProviderButton>,
}

/// An upstream identity provider on the login page.
pub struct ProviderButton {
    /// IdentityProvider name.
    pub name: String,
    /// What the person reads.
    pub title: String,
}

/// One scope on the consent page.
pub struct ScopeLine {
    /// Display name.
    pub title: String,
    /// Longer text.
    pub description: Option<String>,
}

/// The consent page.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    /// Branding.
    pub brand: Brand,
    /// The client's display name.
    pub client_name: &'a str,
    /// Who is signed in.
    pub username: &'a str,
    /// What is asked for.
    pub scopes: Vec<ScopeLine>,
    /// Interaction id.
    pub interaction: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
}

/// An error a person can read, with a correlation id that is also in the log.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    /// Branding.
    pub brand: Brand,
    /// What happened, for a person.
    pub message: &'a str,
    /// Joins the page to the log line.
    pub correlation_id: &'a str,
}

/// `Content-Security-Policy` of every page. `form-action` also names the client's redirect
/// origin, because browsers apply it to the redirect that follows a form post.
fn csp(form_targets: &[String]) -> String {
    let targets: String = form_targets.iter().map(|t| format!(" {t}")).collect();
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self' https:; base-uri 'none'; \
         frame-ancestors 'none'; form-action 'self'{targets}"
    )
}

/// The origin of an http(s) `uri` (scheme://host[:port]) for `form-action`.
pub fn origin_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.origin().ascii_serialization())
}

/// What `form-action` must allow so that a form's answer may redirect to a client's
/// `redirect_uri`: its origin, or for a native app's private-use scheme (reverse-domain, RFC
/// 8252 §7.1) the scheme itself (`com.example.app:`), the narrowest source CSP has for a URI
/// without a host. Without it Chromium blocks the redirect that ends a sign-in.
pub fn redirect_target(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    let scheme = url.scheme();
    if scheme.contains('.') {
        // The url crate has lower-cased it and checked RFC 3986's scheme characters, which
        // are CSP's too.
        return Some(format!("{scheme}:"));
    }
    origin_of(uri)
}

/// A rendered page with the security headers.
pub fn page(status: StatusCode, template: &impl Template, form_target: Option<&str>) -> Response {
    let targets: Vec<String> = form_target.into_iter().map(str::to_owned).collect();
    page_with_targets(status, template, &targets)
}

/// A rendered page whose forms' answers may redirect to any of `form_targets` (origins).
pub fn page_with_targets(
    status: StatusCode,
    template: &impl Template,
    form_targets: &[String],
) -> Response {
    let html = match template.render() {
        Ok(html) => html,
        Err(error) => {
            tracing::error!(%error, "a page failed to render");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&csp(form_targets)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    security_headers(headers);
    response
}

/// Headers every browser-facing response carries.
pub fn security_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// An error page; `detail` goes to the log under the correlation id, never to the page.
pub fn error_page(
    loaded: Option<&Loaded>,
    status: StatusCode,
    message: &str,
    detail: &str,
) -> Response {
    let correlation_id = crate::random::token()[..16].to_owned();
    tracing::warn!(%correlation_id, status = status.as_u16(), message, detail, "error page");
    page(
        status,
        &ErrorPage {
            brand: Brand::of(loaded),
            message,
            correlation_id: &correlation_id,
        },
        None,
    )
}

/// The stylesheet, compiled in.
pub async fn stylesheet() -> Response {
    let mut response = include_str!("../../static/signet.css").into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show_and_carry_no_script() {
        let html = LoginPage {
            brand: Brand {
                title: "T".into(),
                logo_url: None,
            },
            client_name: Some("<script>x</script>"),
            error: None,
            interaction: "i",
            csrf: "c",
            username: "\"><b>",
            password: true,
            upstreams: vec![],
        }
        .render()
        .unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&#60;script&#62;"), "{html}");
        assert!(!html.contains("<b>"), "attribute values escaped");
        assert!(html.contains(r#"name="username""#) && html.contains(r#"name="password""#));
        assert!(html.contains(r#"<label for="username">"#));
        assert!(html.contains(r#"name="csrf" value="c""#));
    }

    #[test]
    fn the_policy_forbids_framing_and_scripts() {
        let policy = csp(&["https://app.example.com".to_owned()]);
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(policy.starts_with("default-src 'none'"));
        assert!(policy.ends_with("form-action 'self' https://app.example.com"));
        assert_eq!(
            origin_of("https://app.example.com:8443/cb?x=1").as_deref(),
            Some("https://app.example.com:8443")
        );
        assert_eq!(origin_of("com.example.cli:/callback"), None);
        assert_eq!(
            redirect_target("com.example.cli:/callback?x=1").as_deref(),
            Some("com.example.cli:")
        );
        assert_eq!(
            redirect_target("https://app.example.com/cb").as_deref(),
            Some("https://app.example.com")
        );
        for not_a_target in ["javascript:alert(1)", "data:text/html,x", "mailto:a@b.c"] {
            assert_eq!(redirect_target(not_a_target), None, "{not_a_target}");
        }
    }
}
