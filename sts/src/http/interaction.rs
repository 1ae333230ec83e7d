//! What every page and form of an interaction shares: the snapshot, the store and the
//! interaction a page names (only for the browser that started it), the session cookie's
//! session, the CSRF check of a form, and the pages for what is missing or expired.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::browser::{self, Binding};
use super::pages::{self, ScopeLine, error_page};
use crate::app::App;
use crate::form::Form;
use crate::loaded::Loaded;
use crate::signin::admission;
use crate::signin::budget::Budget;
use crate::signin::interaction::{self, Interaction, Purpose};
use crate::signin::session::Session;
use crate::signin::source_address::{budget_source, source_address};
use crate::store::{Store, Unavailable};

/// What a browser's request to a page brings along: the snapshot and store it is served with,
/// its headers (the cookies), and its time.
#[derive(Clone, Copy)]
pub(super) struct Visit<'a> {
    /// The snapshot.
    pub loaded: &'a Loaded,
    /// The operational store.
    pub store: &'a Store,
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// When.
    pub now: i64,
}

/// The name a person reads for the signed-in `session`: a static user's username, else the
/// subject.
pub(super) fn username(loaded: &Loaded, session: &Session) -> String {
    loaded
        .users
        .by_sub(&session.sub)
        .map(|(_, user)| user.username.clone())
        .unwrap_or_else(|| session.sub.clone())
}

/// Why no interaction was started.
pub(super) enum NotStarted {
    /// A browser's subresource request (an `<img>`, a `fetch`), not a navigation.
    NotNavigation,
    /// The source spent its budget of new interactions (`signin::budget`).
    OverBudget,
    /// The store is down.
    Store(Unavailable),
}

impl NotStarted {
    /// The page a person sees.
    pub fn page(&self, loaded: &Loaded) -> Response {
        match self {
            NotStarted::NotNavigation => error_page(
                Some(loaded),
                StatusCode::BAD_REQUEST,
                "Signing in works only when this page is opened in the browser, not inside another page.",
                "interaction asked for by a subresource request",
            ),
            NotStarted::OverBudget => error_page(
                Some(loaded),
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ins were started from your network in the last minute. Please wait a moment and try again.",
                "interaction budget of the source spent",
            ),
            NotStarted::Store(error) => unavailable_page(Some(loaded), &error.to_string()),
        }
    }
}

/// Whether the request may start a sign-in: a navigation (what a browser sends when the
/// person opens a page or a form answers), not a page's `<img>` or `fetch` (Fetch Metadata).
/// A browser marks its requests with `Sec-Fetch-Site`, which no page can set or remove; a
/// program need not (Node's fetch sends `Sec-Fetch-Mode: cors` alone), so only requests a
/// browser marked are held to the mode.
fn navigation(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("sec-fetch-site").is_none()
        || header("sec-fetch-mode")
            .is_none_or(|mode| mode == "navigate" || mode == "nested-navigate")
}

/// Starts an interaction for `purpose`, bound to the browser of the visit, taken from
/// `source`'s budget. Only a navigation starts one: otherwise a page the victim visits could
/// spend the victim's budget with image tags, and fill the store on the way.
pub(super) async fn start_interaction(
    visit: Visit<'_>,
    budget: &Budget,
    source: IpAddr,
    purpose: Purpose,
) -> Result<(Interaction, Binding), NotStarted> {
    if !navigation(visit.headers) {
        return Err(NotStarted::NotNavigation);
    }
    if !budget.take(source, visit.now * 1000) {
        return Err(NotStarted::OverBudget);
    }
    let binding = Binding::of(visit.loaded, visit.headers);
    let interaction = Interaction::create(visit.store, purpose, &binding.hash, visit.now)
        .await
        .map_err(NotStarted::Store)?;
    Ok((interaction, binding))
}

/// What the person sees when something on our side is missing or down.
pub(super) fn unavailable_page(loaded: Option<&Loaded>, detail: &str) -> Response {
    error_page(
        loaded,
        StatusCode::SERVICE_UNAVAILABLE,
        "Signing in is not possible right now. Please try again in a moment.",
        detail,
    )
}

pub(super) fn expired_page(loaded: &Loaded) -> Response {
    error_page(
        Some(loaded),
        StatusCode::BAD_REQUEST,
        "This sign-in took too long or was already finished. Go back to the application and start again.",
        "unknown or expired interaction",
    )
}

/// The session cookie's value and its live session.
pub(super) async fn current_session(
    loaded: &Loaded,
    store: &Store,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<(String, Session)>, Unavailable> {
    let Some(cookie) = browser::cookies(loaded, headers).session else {
        return Ok(None);
    };
    Ok(interaction::session(store, &cookie, now)
        .await?
        .map(|s| (cookie, s)))
}

/// `session`, if the person behind it may still get tokens for `client_id` through the
/// provider they signed in with (see `signin::admission`); otherwise none, so they sign in
/// again.
pub(super) async fn admitted(
    loaded: &Loaded,
    store: &Store,
    client_id: &str,
    session: Option<(String, Session)>,
    now: i64,
) -> Result<Option<(String, Session)>, Unavailable> {
    let (Some((cookie, s)), Some(client)) = (session, loaded.clients.get(client_id)) else {
        return Ok(None);
    };
    match admission::check(loaded, store, client, Some(&s.idp), &s.sub, now).await? {
        Ok(()) => Ok(Some((cookie, s))),
        Err(why) => {
            tracing::info!(client = client_id, reason = %why, "session does not serve this client: sign in again");
            Ok(None)
        }
    }
}

/// 303 to a page of ours.
pub(super) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    pages::security_headers(response.headers_mut());
    response
}

