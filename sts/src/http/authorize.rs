//! `/authorize` (GET and POST): the request is checked, then `signin::flow::decide` says what
//! comes next for this browser's session: the login or consent page of a new interaction
//! (bound to this browser), a code for the client, or an error for it.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::Response;

use super::interaction::{
    NotStarted, Visit, admitted, client_address, current_session, see_other, start_interaction,
    unavailable_page,
};
use super::now;
use super::pages::error_page;
use super::params::QueryOrBody;
use crate::app::App;
use crate::authorization_code::code;
use crate::authorization_code::request::{self, AuthorizationRequest, ErrorRedirect, Rejected};
use crate::form::Form;
use crate::loaded::Loaded;
use crate::signin::budget::Budget;
use crate::signin::flow::{self, Done, Step};
use crate::signin::interaction::{Interaction, Purpose};
use crate::signin::session::Session;
use crate::store::Unavailable;
use crate::tokens;

/// `/authorize`, by GET or by POST (OIDC Core §3.1.2.1).
pub async fn authorize(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    extensions: Extensions,
    QueryOrBody(params): QueryOrBody,
) -> Response {
    respond(&app, &headers, &extensions, &params).await
}

async fn respond(
    app: &App,
    headers: &HeaderMap,
    extensions: &Extensions,
    params: &[u8],
) -> Response {
    let Some(loaded) = app.loaded.load_full() else {
        return unavailable_page(None, "no snapshot loaded yet");
    };
    let now = now();
    let form = match Form::parse(params) {
        Ok(form) => form,
        Err(error) => {
            return error_page(
                Some(&loaded),
                StatusCode::BAD_REQUEST,
                "The application sent a malformed sign-in request.",
                &error.to_string(),
            );
        }
    };
    let request = match request::validate(&loaded, &form, |hint| {
        tokens::verify_own_id_token(&loaded, hint)
            .and_then(|claims| claims["sub"].as_str().map(str::to_owned))
    }) {
        Ok(request) => request,
        Err(Rejected::Page(message)) => {
            return error_page(Some(&loaded), StatusCode::BAD_REQUEST, &message, &message);
        }
        Err(Rejected::Redirect(error)) => return error_redirect(&loaded, &error),
    };
    let store = app.store.load_full();
    let session = match current_session(&loaded, &store, headers, now).await {
        Ok(session) => session,
        Err(error) => return redirect_unavailable(&loaded, &request, &error),
    };
    let visit = Visit {
        loaded: &loaded,
        store: &store,
        headers,
        now,
    };
    let progress = Progress::Fresh {
        budget: &app.interactions,
        source: client_address(app, headers, extensions),
    };
    proceed(visit, request, session, progress).await
}

/// How far an authorization request has come.
pub(super) enum Progress<'a> {
    /// Straight from `/authorize`: no interaction yet; one created is taken from `source`'s
    /// budget.
    Fresh {
        /// The budget of new interactions.
        budget: &'a Budget,
        /// Where the request comes from.
        source: IpAddr,
    },
    /// In its interaction, with what the person did there.
    In(Box<Interaction>, Done),
}

/// The next step for `request`: a page, a code, or an error for the client. An interaction
/// created here is bound to the browser of `headers`.
pub(super) async fn proceed(
    visit: Visit<'_>,
    request: AuthorizationRequest,
    session: Option<(String, Session)>,
    progress: Progress<'_>,
) -> Response {
    let Visit {
        loaded,
        store,
        headers: _,
        now,
    } = visit;
    let done = match &progress {
        Progress::Fresh { .. } => Done::default(),
        Progress::In(_, done) => *done,
    };
    let Some(client) = loaded.clients.get(&request.client_id) else {
        // Removed while the person was signing in.
        return error_page(
            Some(loaded),
            StatusCode::BAD_REQUEST,
            "The application is no longer registered.",
            "client removed during the interaction",
        );
    };
    let session = match admitted(loaded, store, &client.client_id, session, now).await {
        Ok(session) => session,
        Err(error) => return redirect_unavailable(loaded, &request, &error),
    };
    let remembered = match &session {
        Some((_, s)) if flow::needs_consent(client, &request) => {
            match code::consent_covers(
                store,
                &s.sub,
                client.client_id.as_str(),
                &request.scopes,
                now,
            )
            .await
            {
                Ok(covered) => covered,
                Err(error) => return redirect_unavailable(loaded, &request, &error),
            }
        }
        _ => false,
    };
    let step = flow::decide(
        client,
        &request,
        session.as_ref().map(|(_, s)| s),
        remembered,
        done,
        now,
    );
    let to_page = |path: &str, interaction: &Interaction| {
        see_other(&format!("/{path}?interaction={}", interaction.id))
    };
    match step {
        Step::Fail(error) => error_redirect(
            loaded,
            &ErrorRedirect {
                redirect_uri: request.redirect_uri.clone(),
                state: request.state.clone(),
                error,
                description: String::new(),
            },
        ),
        Step::Login | Step::Consent => {
            let page = if step == Step::Login {
                "login"
            } else {
                "consent"
            };
            match progress {
                Progress::In(interaction, _) => to_page(page, &interaction),
                Progress::Fresh { budget, source } => {
                    let purpose = Purpose::Authorize(request.clone());
                    match start_interaction(visit, budget, source, purpose).await {
                        Ok((interaction, binding)) => binding.set_on(to_page(page, &interaction)),
                        Err(NotStarted::Store(error)) => {
                            redirect_unavailable(loaded, &request, &error)
                        }
                        Err(refused) => refused.page(loaded),
                    }
                }
            }
        }
        Step::Issue => {
            let Some((cookie, session)) = session else {
                // decide() issues only with a session; answer sanely if that ever changes.
                return error_page(
                    Some(loaded),
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side.",
                    "issue without a session",
                );
            };
            match code::issue(loaded, store, &request, &cookie, session, now).await {
                Ok(code) => {
                    if let Progress::In(interaction, _) = progress {
                        // Best effort: it expires anyway.
                        let _ = interaction.finish(store, now).await;
                    }
                    redirect(
                        loaded,
                        &request.redirect_uri,
                        &[("code", &code)],
                        request.state.as_deref(),
                    )
                }
                Err(error) => redirect_unavailable(loaded, &request, &error),
            }
        }
    }
}

/// A redirect to the client with `params`, `state` and RFC 9207 `iss`.
pub(super) fn redirect(
    loaded: &Loaded,
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
) -> Response {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(params);
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    query.append_pair("iss", loaded.issuer());
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    see_other(&format!("{redirect_uri}{separator}{}", query.finish()))
}

pub(super) fn error_redirect(loaded: &Loaded, error: &ErrorRedirect) -> Response {
    let mut params = vec![("error", error.error)];
    if !error.description.is_empty() {
        params.push(("error_description", error.description.as_str()));
    }
    redirect(loaded, &error.redirect_uri, &params, error.state.as_deref())
}

pub(super) fn redirect_unavailable(
    loaded: &Loaded,
    request: &AuthorizationRequest,
    error: &Unavailable,
) -> Response {
    tracing::warn!(%error, "authorization failed: store unavailable");
    error_redirect(
        loaded,
        &ErrorRedirect {
            redirect_uri: request.redirect_uri.clone(),
            state: request.state.clone(),
            error: "temporarily_unavailable",
            description: String::new(),
        },
    )
}
