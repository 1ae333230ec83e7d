//! The device flow's HTTP side (RFC 8628): `/device_authorization` for the device, and the
//! verification page where a person enters (or confirms) the user code, signs in if needed,
//! and allows or denies. Wrong codes slow down further guesses from the same address (§5.1).

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use signet_crds::v1alpha1::GrantType;

use super::interaction::{
    Visit, client_address, client_name, current_session, query_param, scope_lines, see_other,
    start_interaction, submitted, unavailable_page, username,
};
use super::now;
use super::pages::{self, Brand, ScopeLine};
use crate::app::App;
use crate::device::verification;
use crate::error::OAuthError;
use crate::form::Form;
use crate::grants::user_tokens::unavailable;
use crate::loaded::Loaded;
use crate::signin::interaction::Purpose;
use crate::signin::session::Session;
use crate::signin::throttle;
use crate::store::{Store, Unavailable};

#[derive(Template)]
#[template(path = "device_entry.html")]
struct EntryPage<'a> {
    brand: Brand,
    error: Option<&'a str>,
    user_code: &'a str,
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
struct ConfirmPage<'a> {
    brand: Brand,
    client_name: &'a str,
    username: &'a str,
    user_code: &'a str,
    scopes: Vec<ScopeLine>,
    interaction: &'a str,
    csrf: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    brand: Brand,
    heading: &'a str,
    message: &'a str,
}

/// POST `/device_authorization` (RFC 8628 §3.1, §3.2).
pub async fn device_authorization(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let loaded = app
        .loaded
        .load_full()
        .ok_or_else(|| OAuthError::temporarily_unavailable("no snapshot loaded yet"))?;
    let now = now();
    let form = Form::parse(&body).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let client = crate::client_auth::authenticate(
        &loaded,
        &app,
        super::endpoints::authorization(&headers),
        &form,
        now,
    )
    .await?;
    if !client.grant_types.contains(&GrantType::DeviceCode) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the device flow",
        ));
    }
    let scopes = crate::authorization_code::request::scopes(
        &loaded,
        client,
        form.get("scope").or(Some("openid")),
    )
    .map_err(OAuthError::invalid_scope)?;
    let store = app.store.load();
    let started = verification::start(&store, client, scopes, now)
        .await
        .map_err(unavailable)?;
    let (device_code, user_code) = (started.device_code, started.user_code);
    let base = loaded.issuer().trim_end_matches('/');
    let complete = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("user_code", &user_code)
        .finish();
    let mut response = axum::Json(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": format!("{base}/device"),
        "verification_uri_complete": format!("{base}/device?{complete}"),
        "expires_in": client.lifetimes.device_code,
        "interval": crate::device::codes::INTERVAL,
    }))
    .into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

fn entry(loaded: &Loaded, user_code: &str, error: Option<&str>, status: StatusCode) -> Response {
    pages::page(
        status,
        &EntryPage {
            brand: Brand::of(Some(loaded)),
            error,
            user_code,
        },
        None,
    )
}

fn message(loaded: &Loaded, heading: &str, text: &str) -> Response {
    pages::page(
        StatusCode::OK,
        &MessagePage {
            brand: Brand::of(Some(loaded)),
            heading,
            message: text,
        },
        None,
    )
}

