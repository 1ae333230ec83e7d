//! The person's side of the device flow (RFC 8628 §3.3): a device authorization is started
//! with a device code and a user code; the person finds it by the user code they typed, and
//! allows it (for their session) or denies it. The user code is spent either way.

use serde::{Deserialize, Serialize};
use signet_crds::snapshot::Client;

use super::codes::{self, DeviceRecord, Status, TOMBSTONE_SECS};
use crate::grants::user_tokens::Grant;
use crate::signin::session::Session;
use crate::store::{Kind, Record, Store, Unavailable, Versioned};

/// A started device authorization.
pub struct Started {
    /// What the device polls with.
    pub device_code: String,
    /// What the person types, `XXXX-XXXX`.
    pub user_code: String,
}

/// Starts a device authorization of `client` for `scopes`, for the client's device-code
/// lifetime.
pub async fn start(
    store: &Store,
    client: &Client,
    scopes: Vec<String>,
    now: i64,
) -> Result<Started, Unavailable> {
    let device_code = crate::random::token();
    let user_code = codes::user_code();
    let canonical = codes::normalize(&user_code).expect("generated codes are valid");
    let expires = now + client.lifetimes.device_code as i64;
    let record = DeviceRecord {
        client_id: client.client_id.clone(),
        scopes,
        user_code: canonical.clone(),
        interval: codes::INTERVAL,
        last_poll: None,
        expires,
        status: Status::Pending,
    };
    let keep = expires + TOMBSTONE_SECS;
    store.put(&device_code, &record, keep, now).await?;
    let of = DeviceCodeOf(device_code.clone());
    store.put(&canonical, &of, expires, now).await?;
    Ok(Started {
        device_code,
        user_code,
    })
}

/// The device code a user code stands for, stored under the user code.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceCodeOf(pub String);

impl Record for DeviceCodeOf {
    const KIND: Kind = Kind::UserCode;
}

/// The pending device record for a typed user code, with its device code.
pub async fn pending(
    store: &Store,
    typed: &str,
    now: i64,
) -> Result<Option<(String, Versioned<DeviceRecord>)>, Unavailable> {
    let Some(canonical) = codes::normalize(typed) else {
        return Ok(None);
    };
    let Some(DeviceCodeOf(device_code)) = store.get(&canonical, now).await? else {
        return Ok(None);
    };
    Ok(store
        .get_versioned::<DeviceRecord>(&device_code, now)
        .await?
        .filter(|r| r.record.status == Status::Pending && r.record.expires > now)
        .map(|r| (device_code, r)))
}

/// How many times an answer is tried again when a poll changed the record in between.
const ATTEMPTS: usize = 3;

/// The person's answer to the pending authorization of `user_code`: approved for `session`,
/// or denied (`None`). False when there is none (expired, or already answered): of two
/// answers racing, one wins, so an authorization is never approved twice. Spends the user
/// code.
pub async fn answer(
    store: &Store,
    user_code: &str,
    approved_in: Option<&Session>,
    now: i64,
) -> Result<bool, Unavailable> {
    for _ in 0..ATTEMPTS {
        let Some((device_code, read)) = pending(store, user_code, now).await? else {
            return Ok(false);
        };
        let mut record = read.record.clone();
        record.status = match approved_in {
            Some(session) => Status::Approved {
                grant: Grant {
                    client_id: record.client_id.clone(),
                    sub: session.sub.clone(),
                    scopes: record.scopes.clone(),
                    auth_time: session.auth_time,
                    sid: Some(session.sid.clone()),
                    idp: Some(session.idp.clone()),
                },
            },
            None => Status::Denied,
        };
        let keep = record.expires + TOMBSTONE_SECS;
        if store
            .replace(&device_code, &read, &record, keep, now)
            .await?
        {
            store.delete::<DeviceCodeOf>(&record.user_code, now).await?;
            return Ok(true);
        }
    }
    Err(Unavailable::Contended("the device authorization"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const NOW: i64 = 1_800_000_000;

    /// A pending authorization of the cli under device code `dev-1`, user code BCDFGHJK.
    pub(crate) async fn pending_device(store: &Store) {
        let record = DeviceRecord {
            client_id: "default.cli".into(),
            scopes: vec!["openid".into()],
            user_code: "BCDFGHJK".into(),
            interval: codes::INTERVAL,
            last_poll: None,
            expires: NOW + 600,
            status: Status::Pending,
        };
        store.put("dev-1", &record, NOW + 1200, NOW).await.unwrap();
        let of = DeviceCodeOf("dev-1".into());
        store.put("BCDFGHJK", &of, NOW + 600, NOW).await.unwrap();
    }

    /// A session of alice.
    pub(crate) fn alice() -> Session {
        Session {
            sid: "sid".into(),
            sub: "alice".into(),
            auth_time: NOW,
            idp: "local-users".into(),
            expires: NOW + 3600,
            clients: vec![],
        }
    }

    #[tokio::test]
    async fn an_answer_counts_once_and_a_poll_that_read_before_it_cannot_undo_it() {
        let store = Store::Memory(MemoryStore::default());
        pending_device(&store).await;
        // A poll reads the record, then the person approves before the poll writes back.
        let polled = store
            .get_versioned::<DeviceRecord>("dev-1", NOW)
            .await
            .unwrap()
            .unwrap();
        assert!(
            answer(&store, "bcdf-ghjk", Some(&alice()), NOW)
                .await
                .unwrap()
        );
        let mut stale = polled.record.clone();
        stale.last_poll = Some(NOW);
        assert!(
            !store
                .replace("dev-1", &polled, &stale, NOW + 1200, NOW)
                .await
                .unwrap(),
            "the poll's write from before the answer loses"
        );
        let now_stored = store
            .get::<DeviceRecord>("dev-1", NOW)
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(&now_stored.status, Status::Approved { grant } if grant.sub == "alice"),
            "{now_stored:?}"
        );
        // A second answer (another tab, a replayed form) finds nothing pending.
        assert!(!answer(&store, "BCDFGHJK", None, NOW).await.unwrap());
        assert!(pending(&store, "BCDFGHJK", NOW).await.unwrap().is_none());
    }
}
