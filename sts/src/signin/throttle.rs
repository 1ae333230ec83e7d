//! Failed sign-ins slow down further attempts for the same username and for the same source
//! address: delays that grow, never lockouts (a lockout would let anyone lock anyone out).
//! Counts live in this replica's memory and fade after a quiet period; a person behind a
//! shared address is slowed, not stopped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Failures allowed before any delay.
const FREE_FAILURES: u32 = 3;
/// The longest delay.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// A key with no failure for this long starts over.
const QUIET_SECS: i64 = 15 * 60;
/// Keys kept at most (a flood of random usernames cannot grow memory without bound).
const MAX_KEYS: usize = 100_000;

/// The delay before checking a password after `failures` recent failures: none for the first
/// few, then doubling from one second up to `MAX_DELAY`.
pub fn delay_for(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES).min(16);
    Duration::from_secs(1u64 << doublings).min(MAX_DELAY)
}

/// Recent failures by key (`user:NAME`, `ip:ADDR`).
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, i64)>>,
}

impl Throttle {
    /// The delay to apply before checking a password for `keys` at `now`: the largest.
    pub fn delay(&self, keys: &[String], now: i64) -> Duration {
        let failures = self.failures.lock().expect("throttle lock");
        keys.iter()
            .filter_map(|k| failures.get(k))
            .filter(|(_, last)| now - last < QUIET_SECS)
            .map(|(count, _)| delay_for(*count))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Records a failure for each key.
    pub fn failed(&self, keys: &[String], now: i64) {
        let mut failures = self.failures.lock().expect("throttle lock");
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, (_, last)| now - *last < QUIET_SECS);
        }
        for key in keys {
            let entry = failures.entry(key.clone()).or_insert((0, now));
            if now - entry.1 >= QUIET_SECS {
                entry.0 = 0;
            }
            *entry = (entry.0.saturating_add(1), now);
        }
    }

    /// A success clears the username's count (not the address's: one good password must not
    /// reset a guessing run from the same place).
    pub fn succeeded(&self, user_key: &str) {
        self.failures
            .lock()
            .expect("throttle lock")
            .remove(user_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_cap_and_fade() {
        assert_eq!(delay_for(0), Duration::ZERO);
        assert_eq!(delay_for(2), Duration::ZERO);
        assert_eq!(delay_for(3), Duration::from_secs(1));
        assert_eq!(delay_for(5), Duration::from_secs(4));
        assert_eq!(delay_for(40), MAX_DELAY);

        let throttle = Throttle::default();
        let keys = vec!["user:alice".to_owned(), "ip:10.0.0.1".to_owned()];
        for _ in 0..4 {
            throttle.failed(&keys, 1000);
        }
        assert_eq!(throttle.delay(&keys, 1001), Duration::from_secs(2));
        assert_eq!(
            throttle.delay(&["ip:10.0.0.1".into(), "user:bob".into()], 1001),
            Duration::from_secs(2),
            "the address is slowed for other usernames too"
        );
        assert_eq!(
            throttle.delay(&keys, 1000 + QUIET_SECS),
            Duration::ZERO,
            "fades"
        );
        throttle.succeeded("user:alice");
        assert_eq!(throttle.delay(&["user:alice".into()], 1001), Duration::ZERO);
        assert_eq!(
            throttle.delay(&keys, 1001),
            Duration::from_secs(2),
            "address kept"
        );
    }
}
