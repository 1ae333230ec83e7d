//! `/end_session` (RP-Initiated Logout 1.0): the session ends in the store, its cookie is
//! cleared, the clients that had it are told over the back channel, and the person returns to
//! a registered address or sees a signed-out page. Without a matching hint, the person
//! confirms first, so a link on another site cannot sign anyone out.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::App;
use super::form::Form;
use super::pages::{self, Brand, error_page};
use super::signin::{current_session, now, see_other, submitted, unavailable_page};
use crate::loaded::Loaded;
use crate::signin::interaction::{Interaction, LogoutRequest, Purpose};
use crate::signin::{logout, session};
use crate::store::{Kind, Records};

/// The confirmation page.
#[derive(Template)]
#[template(path = "logout.html")]
struct ConfirmPage<'a> {
    brand: Brand,
    interaction: &'a str,
    csrf: &'a str,
}

/// The signed-out page.
#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage {
    brand: Brand,
}

/// GET `/end_session`.
pub async fn end_session_get(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    end_session(&app, &headers, query.unwrap_or_default().as_bytes()).await
}

/// POST `/end_session`.
pub async fn end_session_post(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    end_session(&app, &headers, &body).await
}

async fn end_session(app: &Arc<App>, headers: &HeaderMap, params: &[u8]) -> Response {
    let Some(loaded) = app.loaded.load_full() else {
        return unavailable_page(None, "no snapshot loaded yet");
    };
    let now = now();
    let Ok(form) = Form::parse(params) else {
        return error_page(
            Some(&loaded),
            StatusCode::BAD_REQUEST,
            "The sign-out request was malformed.",
            "bad form",
        );
    };
    let store = app.store.load_full();
    let session = match current_session(&store, headers, now).await {
        Ok(session) => session,
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    let hint = form
        .get("id_token_hint")
        .filter(|h| !h.is_empty())
        .map(|h| crate::tokens::verify_own_id_token(&loaded, h));
    let checked = match logout::check(&loaded, &form, hint, session.as_ref().map(|(_, s)| s)) {
        Ok(checked) => checked,
        Err(message) => {
            return error_page(
                Some(&loaded),
                StatusCode::BAD_REQUEST,
                &message,
                "end_session refused",
            );
        }
    };
    if checked.confirm {
        let interaction =
            match Interaction::create(&store, Purpose::Logout(checked.request), now).await {
                Ok(interaction) => interaction,
                Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
            };
        return pages::page(
            StatusCode::OK,
            &ConfirmPage {
                brand: Brand::of(Some(&loaded)),
                interaction: &interaction.id,
                csrf: &interaction.csrf,
            },
            None,
        );
    }
    sign_out(app, &loaded, session, &checked.request, now).await
}

/// POST `/end_session/confirm`: the person confirmed.
pub async fn confirm(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = now();
    let (_, loaded, store, interaction) = match submitted(
        &app,
        &body,
        now,
        "/end_session/confirm",
        "This form has expired. Sign out again from the application.",
    )
    .await
    {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Purpose::Logout(request) = &interaction.purpose else {
        return super::signin::expired_page(&loaded);
    };
    let _ = interaction.finish(&store, now).await;
    let session = match current_session(&store, &headers, now).await {
        Ok(session) => session,
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    sign_out(&app, &loaded, session, request, now).await
}

/// Ends `session` (if any), tells its clients, clears the cookie, and answers.
async fn sign_out(
    app: &Arc<App>,
    loaded: &Arc<Loaded>,
    session: Option<(String, session::Session)>,
    request: &LogoutRequest,
    now: i64,
) -> Response {
    if let Some((cookie, session)) = &session {
        if let Err(error) = app.store.load().delete(Kind::Session, cookie, now).await {
            return unavailable_page(Some(loaded), &error.to_string());
        }
        tracing::info!(sub = %session.sub, "signed out");
        crate::backchannel::notify(app, loaded, session, now);
    }
    let mut response = match &request.post_logout_redirect_uri {
        Some(uri) => {
            let mut location = uri.clone();
            if let Some(state) = &request.state {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("state", state)
                    .finish();
                location.push(if uri.contains('?') { '&' } else { '?' });
                location.push_str(&query);
            }
            see_other(&location)
        }
        None => pages::page(
            StatusCode::OK,
            &SignedOutPage {
                brand: Brand::of(Some(loaded)),
            },
            None,
        ),
    };
    if let Ok(value) = HeaderValue::from_str(&session::clear_cookie(loaded.issuer())) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
