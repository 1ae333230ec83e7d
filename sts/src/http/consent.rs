//! The consent page and its answer: allow (remembered for the TokenService's consent
//! lifetime) continues to a code, deny answers the client `access_denied`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::authorize::{Progress, error_redirect, proceed, redirect_unavailable};
use super::interaction::{
    FORM_EXPIRED, Visit, client_name, current_session, expired_page, interaction_of, query_param,
    scope_lines, see_other, submitted, unavailable_page, username,
};
use super::now;
use super::pages::{self, Brand, ConsentPage};
use crate::app::App;
use crate::authorization_code::code;
use crate::authorization_code::request::ErrorRedirect;
use crate::signin::flow::Done;

/// GET `/consent?interaction=ID`.
pub async fn consent_page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = now();
    let (loaded, store, interaction) =
        match interaction_of(&app, &headers, query_param(&query, "interaction"), now).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let Some(request) = interaction.authorization() else {
        return expired_page(&loaded);
    };
    let session = match current_session(&loaded, &store, &headers, now).await {
        Ok(Some((_, session))) => session,
        Ok(None) => return see_other(&format!("/login?interaction={}", interaction.id)),
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    let username = username(&loaded, &session);
    pages::page(
        StatusCode::OK,
        &ConsentPage {
            brand: Brand::of(Some(&loaded)),
            client_name: client_name(&loaded, &request.client_id),
            username: &username,
            scopes: scope_lines(&loaded, &request.scopes),
            interaction: &interaction.id,
            csrf: &interaction.csrf,
        },
        pages::redirect_target(&request.redirect_uri).as_deref(),
    )
}

/// POST `/consent`: allow (remembered for the TokenService's consent lifetime) or deny
/// (`access_denied` to the client).
pub async fn consent_submit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = now();
    let (form, loaded, store, interaction) =
        match submitted(&app, &headers, &body, now, "/consent", FORM_EXPIRED).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let session = match current_session(&loaded, &store, &headers, now).await {
        Ok(Some(session)) => session,
        Ok(None) => return see_other(&format!("/login?interaction={}", interaction.id)),
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    let Some(request) = interaction.authorization().cloned() else {
        return expired_page(&loaded);
    };
    if form.get("decision") != Some("allow") {
        let _ = interaction.finish(&store, now).await;
        return error_redirect(
            &loaded,
            &ErrorRedirect {
                redirect_uri: request.redirect_uri.clone(),
                state: request.state.clone(),
                error: "access_denied",
                description: "the person declined".into(),
            },
        );
    }
    let lifetime = loaded.snapshot.consent_lifetime_secs as i64;
    if let Err(error) =
        code::remember_consent(&store, &session.1.sub, &request, lifetime, now).await
    {
        return redirect_unavailable(&loaded, &request, &error);
    }
    let done = Done {
        started: Some(interaction.started),
        consented: true,
    };
    let progress = Progress::In(Box::new(interaction), done);
    let visit = Visit {
        loaded: &loaded,
        store: &store,
        headers: &headers,
        now,
    };
    proceed(visit, request, Some(session), progress).await
}
