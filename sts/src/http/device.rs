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

use super::App;
use super::error::OAuthError;
use super::form::Form;
use super::pages::{self, Brand, ScopeLine};
use super::signin::{
    client_address, client_name, current_session, now, query_param, scope_lines, see_other,
    submitted, unavailable_page,
};
use crate::device::{self, DeviceRecord, Status, TOMBSTONE_SECS};
use crate::grants::user_tokens::{Grant, unavailable};
use crate::loaded::Loaded;
use crate::signin::interaction::{Interaction, Purpose};
use crate::signin::session::Session;
use crate::store::{Kind, Records, Store, Unavailable};

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
    let client = crate::client_auth::authenticate(&loaded, &app, &headers, &form, now).await?;
    if !client.grant_types.contains(&GrantType::DeviceCode) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the device flow",
        ));
    }
    let scopes =
        crate::signin::request::scopes(&loaded, client, form.get("scope").or(Some("openid")))
            .map_err(OAuthError::invalid_scope)?;
    let device_code = crate::tokens::random_token();
    let user_code = device::user_code();
    let canonical = device::normalize(&user_code).expect("generated codes are valid");
    let expires = now + client.lifetimes.device_code as i64;
    let record = DeviceRecord {
        client_id: client.client_id.clone(),
        scopes,
        user_code: canonical.clone(),
        interval: device::INTERVAL,
        last_poll: None,
        expires,
        status: Status::Pending,
    };
    let store = app.store.load();
    let keep = expires + TOMBSTONE_SECS;
    store
        .put(Kind::Device, &device_code, &json!(record), keep, now)
        .await
        .map_err(unavailable)?;
    store
        .put(
            Kind::UserCode,
            &canonical,
            &json!(device_code),
            expires,
            now,
        )
        .await
        .map_err(unavailable)?;
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
        "interval": device::INTERVAL,
    }))
    .into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// The pending device record for a typed user code, with its device code.
async fn pending(
    store: &Store,
    typed: &str,
    now: i64,
) -> Result<Option<(String, DeviceRecord)>, crate::store::Unavailable> {
    let Some(canonical) = device::normalize(typed) else {
        return Ok(None);
    };
    let Some(device_code) = store
        .get(Kind::UserCode, &canonical, now)
        .await?
        .and_then(|v| v.as_str().map(str::to_owned))
    else {
        return Ok(None);
    };
    Ok(store
        .get(Kind::Device, &device_code, now)
        .await?
        .and_then(|v| serde_json::from_value::<DeviceRecord>(v).ok())
        .filter(|r| r.status == Status::Pending && r.expires > now)
        .map(|r| (device_code, r)))
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
    // Guessing is slowed per source address: each wrong code adds delay (RFC 8628 §5.1).
    let keys = [format!(
        "device:{}",
        client_address(&app, &headers, &extensions)
    )];
    let delay = app.throttle.delay(&keys, now);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (_, record) = match pending(&store, &typed, now).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            app.throttle.failed(&keys, now);
            return entry(
                &loaded,
                &typed,
                Some("That code is not right or has expired. Check the code on your device."),
                StatusCode::BAD_REQUEST,
            );
        }
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    let interaction = match Interaction::create(
        &store,
        Purpose::Device {
            user_code: record.user_code.clone(),
            client_id: record.client_id.clone(),
        },
        now,
    )
    .await
    {
        Ok(interaction) => interaction,
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    let session = match session_for(&loaded, &store, &headers, &record.client_id, now).await {
        Ok(Some((_, session))) => session,
        Ok(None) => return see_other(&format!("/login?interaction={}", interaction.id)),
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    let username = loaded
        .users
        .by_sub(&session.sub)
        .map(|(_, u)| u)
        .map(|u| u.username.clone())
        .unwrap_or_else(|| session.sub.clone());
    let shown = format!("{}-{}", &record.user_code[..4], &record.user_code[4..]);
    pages::page(
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
    )
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
    let session = current_session(store, headers, now).await?;
    super::signin::admitted(loaded, store, client_id, session, now).await
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
        return super::signin::expired_page(&loaded);
    };
    let session = match session_for(&loaded, &store, &headers, client_id, now).await {
        Ok(Some((_, session))) => session,
        Ok(None) => return see_other(&format!("/login?interaction={}", interaction.id)),
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    let (device_code, mut record) = match pending(&store, user_code, now).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return entry(
                &loaded,
                "",
                Some("That code has expired or was already used. Start again on your device."),
                StatusCode::BAD_REQUEST,
            );
        }
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    let allowed = form.get("decision") == Some("allow");
    record.status = if allowed {
        Status::Approved {
            grant: Grant {
                client_id: record.client_id.clone(),
                sub: session.sub.clone(),
                scopes: record.scopes.clone(),
                auth_time: session.auth_time,
                sid: Some(session.sid.clone()),
                idp: Some(session.idp.clone()),
            },
        }
    } else {
        Status::Denied
    };
    let keep = record.expires + TOMBSTONE_SECS;
    let saved = async {
        store
            .put(Kind::Device, &device_code, &json!(record), keep, now)
            .await?;
        // The user code is spent either way.
        store.delete(Kind::UserCode, &record.user_code, now).await?;
        interaction.finish(&store, now).await
    };
    if let Err(error) = saved.await {
        return unavailable_page(Some(&loaded), &error.to_string());
    }
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
