//! Password guessing, held back by counts of failed sign-ins kept in the operational store, so
//! every replica sees every attempt:
//! - per (username, source address) and per source address, a budget per window; past it the
//!   attempt is refused without a password check (the page says when to come back);
//! - per username, only a delay that grows, never a refusal: a refusal keyed on the username
//!   alone would let anyone lock anyone out.
//!
//! An attempt is counted before its password is checked (and uncounted if it succeeds), so
//! parallel guesses each see the ones before them instead of all reading the same count.
//! Whether the source address had failures in the window also decides which share of the
//! password pool the attempt may wait for (`users::VerifierPool`).

use std::time::Duration;

use crate::store::{Store, Unavailable};

/// Failures allowed before any delay.
const FREE_FAILURES: i64 = 3;
/// The longest delay.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// The budgets, per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Failed sign-ins one address may make for one username.
    pub per_user_address: u32,
    /// Failed sign-ins one address may make in all (many people may share one).
    pub per_address: u32,
    /// How long a count lives from its first failure, in seconds.
    pub window_secs: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_user_address: 10,
            per_address: 100,
            window_secs: 15 * 60,
        }
    }
}

/// Attempts counted before this one (failed, or still being checked), in the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// For this username from this address.
    pub user_address: i64,
    /// From this address.
    pub address: i64,
    /// For this username, from anywhere.
    pub user: i64,
}

/// Which budget an attempt is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Over {
    /// This address, for this username.
    UserAtAddress,
    /// This address.
    Address,
}

/// What to do with an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Refuse it without checking the password.
    Refuse(Over),
    /// Check it after `delay`; `clean` when its address had no failure in the window.
    Check {
        /// Wait this long first.
        delay: Duration,
        /// The address had no failure in the window.
        clean: bool,
    },
}

/// The delay before checking a password after `failures` recent failures of its username:
/// none for the first few, then doubling from one second up to `MAX_DELAY`.
pub fn delay_for(failures: i64) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES).min(16) as u32;
    Duration::from_secs(1u64 << doublings).min(MAX_DELAY)
}

/// The rule, on counts alone.
pub fn decide(limits: Limits, seen: Seen) -> Verdict {
    if seen.user_address >= i64::from(limits.per_user_address) {
        return Verdict::Refuse(Over::UserAtAddress);
    }
    if seen.address >= i64::from(limits.per_address) {
        return Verdict::Refuse(Over::Address);
    }
    Verdict::Check {
        delay: delay_for(seen.user),
        clean: seen.address == 0,
    }
}

/// One counted attempt: what to undo when it turns out not to be a failure.
pub struct Attempt {
    user_address: String,
    address: String,
    user: Option<String>,
    expires: i64,
}

/// Counts an attempt for `username` from `address` at `now` and decides on it. A refused
/// attempt stays counted against the address (one that keeps trying stays refused), never
/// against the username.
pub async fn begin(
    store: &Store,
    limits: Limits,
    username: &str,
    address: &str,
    now: i64,
) -> Result<(Verdict, Attempt), Unavailable> {
    let expires = now + limits.window_secs;
    let mut attempt = Attempt {
        user_address: format!("login:ua:{username}\n{address}"),
        address: format!("login:a:{address}"),
        user: None,
        expires,
    };
    let seen = Seen {
        user_address: store.count(&attempt.user_address, 1, expires, now).await? - 1,
        address: store.count(&attempt.address, 1, expires, now).await? - 1,
        user: 0,
    };
    if let verdict @ Verdict::Refuse(_) = decide(limits, seen) {
        return Ok((verdict, attempt));
    }
    let user = format!("login:u:{username}");
    let seen = Seen {
        user: store.count(&user, 1, expires, now).await? - 1,
        ..seen
    };
    attempt.user = Some(user);
    Ok((decide(limits, seen), attempt))
}

impl Attempt {
    /// The password was right: the username's counts start over, and this attempt is not a
    /// failure of its address (whose earlier failures stay: one good password must not reset a
    /// guessing run from the same place).
    pub async fn succeeded(self, store: &Store, now: i64) -> Result<(), Unavailable> {
        store.reset_count(&self.user_address, now).await?;
        if let Some(user) = &self.user {
            store.reset_count(user, now).await?;
        }
        store.count(&self.address, -1, self.expires, now).await?;
        Ok(())
    }

    /// No password was checked (the pool was full): nothing is held against anyone.
    pub async fn not_checked(self, store: &Store, now: i64) -> Result<(), Unavailable> {
        for key in [
            Some(&self.user_address),
            Some(&self.address),
            self.user.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            store.count(key, -1, self.expires, now).await?;
        }
        Ok(())
    }
}

