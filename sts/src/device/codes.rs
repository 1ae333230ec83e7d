//! The device authorization grant (RFC 8628): codes, the record a device polls, and what a
//! poll answers, decided from the record and `now`.

use serde::{Deserialize, Serialize};

use crate::grants::user_tokens::Grant;
use crate::store::{Kind, Record};

/// Letters of user codes: consonants only (RFC 8628 §6.1), so no word is spelled and no
/// letter is mistaken for a digit.
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Letters in a user code: 20^8 ≈ 2.6e10 codes.
const LENGTH: usize = 8;
/// Seconds a device waits between polls, at first.
pub const INTERVAL: i64 = 5;
/// How long a record is kept after it expires, so a late poll hears expired_token.
pub const TOMBSTONE_SECS: i64 = 600;

/// A new user code, `XXXX-XXXX`.
pub fn user_code() -> String {
    let mut code = String::with_capacity(LENGTH + 1);
    while code.len() < LENGTH + 1 {
        let mut byte = [0u8; 1];
        aws_lc_rs::rand::fill(&mut byte).expect("the OS random source works");
        // 240 is the largest multiple of 20 below 256: no letter is likelier than another.
        if byte[0] < 240 {
            if code.len() == LENGTH / 2 {
                code.push('-');
            }
            code.push(ALPHABET[(byte[0] % 20) as usize] as char);
        }
    }
    code
}

/// A typed code in canonical form: upper case, letters of the alphabet only (dashes, spaces
/// and other separators dropped); None when it cannot be a user code.
pub fn normalize(typed: &str) -> Option<String> {
    let letters: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (letters.len() == LENGTH && letters.bytes().all(|b| ALPHABET.contains(&b))).then_some(letters)
}

/// Where a device authorization stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    /// Waiting for the person.
    Pending,
    /// Approved: tokens for this grant on the next poll.
    Approved {
        /// What the person granted.
        grant: Grant,
    },
    /// The person said no.
    Denied,
}

/// What the device polls, by device code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The device's client.
    pub client_id: String,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// The user code, canonical.
    pub user_code: String,
    /// Current polling interval.
    pub interval: i64,
    /// The last poll.
    pub last_poll: Option<i64>,
    /// When the codes expire.
    pub expires: i64,
    /// The person's answer.
    pub status: Status,
}

impl Record for DeviceRecord {
    const KIND: Kind = Kind::Device;
}

/// The answer to one poll.
#[derive(Debug, PartialEq)]
pub enum Poll {
    /// expired_token.
    Expired,
    /// slow_down; the record now has this interval.
    SlowDown,
    /// authorization_pending.
    Pending,
    /// access_denied.
    Denied,
    /// Issue tokens for the grant.
    Approved(Grant),
}

/// Answers a poll at `now` and updates the record's polling state (RFC 8628 §3.5: a poll
/// sooner than the interval gets slow_down and the interval grows by 5 seconds).
pub fn poll(record: &mut DeviceRecord, now: i64) -> Poll {
    if now >= record.expires {
        return Poll::Expired;
    }
    let too_soon = record
        .last_poll
        .is_some_and(|last| now - last < record.interval);
    record.last_poll = Some(now);
    if too_soon {
        record.interval += 5;
        return Poll::SlowDown;
    }
    match &record.status {
        Status::Pending => Poll::Pending,
        Status::Denied => Poll::Denied,
        Status::Approved { grant } => Poll::Approved(grant.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_easy_to_type_and_normalise() {
        for _ in 0..200 {
            let code = user_code();
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            let canonical = normalize(&code).expect("a generated code is valid");
            assert_eq!(
                normalize(&code.to_lowercase().replace('-', " ")),
                Some(canonical)
            );
        }
        assert_eq!(
            normalize("BCDF-GHJA"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalize("BCDF"), None);
    }

    #[test]
    fn polls_follow_rfc_8628() {
        let mut record = DeviceRecord {
            client_id: "c".into(),
            scopes: vec![],
            user_code: "BCDFGHJK".into(),
            interval: 5,
            last_poll: None,
            expires: 1000,
            status: Status::Pending,
        };
        assert_eq!(poll(&mut record, 100), Poll::Pending);
        assert_eq!(poll(&mut record, 103), Poll::SlowDown);
        assert_eq!(record.interval, 10);
        assert_eq!(poll(&mut record, 108), Poll::SlowDown, "10 s now");
        assert_eq!(poll(&mut record, 123), Poll::Pending);
        record.status = Status::Denied;
        assert_eq!(poll(&mut record, 140), Poll::Denied);
        assert_eq!(poll(&mut record, 1000), Poll::Expired);
    }
}