/// The parameter `name` of a page URL.
pub(super) fn query_param(query: &Option<String>, name: &str) -> Option<String> {
    let form = Form::parse(query.as_deref().unwrap_or_default().as_bytes()).ok()?;
    form.get(name).map(str::to_owned)
}

/// The client's display name, else its id.
pub(super) fn client_name<'a>(loaded: &'a Loaded, client_id: &'a str) -> &'a str {
    loaded
        .clients
        .get(client_id)
        .and_then(|c| c.display_name.as_deref())
        .unwrap_or(client_id)
}

/// The common start of every form post of an interaction: the form, the snapshot, the store
/// and the interaction it names, started by this browser, with its CSRF token checked.
/// `expired` is what the person reads when the token is missing or wrong; `endpoint` names
/// the form in the log.
pub(super) async fn submitted(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    endpoint: &str,
    expired: &str,
) -> Result<(Form, Arc<Loaded>, Arc<Store>, Interaction), Response> {
    let Ok(form) = Form::parse(body) else {
        return Err(error_page(
            app.loaded.load_full().as_deref(),
            StatusCode::BAD_REQUEST,
            "The form was malformed.",
            "bad form",
        ));
    };
    let (loaded, store, interaction) = interaction_of(
        app,
        headers,
        form.get("interaction").map(str::to_owned),
        now,
    )
    .await?;
    if !interaction.csrf_matches(form.get("csrf").unwrap_or_default()) {
        return Err(error_page(
            Some(&loaded),
            StatusCode::FORBIDDEN,
            expired,
            &format!("CSRF token missing or wrong on {endpoint}"),
        ));
    }
    Ok((form, loaded, store, interaction))
}

/// The source a request counts against in the budgets: where it comes from, an IPv6 address
/// as its /64 (see `signin::source_address`).
pub(super) fn client_address(app: &App, headers: &HeaderMap, extensions: &Extensions) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    budget_source(source_address(peer, forwarded, &app.trusted_proxies))
}

/// What a person reads when an interaction's form comes back without its CSRF token.
pub(super) const FORM_EXPIRED: &str =
    "This form has expired. Go back to the application and start again.";

/// Loads the snapshot and the interaction named by a page's parameter, if the browser of
/// `headers` started it.
pub(super) async fn interaction_of(
    app: &App,
    headers: &HeaderMap,
    id: Option<String>,
    now: i64,
) -> Result<(Arc<Loaded>, Arc<Store>, Interaction), Response> {
    let Some(loaded) = app.loaded.load_full() else {
        return Err(unavailable_page(None, "no snapshot loaded yet"));
    };
    let store = app.store.load_full();
    let Some(id) = id else {
        return Err(expired_page(&loaded));
    };
    match Interaction::load(&store, &id, now).await {
        Ok(Some(interaction)) if !browser::started(&loaded, headers, &interaction) => {
            Err(browser::other_browser_page(&loaded, &interaction))
        }
        Ok(Some(interaction)) => Ok((loaded, store, interaction)),
        Ok(None) => Err(expired_page(&loaded)),
        Err(error) => Err(unavailable_page(Some(&loaded), &error.to_string())),
    }
}

/// The identity providers a person may use for this interaction: the client's
/// `allowedIdentityProviders`, or all of the TokenService's.
pub(super) fn providers_for<'a>(
    loaded: &'a Loaded,
    interaction: &Interaction,
) -> Vec<&'a signet_crds::snapshot::IdentityProvider> {
    let allowed = interaction
        .client_id()
        .and_then(|id| loaded.clients.get(id))
        .map(|c| c.allowed_identity_providers.as_slice())
        .unwrap_or_default();
    loaded
        .snapshot
        .identity_providers
        .iter()
        .filter(|p| allowed.is_empty() || allowed.contains(&p.name))
        .collect()
}

/// The scopes as a person reads them.
pub(super) fn scope_lines(loaded: &Loaded, scopes: &[String]) -> Vec<ScopeLine> {
    scopes
        .iter()
        .map(|name| {
            let builtin = |title: &str, text: &str| ScopeLine {
                title: title.into(),
                description: Some(text.into()),
            };
            match name.as_str() {
                "openid" => builtin("Your identity", "Know who you are when you sign in."),
                "profile" => builtin("Your profile", "Your name and username."),
                "email" => builtin("Your email address", "Your email address and whether it is verified."),
                "groups" => builtin("Your groups", "The groups you belong to."),
                "offline_access" => builtin(
                    "Stay signed in",
                    "Keep access when you are not using the application, until you sign out or revoke it.",
                ),
                other => {
                    let scope = loaded.scopes.get(other);
                    ScopeLine {
                        title: scope
                            .and_then(|s| s.display_name.clone())
                            .unwrap_or_else(|| other.to_owned()),
                        description: scope.and_then(|s| s.description.clone()),
                    }
                }
            }
        })
        .collect()
}
