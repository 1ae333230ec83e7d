//! What a backend does: keep text under keys until an expiry, with five operations, each
//! atomic in the backend. The typed store (`store`) is built on these alone.

use std::future::Future;

use super::Unavailable;

/// A write: text under a key until `expires` (unix seconds), always or only when absent.
#[derive(Debug)]
pub struct Write {
    /// The key, without the backend's prefix.
    pub key: String,
    /// The text.
    pub value: String,
    /// When the record goes.
    pub expires: i64,
    /// Only when nothing live is under the key (`SET NX`).
    pub only_new: bool,
}

impl Write {
    /// Writes, replacing what is there.
    pub fn always(key: String, value: String, expires: i64) -> Self {
        Self {
            key,
            value,
            expires,
            only_new: false,
        }
    }

    /// Writes only when the key is free.
    pub fn if_absent(key: String, value: String, expires: i64) -> Self {
        Self {
            only_new: true,
            ..Self::always(key, value, expires)
        }
    }
}

/// The operations of a backend.
pub trait Backend {
    /// Performs `write`; false when `only_new` and the key was taken. A write that is already
    /// expired keeps nothing (and counts as done unless `only_new`).
    fn set(&self, write: Write, now: i64)
    -> impl Future<Output = Result<bool, Unavailable>> + Send;

    /// The live text under `key`.
    fn get(
        &self,
        key: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<String>, Unavailable>> + Send;

    /// Removes what is under `key`, returning it when `keep` (get-and-delete).
    fn remove(
        &self,
        key: &str,
        now: i64,
        keep: bool,
    ) -> impl Future<Output = Result<Option<String>, Unavailable>> + Send;

    /// Performs `write` only if the live text under its key is exactly `expected`; false when
    /// it is not (compare-and-set).
    fn replace(
        &self,
        expected: &str,
        write: Write,
        now: i64,
    ) -> impl Future<Output = Result<bool, Unavailable>> + Send;

    /// Adds `by` to the integer under `key` (0 when absent) and returns the sum; a key it
    /// creates expires at `expires`, an existing one keeps its expiry (a fixed window from the
    /// first count). A sum of 0 or less removes the key: a count never goes negative.
    fn add(
        &self,
        key: &str,
        by: i64,
        expires: i64,
        now: i64,
    ) -> impl Future<Output = Result<i64, Unavailable>> + Send;
}
