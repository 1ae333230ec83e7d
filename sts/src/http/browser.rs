//! The issuer's cookies on requests and responses (names and attributes in
//! `signin::cookies`): which session and binding a request carries, the binding a new
//! interaction is given, and the page a browser sees for an interaction it did not start.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::pages::error_page;
use crate::loaded::Loaded;
use crate::signin::cookies::{self, Browser};
use crate::signin::interaction::{Interaction, Purpose};

/// The issuer's cookies in `headers`.
pub(super) fn cookies(loaded: &Loaded, headers: &HeaderMap) -> Browser {
    let values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    loaded.cookies.read(values)
}

/// What binds a new interaction to the browser of this request: the browser's binding value
/// when it has one (so interactions in several tabs all stay valid), else a fresh one.
pub(super) struct Binding {
    /// What the interaction stores.
    pub hash: String,
    /// The `Set-Cookie` that gives (or renews) the browser its value.
    set_cookie: String,
}

impl Binding {
    /// The binding for the browser of `headers`.
    pub fn of(loaded: &Loaded, headers: &HeaderMap) -> Self {
        let value = cookies(loaded, headers)
            .binding
            .unwrap_or_else(crate::random::token);
        Self {
            hash: cookies::binding_hash(&value),
            set_cookie: loaded.cookies.set_binding(&value),
        }
    }

    /// `response`, giving the browser its binding cookie.
    pub fn set_on(&self, response: Response) -> Response {
        with_cookie(response, &self.set_cookie)
    }
}

/// `response` with one more `Set-Cookie`.
pub(super) fn with_cookie(mut response: Response, set_cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(set_cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Whether the browser of `headers` started `interaction`.
pub(super) fn started(loaded: &Loaded, headers: &HeaderMap, interaction: &Interaction) -> bool {
    interaction.bound_to(cookies(loaded, headers).binding.as_deref())
}

/// What a browser sees for an interaction another browser started (or one whose binding
/// cookie it lost): nothing of the interaction is shown or changed.
pub(super) fn other_browser_page(loaded: &Loaded, interaction: &Interaction) -> Response {
    let message = match interaction.purpose {
        Purpose::Logout(_) => {
            "This sign-out was started in another browser. Sign out again from the application."
        }
        Purpose::Authorize(_) | Purpose::Device { .. } => {
            "This sign-in was started in another browser. Go back to the application and start again in this browser."
        }
    };
    error_page(
        Some(loaded),
        StatusCode::FORBIDDEN,
        message,
        "interaction not bound to this browser",
    )
}
