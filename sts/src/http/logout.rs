//! `/end_session` (RP-Initiated Logout 1.0): the session ends in the store, its cookie is
//! cleared, the clients that had it are told over the back channel, and the person returns to
//! a registered address or sees a signed-out page. Without a matching hint, the person
//! confirms first, so a link on another site cannot sign anyone out.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::Response;

use super::browser::{self};
use super::interaction::{
    Visit, current_session, see_other, start_interaction, submitted, unavailable_page,
};
use super::now;
use super::pages::{self, Brand, error_page};
use super::params::QueryOrBody;
use crate::app::App;
use crate::form::Form;
use crate::loaded::Loaded;
use crate::signin::interaction::{LogoutRequest, Purpose};
use crate::signin::{logout, session};

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

/// `/end_session`, by GET or by POST.
pub async fn end_session(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    extensions: Extensions,
    QueryOrBody(params): QueryOrBody,
) -> Response {
    respond(&app, &headers, &extensions, &params).await
}

async fn respond(
    app: &Arc<App>,
    headers: &HeaderMap,
    extensions: &Extensions,
    params: &[u8],
) -> Response {
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
    let session = match current_session(&loaded, &store, headers, now).await {
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
        let source = super::interaction::client_address(app, headers, extensions);
        // The answer to the confirmation redirects there; browsers apply form-action to it.
        let target = checked
            .request
            .post_logout_redirect_uri
            .as_deref()
            .and_then(pages::redirect_target);
        let purpose = Purpose::Logout(checked.request);
        let visit = Visit {
            loaded: &loaded,
            store: &store,
            headers,
            now,
        };
        let (interaction, binding) =
            match start_interaction(visit, &app.interactions, source, purpose).await {
                Ok(started) => started,
                Err(refused) => return refused.page(&loaded),
            };
        return binding.set_on(pages::page(
            StatusCode::OK,
            &ConfirmPage {
                brand: Brand::of(Some(&loaded)),
                interaction: &interaction.id,
                csrf: &interaction.csrf,
            },
            target.as_deref(),
        ));
    }
    sign_out(app, &loaded, session, &checked.request, now).await
}

/// POST `/end_session/confirm`: the person confirmed.
pub async fn confirm(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = now();
    let (_, loaded, store, interaction) = match submitted(
        &app,
        &headers,
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
        return super::interaction::expired_page(&loaded);
    };
    let _ = interaction.finish(&store, now).await;
    let session = match current_session(&loaded, &store, &headers, now).await {
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
        if let Err(error) = app
            .store
            .load()
            .delete::<session::Session>(cookie, now)
            .await
        {
            return unavailable_page(Some(loaded), &error.to_string());
        }
        tracing::info!(sub = %session.sub, "signed out");
        crate::backchannel::notify(app, loaded, session, now);
    }
    let response = match &request.post_logout_redirect_uri {
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
    browser::with_cookie(response, &loaded.cookies.clear_session())
}
