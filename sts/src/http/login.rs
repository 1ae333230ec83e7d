//! The login page and its form: the password check (throttled, on the password pool), and the
//! start of a session after any sign-in, password or upstream, which continues what the
//! interaction was for.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::authorize::{Progress, proceed};
use super::browser;
use super::interaction::{
    FORM_EXPIRED, Visit, client_address, client_name, current_session, expired_page,
    interaction_of, providers_for, query_param, see_other, submitted, unavailable_page,
};
use super::now;
use super::pages::{self, Brand, LoginPage};
use crate::app::App;
use crate::loaded::Loaded;
use crate::signin::flow::Done;
use crate::signin::interaction::{Interaction, Purpose};
use crate::signin::session::Session;
use crate::signin::throttle::{self, Verdict};

const WRONG_PASSWORD: &str = "The username or password is not right. Check them and try again.";
const TOO_MANY_FAILURES: &str =
    "Too many sign-ins have failed from your network. Please try again later.";
const POOL_FULL: &str = "Too many people are signing in right now. Please try again in a moment.";

/// Where the login page's forms may lead: the client's redirect origin (after a password
/// sign-in) and each offered upstream's authorization endpoint (after "Sign in with …").
/// Browsers apply `form-action` to the redirect that answers a form.
async fn login_form_targets(app: &App, loaded: &Loaded, interaction: &Interaction) -> Vec<String> {
    let mut targets: Vec<String> = interaction
        .authorization()
        .and_then(|r| pages::redirect_target(&r.redirect_uri))
        .into_iter()
        .collect();
    let now = now();
    for provider in providers_for(loaded, interaction) {
        let signet_crds::snapshot::ProviderSettings::Oidc(upstream) = &provider.settings else {
            continue;
        };
        let allow_private = loaded.snapshot.allow_private_network_targets;
        // Cached after the first fetch; an unreachable upstream still gets its issuer's origin.
        let endpoint = match app
            .upstreams
            .metadata(&app.outbound, &upstream.issuer, allow_private, now)
            .await
        {
            Ok(metadata) => metadata.authorization_endpoint.clone(),
            Err(_) => upstream.issuer.clone(),
        };
        targets.extend(pages::origin_of(&endpoint));
    }
    targets.sort();
    targets.dedup();
    targets
}

async fn login_form(
    app: &App,
    loaded: &Loaded,
    interaction: &Interaction,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let targets = login_form_targets(app, loaded, interaction).await;
    let providers = providers_for(loaded, interaction);
    let password = providers.iter().any(|p| {
        matches!(
            p.settings,
            signet_crds::snapshot::ProviderSettings::Static { .. }
        )
    });
    let upstreams = providers
        .iter()
        .filter(|p| matches!(p.settings, signet_crds::snapshot::ProviderSettings::Oidc(_)))
        .map(|p| pages::ProviderButton {
            name: p.name.clone(),
            title: p.display_name.clone().unwrap_or_else(|| p.name.clone()),
        })
        .collect();
    pages::page_with_targets(
        status,
        &LoginPage {
            brand: Brand::of(Some(loaded)),
            client_name: interaction.client_id().map(|id| client_name(loaded, id)),
            error,
            interaction: &interaction.id,
            csrf: &interaction.csrf,
            username,
            password,
            upstreams,
        },
        &targets,
    )
}

/// GET `/login?interaction=ID`.
pub async fn login_page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = now();
    match interaction_of(&app, &headers, query_param(&query, "interaction"), now).await {
        Ok((loaded, _, interaction)) => {
            let hint = interaction
                .authorization()
                .and_then(|r| r.login_hint.clone())
                .unwrap_or_default();
            login_form(&app, &loaded, &interaction, &hint, None, StatusCode::OK).await
        }
        Err(response) => response,
    }
}