/// GET `/device` (code entry) and `/device?user_code=...` (confirmation, after sign-in).
pub async fn verification_page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    extensions: Extensions,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(loaded) = app.loaded.load_full() else {
        return unavailable_page(None, "no snapshot loaded yet");
    };
    let now = now();
    let Some(typed) = query_param(&query, "user_code").filter(|c| !c.is_empty()) else {
        return entry(&loaded, "", None, StatusCode::OK);
    };
    let store = app.store.load_full();
    // Guessing is slowed per source address, counted before the lookup so parallel guesses
    // each see the ones before them (RFC 8628 §5.1).
    let source = client_address(&app, &headers, &extensions);
    let window = app.login_limits.window_secs;
    match throttle::device_guess(&store, &source.to_string(), now, window).await {
        Ok(delay) if !delay.is_zero() => tokio::time::sleep(delay).await,
        Ok(_) => {}
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    }
    let record = match verification::pending(&store, &typed, now).await {
        Ok(Some((_, read))) => Ok(Some(read.record)),
        Ok(None) => Ok(None),
        Err(error) => Err(error),
    };
    let record = match record {
        Ok(Some(record)) => record,
        Ok(None) => {
            return entry(
                &loaded,
                &typed,
                Some("That code is not right or has expired. Check the code on your device."),
                StatusCode::BAD_REQUEST,
            );
        }
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    if let Err(error) = throttle::device_guess_right(&store, &source.to_string(), now, window).await
    {
        return unavailable_page(Some(&loaded), &error.to_string());
    }
    let purpose = Purpose::Device {
        user_code: record.user_code.clone(),
        client_id: record.client_id.clone(),
    };
    let visit = Visit {
        loaded: &loaded,
        store: &store,
        headers: &headers,
        now,
    };
    let (interaction, binding) =
        match start_interaction(visit, &app.interactions, source, purpose).await {
            Ok(started) => started,
            Err(refused) => return refused.page(&loaded),
        };
    let session = match session_for(&loaded, &store, &headers, &record.client_id, now).await {
        Ok(Some((_, session))) => session,
        Ok(None) => {
            return binding.set_on(see_other(&format!("/login?interaction={}", interaction.id)));
        }
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    let username = username(&loaded, &session);
    let shown = format!("{}-{}", &record.user_code[..4], &record.user_code[4..]);
    let page = pages::page(
        StatusCode::OK,
        &ConfirmPage {
            brand: Brand::of(Some(&loaded)),
            client_name: client_name(&loaded, &record.client_id),
            username: &username,
            user_code: &shown,
            scopes: scope_lines(&loaded, &record.scopes),
            interaction: &interaction.id,
            csrf: &interaction.csrf,
        },
        None,
    );
    binding.set_on(page)
}

/// The browser's session, if it may approve a device of `client_id` (see
/// `signin::admission`).
async fn session_for(
    loaded: &Loaded,
    store: &Store,
    headers: &HeaderMap,
    client_id: &str,
    now: i64,
) -> Result<Option<(String, Session)>, Unavailable> {
    let session = current_session(loaded, store, headers, now).await?;
    super::interaction::admitted(loaded, store, client_id, session, now).await
}

/// POST `/device`: the person allows or denies.
pub async fn verification_submit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = now();
    let (form, loaded, store, interaction) = match submitted(
        &app,
        &headers,
        &body,
        now,
        "/device",
        "This form has expired. Enter the code again.",
    )
    .await
    {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Purpose::Device {
        user_code,
        client_id,
    } = &interaction.purpose
    else {
        return super::interaction::expired_page(&loaded);
    };
    let session = match session_for(&loaded, &store, &headers, client_id, now).await {
        Ok(Some((_, session))) => session,
        Ok(None) => return see_other(&format!("/login?interaction={}", interaction.id)),
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    let allowed = form.get("decision") == Some("allow");
    let approval = allowed.then_some(&session);
    match verification::answer(&store, user_code, approval, now).await {
        Ok(true) => {}
        Ok(false) => {
            return entry(
                &loaded,
                "",
                Some("That code has expired or was already used. Start again on your device."),
                StatusCode::BAD_REQUEST,
            );
        }
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    }
    // Best effort: it expires anyway.
    let _ = interaction.finish(&store, now).await;
    if allowed {
        message(
            &loaded,
            "Device connected",
            "You can return to your device now.",
        )
    } else {
        message(
            &loaded,
            "Request denied",
            "The device was not given access. You can close this window.",
        )
    }
}
