//! Polling for device tokens (RFC 8628 §3.4, §3.5). An approved authorization is taken from the
//! store atomically, so a device code redeems once even when two replicas answer two polls.

use serde::Deserialize;
use serde_json::Value;

use super::codes::{self as device, DeviceRecord, Poll, TOMBSTONE_SECS};
use crate::error::OAuthError;
use crate::grants::context::Context;
use crate::grants::user_tokens::{self, unavailable};
use crate::store::Versioned;

/// The request parameters.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// The device code.
    pub device_code: String,
}

/// How many times a poll decides again after losing a race with another write.
const ATTEMPTS: usize = 3;

/// Nothing to check before the record is found: every rule is about the device's record.
pub fn validate(_ctx: &Context<'_>, request: Request) -> Result<Request, OAuthError> {
    Ok(request)
}

/// Answers one poll: a polling error (RFC 8628 §3.5) or, once approved, the tokens.
pub async fn issue(ctx: &Context<'_>, request: Request) -> Result<Value, OAuthError> {
    let code = &request.device_code;
    for _ in 0..ATTEMPTS {
        let Some(read) = ctx
            .store
            .get_versioned::<DeviceRecord>(code, ctx.now)
            .await
            .map_err(unavailable)?
        else {
            return Err(OAuthError::invalid_grant(
                "unknown or already used device code",
            ));
        };
        if let Some(tokens) = decide(ctx, code, read).await? {
            return Ok(tokens);
        }
    }
    Err(OAuthError::temporarily_unavailable(
        "the device record kept changing while it was polled",
    ))
}

/// One poll decided from `read`, the record as this poll saw it: the tokens, a polling
/// error, or `None` when the record changed since the read (the person answered, or another
/// poll came first), so the poll must read again and decide again. A poll writes back only the
/// record it read, so it never overwrites an answer given meanwhile.
async fn decide(
    ctx: &Context<'_>,
    code: &str,
    read: Versioned<DeviceRecord>,
) -> Result<Option<Value>, OAuthError> {
    let (store, client, now) = (ctx.store, ctx.client, ctx.now);
    if read.record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the device code was issued to another client",
        ));
    }
    let mut record = read.record.clone();
    let keep = record.expires + TOMBSTONE_SECS;
    match device::poll(&mut record, now) {
        Poll::Expired => Err(OAuthError::device("expired_token")),
        Poll::Denied => {
            store
                .delete::<DeviceRecord>(code, now)
                .await
                .map_err(unavailable)?;
            Err(OAuthError::device("access_denied"))
        }
        outcome @ (Poll::Pending | Poll::SlowDown) => {
            let written = store
                .replace(code, &read, &record, keep, now)
                .await
                .map_err(unavailable)?;
            if !written {
                return Ok(None);
            }
            Err(OAuthError::device(if outcome == Poll::Pending {
                "authorization_pending"
            } else {
                "slow_down"
            }))
        }
        Poll::Approved(grant) => {
            // Of two polls racing here, one takes the record; the other finds it gone.
            let taken = store
                .take::<DeviceRecord>(code, now)
                .await
                .map_err(unavailable)?;
            if taken.is_none() {
                return Err(OAuthError::invalid_grant(
                    "the device code was already used",
                ));
            }
            let (response, _) = user_tokens::issue(ctx, &grant, None, None).await?;
            Ok(Some(response))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::codes::Status;
    use crate::device::verification;
    use crate::store::{MemoryStore, Store};

    const NOW: i64 = 1_800_000_000;

    #[tokio::test]
    async fn a_poll_that_read_before_the_approval_cannot_undo_it_and_then_gets_the_tokens() {
        let loaded = crate::testing::examples("device-race");
        let store = Store::Memory(MemoryStore::default());
        let client = &loaded.clients["default.cli"];
        verification::tests::pending_device(&store).await;
        let ctx = Context {
            loaded: &loaded,
            store: &store,
            client,
            now: NOW,
            workload: None,
        };
        // The poll reads the pending record; before it writes, the person approves.
        let polled = store
            .get_versioned::<DeviceRecord>("dev-1", NOW)
            .await
            .unwrap()
            .unwrap();
        let alice = verification::tests::alice();
        assert!(
            verification::answer(&store, "BCDFGHJK", Some(&alice), NOW)
                .await
                .unwrap()
        );
        // Deciding from its stale read, the poll loses and writes nothing.
        assert!(decide(&ctx, "dev-1", polled).await.unwrap().is_none());
        let stored = store
            .get::<DeviceRecord>("dev-1", NOW)
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(stored.status, Status::Approved { .. }),
            "{stored:?}"
        );
        // Read again, the same poll gets the tokens, once.
        let request = || Request {
            device_code: "dev-1".into(),
        };
        let tokens = issue(&ctx, request()).await.unwrap();
        assert!(tokens["access_token"].is_string(), "{tokens}");
        assert_eq!(
            issue(&ctx, request()).await.unwrap_err().code(),
            "invalid_grant"
        );
    }
}
