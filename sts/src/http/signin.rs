//! The browser side of signing in: `/authorize`, the login page and the consent page. Each
//! step loads what it needs (snapshot, interaction, session), lets `signin::flow::decide` say
//! what comes next, and answers with a page or a redirect.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::App;
use super::form::Form;
use super::pages::{self, Brand, ConsentPage, LoginPage, ScopeLine, error_page};
use crate::grants::authorization_code::CodeRecord;
use crate::grants::user_tokens::Grant;
use crate::loaded::Loaded;
use crate::signin::admission;
use crate::signin::flow::{self, Done, Step};
use crate::signin::interaction::{self, Interaction, Purpose};
use crate::signin::request::{self, AuthorizationRequest, ErrorRedirect, Rejected};
use crate::signin::session::{self, Session};
use crate::signin::source_address::source_address;
use crate::store::{Kind, Records, Store, Unavailable};
use crate::tokens;

pub(super) fn now() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
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

/// `/authorize` by GET.
pub async fn authorize_get(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    authorize(&app, &headers, query.unwrap_or_default().as_bytes()).await
}

/// `/authorize` by POST (OIDC Core §3.1.2.1).
pub async fn authorize_post(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorize(&app, &headers, &body).await
}

async fn authorize(app: &App, headers: &HeaderMap, params: &[u8]) -> Response {
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
    let session = match current_session(&store, headers, now).await {
        Ok(session) => session,
        Err(error) => return redirect_unavailable(&loaded, &request, &error),
    };
    proceed(
        &loaded,
        &store,
        request,
        session,
        None,
        Done::default(),
        now,
    )
    .await
}

