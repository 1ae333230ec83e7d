//! Client authentication at the token, introspection, revocation and device authorization
//! endpoints (the only callers), done once before anything else: `client_secret_basic`
//! (credentials form-decoded, RFC 6749 §2.3.1) or `client_secret_post`, compared in constant
//! time with the SHA-256 hashes in the snapshot, `private_key_jwt` (see `client_assertion`) or
//! `kubernetes_service_account` (see `workload`).

use base64::Engine;
use sha2::{Digest, Sha256};
use signet_crds::snapshot::Client;
use signet_crds::v1alpha1::AuthMethod;

use crate::app::App;
use crate::client_assertion;
use crate::error::OAuthError;
use crate::form::Form;
use crate::loaded::Loaded;
use crate::workload;

/// Credentials as presented.
struct Presented {
    client_id: String,
    secret: String,
    method: AuthMethod,
}

fn basic(authorization: Option<&[u8]>) -> Result<Option<Presented>, OAuthError> {
    let Some(value) = authorization else {
        return Ok(None);
    };
    let value = std::str::from_utf8(value).map_err(|_| OAuthError::invalid_client())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(OAuthError::invalid_request(
            "unsupported Authorization scheme",
        ));
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| OAuthError::invalid_client())?;
    let text = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client())?;
    let (id, secret) = text
        .split_once(':')
        .ok_or_else(OAuthError::invalid_client)?;
    let id = Form::decode_component(id).map_err(|_| OAuthError::invalid_client())?;
    let secret = Form::decode_component(secret).map_err(|_| OAuthError::invalid_client())?;
    Ok(Some(Presented {
        client_id: id,
        secret,
        method: AuthMethod::ClientSecretBasic,
    }))
}

/// What checks ServiceAccount tokens, borrowed from the app: for client authentication, and
/// for a token exchange of a workload's own token.
pub fn workload_checkers(app: &App) -> workload::Checkers<'_> {
    workload::Checkers {
        kube: app.kube.get(),
        reviews: &app.reviews,
        jwks: &app.jwks,
        outbound: &app.outbound,
        discovered: &app.clusters,
    }
}

/// Authenticates the caller from its `Authorization` header (the raw value, if sent) and its
/// form; returns its registration.
pub async fn authenticate<'a>(
    loaded: &'a Loaded,
    app: &App,
    authorization: Option<&[u8]>,
    form: &Form,
    now: i64,
) -> Result<&'a Client, OAuthError> {
    let from_header = basic(authorization)?;
    let from_body = form.get("client_secret").map(|secret| Presented {
        client_id: form.get("client_id").unwrap_or_default().to_owned(),
        secret: secret.to_owned(),
        method: AuthMethod::ClientSecretPost,
    });
    if let Some(assertion) = form.get("client_assertion") {
        if from_header.is_some() || from_body.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method",
            ));
        }
        if form.get("client_assertion_type") != Some(client_assertion::JWT_BEARER) {
            return Err(OAuthError::invalid_request(
                "client_assertion_type must be the RFC 7523 JWT bearer type",
            ));
        }
        // A client that names ServiceAccounts takes their tokens, and only them; a client_id
        // the snapshot does not know authenticates nothing (RFC 6749 §5.2: unknown client).
        if let Some(id) = form.get("client_id") {
            let client = loaded
                .clients
                .get(id)
                .ok_or_else(OAuthError::invalid_client)?;
            if !client.service_accounts.is_empty() {
                return workload::authenticate(
                    loaded,
                    &workload_checkers(app),
                    client,
                    assertion,
                    now,
                )
                .await;
            }
        }
        return client_assertion::authenticate(loaded, app, assertion, form.get("client_id"), now)
            .await;
    }
    let presented = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method",
            ));
        }
        (Some(p), None) | (None, Some(p)) => p,
        (None, None) => return public_client(loaded, form),
    };
    if let Some(id) = form.get("client_id")
        && id != presented.client_id
    {
        return Err(OAuthError::invalid_request(
            "client_id does not match the authenticated client",
        ));
    }
    let client = loaded
        .clients
        .get(&presented.client_id)
        .ok_or_else(OAuthError::invalid_client)?;
    if client.auth_method != presented.method {
        return Err(OAuthError::invalid_client());
    }
    let presented_hash: Vec<u8> = Sha256::digest(presented.secret.as_bytes()).to_vec();
    // Check every valid hash, whether or not one matched, so timing says nothing.
    let mut matched = false;
    for stored in client
        .secret_hashes
        .iter()
        .filter(|h| h.not_after.is_none_or(|t| t > now))
    {
        let stored = hex_decode(&stored.sha256);
        matched |=
            aws_lc_rs::constant_time::verify_slices_are_equal(&stored, &presented_hash).is_ok();
    }
    if matched {
        Ok(client)
    } else {
        Err(OAuthError::invalid_client())
    }
}

/// A public client (token endpoint auth method `none`) names itself with `client_id` only; a
/// confidential client that sends no credentials is refused.
fn public_client<'a>(loaded: &'a Loaded, form: &Form) -> Result<&'a Client, OAuthError> {
    form.get("client_id")
        .and_then(|id| loaded.clients.get(id))
        .filter(|client| client.auth_method == AuthMethod::None)
        .ok_or_else(OAuthError::invalid_client)
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}