/// POST `/login`: checks the CSRF token, counts the attempt (refused past an address's
/// budget, delayed by the username's failures), checks the password on the pool, starts a
/// session (always a new cookie value) and continues the authorization.
pub async fn login_submit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Response {
    let now = now();
    let (form, loaded, store, interaction) =
        match submitted(&app, &headers, &body, now, "/login", FORM_EXPIRED).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let username = form.get("username").unwrap_or_default().trim().to_owned();
    let password = form.get("password").unwrap_or_default();
    let source = client_address(&app, &headers, &extensions).to_string();
    let limits = app.login_limits;
    let (verdict, attempt) = match throttle::begin(&store, limits, &username, &source, now).await {
        Ok(begun) => begun,
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    let form_again = |error: &'static str, status: StatusCode| {
        login_form(&app, &loaded, &interaction, &username, Some(error), status)
    };
    let clean = match verdict {
        Verdict::Refuse(over) => {
            tracing::warn!(%source, ?over, "sign-in refused: too many failures");
            let mut response = form_again(TOO_MANY_FAILURES, StatusCode::TOO_MANY_REQUESTS).await;
            // The longest the count can still live (its window began at its first failure).
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(limits.window_secs));
            return response;
        }
        Verdict::Check { delay, clean } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            clean
        }
    };
    let user = loaded.users.by_username(&username);
    let matched = match app
        .passwords
        .check(user.map(|(_, u)| u.as_ref()), password, clean)
        .await
    {
        Ok(matched) => matched,
        Err(busy) => {
            tracing::warn!(error = %busy, %source, clean, "sign-in turned away");
            let _ = attempt.not_checked(&store, now).await;
            return form_again(POOL_FULL, StatusCode::SERVICE_UNAVAILABLE).await;
        }
    };
    let allowed = |idp: &str| {
        providers_for(&loaded, &interaction)
            .iter()
            .any(|p| p.name == idp)
    };
    let Some((idp, user)) = user.filter(|(idp, _)| matched && allowed(idp)) else {
        return form_again(WRONG_PASSWORD, StatusCode::UNAUTHORIZED).await;
    };
    if let Err(error) = attempt.succeeded(&store, now).await {
        return unavailable_page(Some(&loaded), &error.to_string());
    }
    let visit = Visit {
        loaded: &loaded,
        store: &store,
        headers: &headers,
        now,
    };
    start_session(visit, interaction, &user.sub, idp).await
}

/// A person proved who they are (password or upstream provider): starts a session under a
/// fresh cookie value (one planted before sign-in is worth nothing) and continues what the
/// interaction was for.
pub(super) async fn start_session(
    visit: Visit<'_>,
    interaction: Interaction,
    sub: &str,
    idp: &str,
) -> Response {
    let Visit {
        loaded,
        store,
        headers,
        now,
    } = visit;
    if let Ok(Some((old, _))) = current_session(loaded, store, headers, now).await {
        let _ = store.delete::<Session>(&old, now).await;
    }
    let cookie = crate::random::token();
    let session = Session {
        sid: crate::random::token(),
        sub: sub.to_owned(),
        auth_time: now,
        idp: idp.to_owned(),
        expires: now + loaded.snapshot.session_lifetime_secs as i64,
        clients: Vec::new(),
    };
    if let Err(error) = store.put(&cookie, &session, session.expires, now).await {
        return unavailable_page(Some(loaded), &error.to_string());
    }
    tracing::info!(sub = %session.sub, idp, "signed in");
    let response = match interaction.purpose.clone() {
        Purpose::Authorize(request) => {
            let done = Done {
                started: Some(interaction.started),
                consented: false,
            };
            let session = Some((cookie.clone(), session.clone()));
            let progress = Progress::In(Box::new(interaction), done);
            proceed(visit, request, session, progress).await
        }
        Purpose::Device { user_code, .. } => {
            let _ = interaction.finish(store, now).await;
            see_other(&format!(
                "/device?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("user_code", &user_code)
                    .finish()
            ))
        }
        Purpose::Logout(_) => expired_page(loaded),
    };
    let lifetime = loaded.snapshot.session_lifetime_secs as i64;
    browser::with_cookie(response, &loaded.cookies.set_session(&cookie, lifetime))
}