/// The session cookie's value and its live session.
pub(super) async fn current_session(
    store: &Store,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<(String, Session)>, Unavailable> {
    let Some(cookie) = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::from_cookie_header)
    else {
        return Ok(None);
    };
    Ok(interaction::session(store, cookie, now)
        .await?
        .map(|s| (cookie.to_owned(), s)))
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

/// The next step for `request`: a page, a code, or an error for the client.
async fn proceed(
    loaded: &Loaded,
    store: &Store,
    request: AuthorizationRequest,
    session: Option<(String, Session)>,
    interaction: Option<Interaction>,
    done: Done,
    now: i64,
) -> Response {
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
            match remembered_consent(
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
            let interaction = match interaction {
                Some(interaction) => interaction,
                None => match Interaction::create(store, Purpose::Authorize(request.clone()), now)
                    .await
                {
                    Ok(interaction) => interaction,
                    Err(error) => return redirect_unavailable(loaded, &request, &error),
                },
            };
            to_page(
                if step == Step::Login {
                    "login"
                } else {
                    "consent"
                },
                &interaction,
            )
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
            match issue_code(loaded, store, &request, &cookie, session, now).await {
                Ok(code) => {
                    if let Some(interaction) = interaction {
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

/// Stores a code for the request and notes the client in the session (for logout).
async fn issue_code(
    loaded: &Loaded,
    store: &Store,
    request: &AuthorizationRequest,
    cookie: &str,
    mut session: Session,
    now: i64,
) -> Result<String, Unavailable> {
    let client = &loaded.clients[&request.client_id];
    let record = CodeRecord {
        grant: Grant {
            client_id: client.client_id.clone(),
            sub: session.sub.clone(),
            scopes: request.scopes.clone(),
            auth_time: session.auth_time,
            sid: Some(session.sid.clone()),
            idp: Some(session.idp.clone()),
        },
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
    };
    let code = tokens::random_token();
    let expires = now + client.lifetimes.authorization_code as i64;
    store
        .put(Kind::Code, &code, &json!(record), expires, now)
        .await?;
    if !session.clients.contains(&client.client_id) {
        session.clients.push(client.client_id.clone());
        store
            .put(Kind::Session, cookie, &json!(session), session.expires, now)
            .await?;
    }
    Ok(code)
}

async fn remembered_consent(
    store: &Store,
    sub: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<bool, Unavailable> {
    let granted = store
        .get(Kind::Consent, &interaction::consent_id(sub, client_id), now)
        .await?;
    let granted: Vec<String> = granted
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    Ok(scopes.iter().all(|s| granted.contains(s)))
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

fn error_redirect(loaded: &Loaded, error: &ErrorRedirect) -> Response {
    let mut params = vec![("error", error.error)];
    if !error.description.is_empty() {
        params.push(("error_description", error.description.as_str()));
    }
    redirect(loaded, &error.redirect_uri, &params, error.state.as_deref())
}

fn redirect_unavailable(
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
/// and the interaction it names, with its CSRF token checked. `expired` is what the person
/// reads when the token is missing or wrong; `endpoint` names the form in the log.
pub(super) async fn submitted(
    app: &App,
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
    let (loaded, store, interaction) =
        interaction_of(app, form.get("interaction").map(str::to_owned), now).await?;
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

/// Where a request comes from, for throttling (see `signin::source_address`).
pub(super) fn client_address(app: &App, headers: &HeaderMap, extensions: &Extensions) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    source_address(peer, forwarded, &app.trusted_proxies)
}

/// What a person reads when an interaction's form comes back without its CSRF token.
pub(super) const FORM_EXPIRED: &str =
    "This form has expired. Go back to the application and start again.";

/// Loads the snapshot and the interaction named by a page's parameter.
pub(super) async fn interaction_of(
    app: &App,
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

/// Where the login page's forms may lead: the client's redirect origin (after a password
/// sign-in) and each offered upstream's authorization endpoint (after "Sign in with …").
/// Browsers apply `form-action` to the redirect that answers a form.
async fn login_form_targets(app: &App, loaded: &Loaded, interaction: &Interaction) -> Vec<String> {
    let mut targets: Vec<String> = interaction
        .authorization()
        .and_then(|r| pages::origin_of(&r.redirect_uri))
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
pub async fn login_page(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    let now = now();
    match interaction_of(&app, query_param(&query, "interaction"), now).await {
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

/// POST `/login`: checks the CSRF token, throttles, checks the password on the pool, starts
/// a session (always a new cookie value) and continues the authorization.
pub async fn login_submit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Response {
    let now = now();
    let (form, loaded, store, interaction) =
        match submitted(&app, &body, now, "/login", FORM_EXPIRED).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let username = form.get("username").unwrap_or_default().trim().to_owned();
    let password = form.get("password").unwrap_or_default();
    let source = client_address(&app, &headers, &extensions);
    let keys = [format!("user:{username}"), format!("ip:{source}")];
    let delay = app.throttle.delay(&keys, now);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let user = loaded.users.by_username(&username);
    let matched = match app
        .passwords
        .check(user.map(|(_, u)| u.as_ref()), password)
        .await
    {
        Ok(matched) => matched,
        Err(busy) => {
            tracing::warn!(error = %busy, "sign-in turned away");
            return login_form(
                &app,
                &loaded,
                &interaction,
                &username,
                Some("Too many people are signing in right now. Please try again in a moment."),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await;
        }
    };
    let allowed = |idp: &str| {
        providers_for(&loaded, &interaction)
            .iter()
            .any(|p| p.name == idp)
    };
    let Some((idp, user)) = user.filter(|(idp, _)| matched && allowed(idp)) else {
        app.throttle.failed(&keys, now);
        return login_form(
            &app,
            &loaded,
            &interaction,
            &username,
            Some("The username or password is not right. Check them and try again."),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    };
    app.throttle.succeeded(&keys[0]);
    start_session(&loaded, &store, &headers, interaction, &user.sub, idp, now).await
}

/// A person proved who they are (password or upstream provider): starts a session under a
/// fresh cookie value (one planted before sign-in is worth nothing) and continues what the
/// interaction was for.
pub(super) async fn start_session(
    loaded: &Loaded,
    store: &Store,
    headers: &HeaderMap,
    interaction: Interaction,
    sub: &str,
    idp: &str,
    now: i64,
) -> Response {
    if let Ok(Some((old, _))) = current_session(store, headers, now).await {
        let _ = store.delete(Kind::Session, &old, now).await;
    }
    let cookie = tokens::random_token();
    let session = Session {
        sid: tokens::random_token(),
        sub: sub.to_owned(),
        auth_time: now,
        idp: idp.to_owned(),
        expires: now + loaded.snapshot.session_lifetime_secs as i64,
        clients: Vec::new(),
    };
    if let Err(error) = store
        .put(
            Kind::Session,
            &cookie,
            &json!(session),
            session.expires,
            now,
        )
        .await
    {
        return unavailable_page(Some(loaded), &error.to_string());
    }
    tracing::info!(sub = %session.sub, idp, "signed in");
    let mut response = match interaction.purpose.clone() {
        Purpose::Authorize(request) => {
            let done = Done {
                started: Some(interaction.started),
                consented: false,
            };
            let session = Some((cookie.clone(), session.clone()));
            proceed(
                loaded,
                store,
                request,
                session,
                Some(interaction),
                done,
                now,
            )
            .await
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
    let set_cookie = session::set_cookie(
        &cookie,
        loaded.snapshot.session_lifetime_secs as i64,
        loaded.issuer(),
    );
    if let Ok(value) = HeaderValue::from_str(&set_cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
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

/// GET `/consent?interaction=ID`.
pub async fn consent_page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = now();
    let (loaded, store, interaction) =
        match interaction_of(&app, query_param(&query, "interaction"), now).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let Some(request) = interaction.authorization() else {
        return expired_page(&loaded);
    };
    let session = match current_session(&store, &headers, now).await {
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
        pages::origin_of(&request.redirect_uri).as_deref(),
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
        match submitted(&app, &body, now, "/consent", FORM_EXPIRED).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let session = match current_session(&store, &headers, now).await {
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
    let consent_key = interaction::consent_id(&session.1.sub, &request.client_id);
    let mut granted: Vec<String> = match store.get(Kind::Consent, &consent_key, now).await {
        Ok(value) => value
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default(),
        Err(error) => return redirect_unavailable(&loaded, &request, &error),
    };
    for scope in &request.scopes {
        if !granted.contains(scope) {
            granted.push(scope.clone());
        }
    }
    let until = now + loaded.snapshot.consent_lifetime_secs as i64;
    if let Err(error) = store
        .put(Kind::Consent, &consent_key, &json!(granted), until, now)
        .await
    {
        return redirect_unavailable(&loaded, &request, &error);
    }
    let done = Done {
        started: Some(interaction.started),
        consented: true,
    };
    proceed(
        &loaded,
        &store,
        request,
        Some(session),
        Some(interaction),
        done,
        now,
    )
    .await
}
