//! Polling for device tokens (RFC 8628 §3.4, §3.5). An approved authorization is taken from the
//! store atomically, so a device code redeems once even when two replicas answer two polls.

use serde::Deserialize;
use serde_json::{Value, json};
use signet_crds::snapshot::Client;
use signet_crds::v1alpha1::GrantType;

use super::user_tokens::{self, unavailable};
use crate::device::{self, DeviceRecord, Poll, TOMBSTONE_SECS};
use crate::http::error::OAuthError;
use crate::loaded::Loaded;
use crate::store::{Kind, Records, Store};

/// The request parameters.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// The device code.
    pub device_code: String,
}

/// Answers one poll.
pub async fn poll(
    loaded: &Loaded,
    store: &Store,
    client: &Client,
    request: &Request,
    now: i64,
) -> Result<Value, OAuthError> {
    if !client.grant_types.contains(&GrantType::DeviceCode) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the device flow",
        ));
    }
    let code = &request.device_code;
    let Some(mut record) = store
        .get(Kind::Device, code, now)
        .await
        .map_err(unavailable)?
        .and_then(|v| serde_json::from_value::<DeviceRecord>(v).ok())
    else {
        return Err(OAuthError::invalid_grant(
            "unknown or already used device code",
        ));
    };
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the device code was issued to another client",
        ));
    }
    let keep = record.expires + TOMBSTONE_SECS;
    match device::poll(&mut record, now) {
        Poll::Expired => Err(OAuthError::device("expired_token")),
        Poll::Denied => {
            store
                .delete(Kind::Device, code, now)
                .await
                .map_err(unavailable)?;
            Err(OAuthError::device("access_denied"))
        }
        outcome @ (Poll::Pending | Poll::SlowDown) => {
            store
                .put(Kind::Device, code, &json!(record), keep, now)
                .await
                .map_err(unavailable)?;
            Err(OAuthError::device(if outcome == Poll::Pending {
                "authorization_pending"
            } else {
                "slow_down"
            }))
        }
        Poll::Approved(grant) => {
            // Of two polls racing here, one takes the record; the other finds it gone.
            if store
                .take(Kind::Device, code, now)
                .await
                .map_err(unavailable)?
                .is_none()
            {
                return Err(OAuthError::invalid_grant(
                    "the device code was already used",
                ));
            }
            let (response, _) =
                user_tokens::issue(loaded, store, client, &grant, None, None, now).await?;
            Ok(response)
        }
    }
}
