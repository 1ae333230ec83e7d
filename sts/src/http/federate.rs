//! Sign-in through an upstream OpenID provider: POST `/federate` (from the login page) sends
//! the person there; GET `/federate/callback` comes back with a code, which is exchanged and
//! checked before a session starts. The upstream `state` names an interaction, and the
//! callback serves only the browser that started it (RFC 9700 §4.7): a callback URL that an
//! attacker stopped at and sent to a victim signs nobody in. Failures are pages a person
//! understands; the detail goes to the log under the page's correlation id.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use signet_crds::snapshot::{OidcUpstream, ProviderSettings};

use super::interaction::{
    FORM_EXPIRED, Visit, expired_page, interaction_of, providers_for, query_param, see_other,
    submitted, unavailable_page,
};
use super::login::start_session;
use super::now;
use super::pages::error_page;
use crate::app::App;
use crate::federation::{self, Pending};
use crate::loaded::Loaded;

/// How long a person may take at the upstream.
const PENDING_SECS: i64 = 15 * 60;

fn callback_uri(loaded: &Loaded) -> String {
    format!(
        "{}/federate/callback",
        loaded.issuer().trim_end_matches('/')
    )
}

fn upstream_failed(loaded: &Loaded, title: &str, detail: &str) -> Response {
    error_page(
        Some(loaded),
        StatusCode::BAD_GATEWAY,
        &format!(
            "Signing in with {title} did not work. Please try again later, or choose another way to sign in."
        ),
        detail,
    )
}

/// The named upstream provider, if this interaction may use it.
fn upstream<'a>(
    loaded: &'a Loaded,
    interaction: &crate::signin::interaction::Interaction,
    name: &str,
) -> Option<(&'a str, &'a OidcUpstream)> {
    providers_for(loaded, interaction)
        .into_iter()
        .find(|p| p.name == name)
        .and_then(|p| match &p.settings {
            ProviderSettings::Oidc(upstream) => Some((
                p.display_name.as_deref().unwrap_or(p.name.as_str()),
                upstream.as_ref(),
            )),
            ProviderSettings::Static { .. } => None,
        })
}

/// POST `/federate`: off to the upstream.
pub async fn begin(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = now();
    let (form, loaded, store, interaction) =
        match submitted(&app, &headers, &body, now, "/federate", FORM_EXPIRED).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let name = form.get("idp").unwrap_or_default();
    let Some((title, upstream)) = upstream(&loaded, &interaction, name) else {
        return error_page(
            Some(&loaded),
            StatusCode::BAD_REQUEST,
            "That way of signing in is not available for this application.",
            &format!("identity provider {name} not offered"),
        );
    };
    let allow_private = loaded.snapshot.allow_private_network_targets;
    let metadata = match app
        .upstreams
        .metadata(&app.outbound, &upstream.issuer, allow_private, now)
        .await
    {
        Ok(metadata) => metadata,
        Err(error) => return upstream_failed(&loaded, title, &error.to_string()),
    };
    let state = crate::random::token();
    let pending = Pending {
        interaction: interaction.id.clone(),
        idp: name.to_owned(),
        nonce: crate::random::token(),
        verifier: crate::random::token(),
    };
    if let Err(error) = store.put(&state, &pending, now + PENDING_SECS, now).await {
        return unavailable_page(Some(&loaded), &error.to_string());
    }
    see_other(&federation::authorization_url(
        &metadata,
        upstream,
        &callback_uri(&loaded),
        &state,
        &pending,
    ))
}

/// GET `/federate/callback`: back from the upstream.
pub async fn callback(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = now();
    let Some(loaded) = app.loaded.load_full() else {
        return unavailable_page(None, "no snapshot loaded yet");
    };
    let store = app.store.load_full();
    let Some(state) = query_param(&query, "state") else {
        return expired_page(&loaded);
    };
    let pending = match store.get::<Pending>(&state, now).await {
        Ok(found) => found,
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    };
    let Some(pending) = pending else {
        return expired_page(&loaded);
    };
    // Another browser's callback is refused before the state is spent, so the browser that
    // started the sign-in can still finish it.
    let (loaded, store, interaction) =
        match interaction_of(&app, &headers, Some(pending.interaction.clone()), now).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    // Single-use: of two callbacks with one state, only the first gets past here.
    match store.take::<Pending>(&state, now).await {
        Ok(Some(_)) => {}
        Ok(None) => return expired_page(&loaded),
        Err(error) => return unavailable_page(Some(&loaded), &error.to_string()),
    }
    let Some((title, upstream)) = upstream(&loaded, &interaction, &pending.idp) else {
        return expired_page(&loaded);
    };
    if let Some(error) = query_param(&query, "error") {
        return error_page(
            Some(&loaded),
            StatusCode::FORBIDDEN,
            &format!("{title} did not sign you in. Go back to the application to try again."),
            &format!("upstream {} answered error={error}", pending.idp),
        );
    }
    let Some(code) = query_param(&query, "code") else {
        return upstream_failed(&loaded, title, "callback without code");
    };
    let allow_private = loaded.snapshot.allow_private_network_targets;
    let claims = async {
        let metadata = app
            .upstreams
            .metadata(&app.outbound, &upstream.issuer, allow_private, now)
            .await?;
        federation::exchange(
            &app.jwks,
            &app.outbound,
            &metadata,
            upstream,
            &code,
            &callback_uri(&loaded),
            &pending,
            allow_private,
            now,
        )
        .await
    };
    let claims = match claims.await {
        Ok(claims) => claims,
        Err(error) => return upstream_failed(&loaded, title, &error.to_string()),
    };
    let person = match federation::claims::map(upstream, &claims) {
        Ok(person) => person,
        Err(refused) => {
            return error_page(
                Some(&loaded),
                StatusCode::FORBIDDEN,
                &format!("You signed in with {title}, but {refused}."),
                &format!("upstream {} person refused: {refused:?}", pending.idp),
            );
        }
    };
    if let Err(error) = crate::signin::profile::save(&store, &person, now).await {
        return unavailable_page(Some(&loaded), &error.to_string());
    }
    let visit = Visit {
        loaded: &loaded,
        store: &store,
        headers: &headers,
        now,
    };
    start_session(visit, interaction, &person.sub, &pending.idp).await
}
