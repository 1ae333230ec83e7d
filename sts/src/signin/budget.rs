//! How many interactions one source address may start: a token bucket per address that holds
//! `per_minute` and refills at that rate. An interaction is kept for 15 minutes, so without it
//! one client could fill the store as fast as it can send requests. Per replica, in memory;
//! the number of addresses kept is bounded (full buckets are the first to go).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Addresses kept at most.
const MAX_SOURCES: usize = 100_000;

/// The buckets.
pub struct Budget {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// A token is `UNIT` units, and a bucket gains `per_minute` units a millisecond: exact in
/// integers, `per_minute` tokens a minute.
const UNIT: i64 = 60_000;

#[derive(Clone, Copy)]
struct Bucket {
    /// What is left, in units.
    units: i64,
    /// When it was last refilled, in milliseconds.
    at: i64,
}

impl Budget {
    /// A budget of `per_minute` new interactions per source.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::default(),
        }
    }

    fn capacity(&self) -> i64 {
        i64::from(self.per_minute) * UNIT
    }

    /// The bucket refilled up to `now_ms`.
    fn refilled(&self, bucket: Bucket, now_ms: i64) -> Bucket {
        let gained = (now_ms - bucket.at).max(0) * i64::from(self.per_minute);
        Bucket {
            units: bucket.units.saturating_add(gained).min(self.capacity()),
            at: now_ms.max(bucket.at),
        }
    }

    /// Takes one interaction from `source`'s budget at `now_ms`; false when it has none left.
    pub fn take(&self, source: IpAddr, now_ms: i64) -> bool {
        let mut buckets = self.buckets.lock().expect("budget lock");
        if buckets.len() >= MAX_SOURCES && !buckets.contains_key(&source) {
            let capacity = self.capacity();
            buckets.retain(|_, b| self.refilled(*b, now_ms).units < capacity);
        }
        let full = Bucket {
            units: self.capacity(),
            at: now_ms,
        };
        let bucket = buckets.entry(source).or_insert(full);
        *bucket = self.refilled(*bucket, now_ms);
        if bucket.units < UNIT {
            return false;
        }
        bucket.units -= UNIT;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_budget_then_one_more_per_refill_interval() {
        let budget = Budget::new(6); // one every 10 s
        let (a, b): (IpAddr, IpAddr) = ("203.0.113.7".parse().unwrap(), "::1".parse().unwrap());
        let t0 = 1_800_000_000_000;
        assert!((0..6).all(|_| budget.take(a, t0)));
        assert!(!budget.take(a, t0), "spent");
        assert!(budget.take(b, t0), "another source has its own");
        assert!(!budget.take(a, t0 + 9_999));
        assert!(budget.take(a, t0 + 10_000), "one more after 10 s");
        assert!(!budget.take(a, t0 + 10_000));
        // A quiet minute refills it, never beyond the budget.
        let later = t0 + 10 * 60_000;
        assert!((0..6).all(|_| budget.take(a, later)));
        assert!(!budget.take(a, later));
    }
}