/// Wrong user codes from `address` at the device verification page (RFC 8628 §5.1): counted
/// before the lookup like a password attempt; returns the delay its earlier failures earn.
pub async fn device_guess(
    store: &Store,
    address: &str,
    now: i64,
    window_secs: i64,
) -> Result<Duration, Unavailable> {
    let before = store
        .count(&device_key(address), 1, now + window_secs, now)
        .await?
        - 1;
    Ok(delay_for(before))
}

/// The user code was right: this guess is not a failure.
pub async fn device_guess_right(
    store: &Store,
    address: &str,
    now: i64,
    window_secs: i64,
) -> Result<(), Unavailable> {
    store
        .count(&device_key(address), -1, now + window_secs, now)
        .await
        .map(|_| ())
}

fn device_key(address: &str) -> String {
    format!("device:a:{address}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const LIMITS: Limits = Limits {
        per_user_address: 3,
        per_address: 5,
        window_secs: 900,
    };

    #[test]
    fn delays_grow_then_cap() {
        assert_eq!(delay_for(0), Duration::ZERO);
        assert_eq!(delay_for(2), Duration::ZERO);
        assert_eq!(delay_for(3), Duration::from_secs(1));
        assert_eq!(delay_for(5), Duration::from_secs(4));
        assert_eq!(delay_for(40), MAX_DELAY);
    }

    #[test]
    fn addresses_are_refused_past_their_budgets_and_a_username_is_only_slowed() {
        let seen = |user_address, address, user| Seen {
            user_address,
            address,
            user,
        };
        assert_eq!(
            decide(LIMITS, seen(0, 0, 0)),
            Verdict::Check {
                delay: Duration::ZERO,
                clean: true
            }
        );
        assert_eq!(
            decide(LIMITS, seen(2, 4, 0)),
            Verdict::Check {
                delay: Duration::ZERO,
                clean: false
            }
        );
        assert_eq!(
            decide(LIMITS, seen(3, 3, 0)),
            Verdict::Refuse(Over::UserAtAddress)
        );
        assert_eq!(
            decide(LIMITS, seen(0, 5, 0)),
            Verdict::Refuse(Over::Address)
        );
        // A million failures for the username from elsewhere: a clean address is still
        // checked, after the longest delay at most.
        assert_eq!(
            decide(LIMITS, seen(0, 0, 1_000_000)),
            Verdict::Check {
                delay: MAX_DELAY,
                clean: true
            }
        );
    }

    #[tokio::test]
    async fn attempts_are_counted_before_the_check_and_a_success_is_not_a_failure() {
        let store = Store::Memory(MemoryStore::default());
        let now = 1_800_000_000;
        // Parallel guesses see each other: of ten at once for one username, three are checked.
        let verdicts = futures::future::join_all(
            (0..10).map(|_| begin(&store, LIMITS, "alice", "203.0.113.7", now)),
        )
        .await;
        let checked = verdicts
            .iter()
            .filter(|v| matches!(v.as_ref().unwrap().0, Verdict::Check { .. }))
            .count();
        assert_eq!(checked, 3);
        // The address is over its budget for everyone now (10 attempts >= 5).
        let (verdict, _) = begin(&store, LIMITS, "bob", "203.0.113.7", now)
            .await
            .unwrap();
        assert_eq!(verdict, Verdict::Refuse(Over::Address));
        // Elsewhere, alice has three failures: checked at once, and a success resets them.
        let (verdict, attempt) = begin(&store, LIMITS, "alice", "198.51.100.1", now)
            .await
            .unwrap();
        assert_eq!(
            verdict,
            Verdict::Check {
                delay: Duration::from_secs(1),
                clean: true
            }
        );
        attempt.succeeded(&store, now).await.unwrap();
        let (verdict, attempt) = begin(&store, LIMITS, "alice", "198.51.100.1", now)
            .await
            .unwrap();
        assert_eq!(
            verdict,
            Verdict::Check {
                delay: Duration::ZERO,
                clean: true
            },
            "the success was not a failure of the address, and the username starts over"
        );
        attempt.not_checked(&store, now).await.unwrap();
        // The window ends.
        let (verdict, _) = begin(&store, LIMITS, "bob", "203.0.113.7", now + 900)
            .await
            .unwrap();
        assert!(matches!(verdict, Verdict::Check { clean: true, .. }));
    }
}
