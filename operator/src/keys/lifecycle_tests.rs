//! The key lifecycle, driven through a model of the API server: each decision's one write is
//! applied, time moves, requests arrive, and the operator may crash between any two writes.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use signet_crds::v1alpha1::{KeyPhase, KeyVersion, SigningKeySpec};

use super::lifecycle::{Facts, KeySecret, Plan, Step, decide};

const HOUR: i64 = 3600;

fn spec(rotation: &str, propagation: &str, retention: &str) -> SigningKeySpec {
    serde_json::from_value(serde_json::json!({
        "rotationInterval": rotation, "propagationTime": propagation, "retentionTime": retention,
    }))
    .unwrap()
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

/// What the API server holds for one SigningKey.
#[derive(Clone, Debug, Default)]
struct World {
    versions: Vec<KeyVersion>,
    secrets: Vec<KeySecret>,
    rotate: Option<String>,
    rotate_done: Option<String>,
    revoke: Option<String>,
    revoke_done: Option<String>,
    next_kid: u32,
    /// What every live STS replica publishes; None: no replica reports.
    published: Option<std::collections::BTreeSet<String>>,
}

impl World {
    fn plan(&self, spec: &SigningKeySpec, now: Timestamp) -> Plan {
        decide(&Facts {
            spec,
            versions: &self.versions,
            secrets: &self.secrets,
            rotate: self.rotate.as_deref(),
            rotate_done: self.rotate_done.as_deref(),
            revoke: self.revoke.as_deref(),
            revoke_done: self.revoke_done.as_deref(),
            published: self.published.as_ref(),
            now,
        })
    }

    /// Applies one decision's write, as the reconciler would. Returns whether it wrote.
    fn step(&mut self, spec: &SigningKeySpec, now: Timestamp) -> bool {
        match self.plan(spec, now).step {
            None => false,
            Some(Step::CreateKeySecret) => {
                self.next_kid += 1;
                let kid = format!("k{}", self.next_kid);
                self.secrets.push(KeySecret {
                    name: format!("secret-{kid}"),
                    kid,
                });
                true
            }
            Some(Step::DeleteKeySecret(name)) => {
                self.secrets.retain(|s| s.name != name);
                true
            }
            Some(Step::WriteStatus {
                versions,
                last_rotate_request,
                last_revoke_request,
            }) => {
                self.versions = versions;
                self.rotate_done = last_rotate_request;
                self.revoke_done = last_revoke_request;
                true
            }
        }
    }

    /// Runs decisions until there is nothing to do now (a bounded number: it must settle).
    fn settle(&mut self, spec: &SigningKeySpec, now: Timestamp) {
        for _ in 0..20 {
            if !self.step(spec, now) {
                return;
            }
        }
        panic!("no fixed point at {now}: {self:#?}");
    }

    fn phase(&self, p: KeyPhase) -> Vec<&str> {
        self.versions
            .iter()
            .filter(|v| v.phase == p)
            .map(|v| v.kid.as_str())
            .collect()
    }

    /// The published keys: recorded, not revoked, with their Secret.
    fn jwks(&self) -> Vec<&str> {
        self.versions
            .iter()
            .filter(|v| {
                v.phase != KeyPhase::Revoked && self.secrets.iter().any(|s| s.name == v.secret_name)
            })
            .map(|v| v.kid.as_str())
            .collect()
    }

    fn active(&self) -> Option<&str> {
        self.phase(KeyPhase::Active).first().copied()
    }
}

fn booted(spec: &SigningKeySpec) -> World {
    let mut w = World::default();
    w.settle(spec, at(0));
    w
}

#[test]
fn first_key_is_active_at_once() {
    let s = spec("720h", "1h", "25h");
    let mut w = World::default();
    assert_eq!(w.plan(&s, at(0)).step, Some(Step::CreateKeySecret));
    w.step(&s, at(0));
    // The Secret exists before the version is recorded; the next decision records it active.
    assert!(w.versions.is_empty());
    w.step(&s, at(0));
    assert_eq!(w.phase(KeyPhase::Active), ["k1"]);
    assert_eq!(w.versions[0].retires.as_ref().unwrap().0, at(720 * HOUR));
    assert_eq!(
        w.plan(&s, at(0)).requeue_at,
        Some(at(719 * HOUR)),
        "look again when the successor is due"
    );
}

#[test]
fn successor_is_announced_for_propagation_time_then_takes_over_and_the_old_key_retires() {
    let s = spec("720h", "1h", "25h");
    let mut w = booted(&s);
    w.settle(&s, at(719 * HOUR));
    assert_eq!(
        (w.phase(KeyPhase::Active), w.phase(KeyPhase::Pending)),
        (vec!["k1"], vec!["k2"])
    );
    assert_eq!(
        w.jwks(),
        ["k1", "k2"],
        "the successor is published before it signs"
    );
    let pending = w.versions.iter().find(|v| v.kid == "k2").unwrap();
    assert_eq!(pending.activates.0, at(720 * HOUR));

    w.settle(&s, at(720 * HOUR - 1));
    assert_eq!(w.active(), Some("k1"), "not a second early");
    w.settle(&s, at(720 * HOUR));
    assert_eq!(
        (w.phase(KeyPhase::Active), w.phase(KeyPhase::Retired)),
        (vec!["k2"], vec!["k1"])
    );
    let retired = w.versions.iter().find(|v| v.kid == "k1").unwrap();
    assert_eq!(retired.expires.as_ref().unwrap().0, at(745 * HOUR));
    assert_eq!(w.jwks(), ["k1", "k2"], "the retired key stays published");

    w.settle(&s, at(745 * HOUR));
    assert_eq!(w.jwks(), ["k2"]);
    assert!(
        w.secrets.iter().all(|s| s.kid != "k1"),
        "its Secret is deleted"
    );
    assert!(
        w.versions.iter().all(|v| v.kid != "k1"),
        "and its entry dropped"
    );
}

#[test]
fn restart_at_each_write_continues_the_same_way() {
    // A restarted operator has only the world: run the rotation one write at a time and
    // compare with an uninterrupted run.
    let s = spec("10h", "1h", "2h");
    let mut straight = booted(&s);
    straight.settle(&s, at(9 * HOUR));
    straight.settle(&s, at(10 * HOUR));
    let mut stepwise = booted(&s);
    for now in [at(9 * HOUR), at(10 * HOUR)] {
        while stepwise.step(&s, now) {
            // Each loop iteration is a fresh process: nothing but `stepwise` carries over.
        }
    }
    assert_eq!(straight.versions, stepwise.versions);
    assert_eq!(straight.secrets, stepwise.secrets);
}

#[test]
fn orphan_secret_from_a_crash_is_adopted_or_removed() {
    let s = spec("10h", "1h", "2h");
    // Crash after creating the first Secret: the next run adopts it as the active key.
    let mut w = World::default();
    w.step(&s, at(0));
    let mut restarted = w.clone();
    restarted.settle(&s, at(5));
    assert_eq!(restarted.active(), Some("k1"));
    // A Secret nobody needs (say, left by an older operator) is deleted.
    let mut w = booted(&s);
    w.secrets.push(KeySecret {
        name: "stray".into(),
        kid: "stray".into(),
    });
    assert_eq!(
        w.plan(&s, at(1)).step,
        Some(Step::DeleteKeySecret("stray".into()))
    );
}

#[test]
fn clock_jump_forward_still_passes_through_every_phase() {
    let s = spec("10h", "1h", "2h");
    let mut w = booted(&s);
    // The operator was down for days: it rotates (announce, then activate) rather than
    // skipping the announcement.
    w.settle(&s, at(100 * HOUR));
    assert_eq!(
        w.active(),
        Some("k1"),
        "the old key signs until its successor was announced for propagationTime"
    );
    assert_eq!(w.phase(KeyPhase::Pending), ["k2"]);
    w.settle(&s, at(101 * HOUR));
    assert_eq!(w.active(), Some("k2"));
}

#[test]
fn rotate_annotation_starts_a_normal_rotation_once() {
    let s = spec("720h", "1h", "25h");
    let mut w = booted(&s);
    w.rotate = Some("2026-11-26".into());
    w.settle(&s, at(10));
    assert_eq!(w.phase(KeyPhase::Pending), ["k2"]);
    assert_eq!(w.rotate_done.as_deref(), Some("2026-11-26"));
    w.settle(&s, at(10 + HOUR));
    assert_eq!(w.active(), Some("k2"));
    // The same value again does nothing.
    w.settle(&s, at(20 + HOUR));
    assert!(w.phase(KeyPhase::Pending).is_empty());
}

#[test]
fn revoke_removes_the_key_at_once_and_a_new_one_signs_at_once() {
    let s = spec("720h", "1h", "25h");
    let mut w = booted(&s);
    w.revoke = Some("k1".into());
    w.settle(&s, at(10));
    assert_eq!(w.active(), Some("k2"));
    assert_eq!(w.jwks(), ["k2"], "the revoked key left the JWKS");
    assert!(w.secrets.iter().all(|s| s.kid != "k1"));
    assert!(
        w.plan(&s, at(11)).warning.is_none(),
        "a done revoke is not an unknown kid"
    );

    // With a pending key, the pending key takes over.
    let mut w = booted(&s);
    w.settle(&s, at(719 * HOUR));
    w.revoke = Some("k1".into());
    w.settle(&s, at(719 * HOUR + 5));
    assert_eq!(w.active(), Some("k2"));
    assert_eq!(w.jwks(), ["k2"]);
}

#[test]
fn revoke_of_an_unknown_kid_is_reported() {
    let s = spec("720h", "1h", "25h");
    let mut w = booted(&s);
    w.revoke = Some("nope".into());
    assert!(w.plan(&s, at(1)).warning.unwrap().contains("nope"));
}

/// Events of the property test.
#[derive(Clone, Debug)]
enum Event {
    /// Time moves on by this many seconds; the operator runs to a fixed point.
    Advance(i64),
    /// The operator makes this many writes, then crashes (the clock moves a little).
    CrashAfter(u8),
    Rotate,
    RevokeActive,
    RevokePending,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (1i64..40 * HOUR).prop_map(Event::Advance),
        3 => (0u8..4).prop_map(Event::CrashAfter),
        1 => Just(Event::Rotate),
        1 => Just(Event::RevokeActive),
        1 => Just(Event::RevokePending),
    ]
}

/// Publication history: per kid, when it was first published and first used to sign, and
/// when it stopped signing and left the JWKS.
#[derive(Default, Debug)]
struct History {
    published: std::collections::BTreeMap<String, Timestamp>,
    signed: std::collections::BTreeMap<String, Timestamp>,
    stopped: std::collections::BTreeMap<String, Timestamp>,
    unpublished: std::collections::BTreeMap<String, Timestamp>,
    revoked: std::collections::BTreeSet<String>,
    /// Keys that took over from a revoked active key: the documented exception to the
    /// announcement period.
    emergency: std::collections::BTreeSet<String>,
}

impl History {
    fn observe(&mut self, w: &World, now: Timestamp) {
        let jwks = w.jwks();
        // At every instant after bootstrap: exactly one active key, and it is published.
        assert_eq!(w.phase(KeyPhase::Active).len(), 1, "{w:#?}");
        let active = w.active().unwrap();
        assert!(
            jwks.contains(&active),
            "the active key {active} is published: {w:#?}"
        );
        for kid in &jwks {
            self.published.entry(kid.to_string()).or_insert(now);
        }
        self.signed.entry(active.to_string()).or_insert(now);
        for kid in self.signed.keys() {
            if kid != active {
                self.stopped.entry(kid.clone()).or_insert(now);
            }
        }
        for kid in self.published.keys() {
            if !jwks.contains(&kid.as_str()) {
                self.unpublished.entry(kid.clone()).or_insert(now);
            }
        }
        for v in &w.versions {
            if v.phase == KeyPhase::Revoked {
                self.revoked.insert(v.kid.clone());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_under_random_time_requests_and_crashes(events in prop::collection::vec(event(), 1..60)) {
        let s = spec("10h", "1h", "3h");
        let (propagation, retention) = (SignedDuration::from_hours(1), SignedDuration::from_hours(3));
        let mut now = at(0);
        let mut w = booted(&s);
        let mut history = History::default();
        history.observe(&w, now);
        let mut requests = 0;
        for event in events {
            match event {
                Event::Advance(secs) => {
                    now += SignedDuration::from_secs(secs);
                    // The operator wakes at least at every requeue time on the way.
                    while let Some(due) = w.plan(&s, now).requeue_at.filter(|d| *d < now) {
                        w.settle(&s, due.max(at(0)));
                        history.observe(&w, due);
                    }
                    w.settle(&s, now);
                }
                Event::CrashAfter(writes) => {
                    for _ in 0..writes {
                        w.step(&s, now);
                        history.observe(&w, now);
                    }
                    now += SignedDuration::from_secs(1);
                    w.settle(&s, now);
                }
                Event::Rotate => {
                    requests += 1;
                    w.rotate = Some(format!("r{requests}"));
                    w.settle(&s, now);
                }
                Event::RevokeActive | Event::RevokePending => {
                    let phase = if matches!(event, Event::RevokeActive) { KeyPhase::Active } else { KeyPhase::Pending };
                    if let Some(kid) = w.phase(phase).first() {
                        history.revoked.insert(kid.to_string());
                        w.revoke = Some(kid.to_string());
                        w.settle(&s, now);
                        if phase == KeyPhase::Active {
                            history.emergency.insert(w.active().unwrap().to_string());
                        }
                    }
                }
            }
            history.observe(&w, now);
            // At rest: every Secret has its entry and every entry its Secret.
            for secret in &w.secrets {
                prop_assert!(w.versions.iter().any(|v| v.secret_name == secret.name), "orphan Secret {secret:?}");
            }
            for v in &w.versions {
                prop_assert!(w.secrets.iter().any(|s| s.name == v.secret_name), "entry without Secret {v:?}");
            }
        }
        for (kid, signed) in &history.signed {
            let published = history.published[kid];
            // Keys that signed at once (the first key, or an emergency successor) are the
            // documented exceptions: nothing could have cached a JWKS without them.
            let emergency = *signed == published || history.emergency.contains(kid);
            if !emergency {
                prop_assert!(signed.duration_since(published) >= propagation, "{kid} signed {:?} after its publication", signed.duration_since(published));
            }
            if let (Some(stopped), Some(gone)) = (history.stopped.get(kid), history.unpublished.get(kid))
                && !history.revoked.contains(kid) {
                    prop_assert!(gone.duration_since(*stopped) >= retention, "{kid} left the JWKS {:?} after it stopped signing", gone.duration_since(*stopped));
                }
        }
    }
}

/// A verifier as deployed: a JWKS cache of its own (refetch when older than `max_age`, or on an
/// unknown kid at most once per `cooldown`, as jose's createRemoteJWKSet does), reading through
/// an HTTP cache that honours the JWKS response's `Cache-Control: max-age`.
struct Verifier {
    max_age: SignedDuration,
    cooldown: SignedDuration,
    http_copy: Option<(Timestamp, Vec<String>)>,
    local: Option<(Timestamp, Vec<String>)>,
}

impl Verifier {
    fn fetch(&mut self, origin: &[String], now: Timestamp) -> Vec<String> {
        let fresh = self
            .http_copy
            .as_ref()
            .is_some_and(|(at, _)| now.duration_since(*at) < self.max_age);
        if !fresh {
            self.http_copy = Some((now, origin.to_vec()));
        }
        let keys = self.http_copy.as_ref().unwrap().1.clone();
        self.local = Some((now, keys.clone()));
        keys
    }

    fn verifies(&mut self, kid: &str, origin: &[String], now: Timestamp) -> bool {
        let expired = self
            .local
            .as_ref()
            .is_none_or(|(at, _)| now.duration_since(*at) >= self.max_age);
        if expired {
            self.fetch(origin, now);
        }
        let (fetched_at, keys) = self.local.clone().unwrap();
        if keys.iter().any(|k| k == kid) {
            return true;
        }
        if now.duration_since(fetched_at) >= self.cooldown {
            return self.fetch(origin, now).iter().any(|k| k == kid);
        }
        false
    }
}

/// Signs a token every 10 s with the then-active key through three rotations, verified by
/// verifiers that started at different moments (their caches refresh out of step with the
/// rotations), and returns how many verifications failed.
fn failed_verifications(propagation: &str, max_age_secs: i64) -> usize {
    let s = spec("2h", propagation, "1h");
    let mut w = booted(&s);
    let new_verifier = || Verifier {
        max_age: SignedDuration::from_secs(max_age_secs),
        cooldown: SignedDuration::from_secs(30),
        http_copy: None,
        local: None,
    };
    // One verifier starting every 90 s across one max-age period.
    let starts: Vec<Timestamp> = (0..max_age_secs / 90).map(|i| at(i * 90)).collect();
    let mut verifiers: Vec<Verifier> = starts.iter().map(|_| new_verifier()).collect();
    let mut failures = 0;
    let mut rotations = std::collections::BTreeSet::new();
    let mut now = at(0);
    while rotations.len() < 4 {
        w.settle(&s, now);
        let active = w.active().unwrap().to_owned();
        rotations.insert(active.clone());
        let published: Vec<String> = w.jwks().into_iter().map(str::to_owned).collect();
        for (verifier, start) in verifiers.iter_mut().zip(&starts) {
            if now >= *start && !verifier.verifies(&active, &published, now) {
                failures += 1;
            }
        }
        now += SignedDuration::from_secs(10);
    }
    failures
}

#[test]
fn verifier_with_a_max_age_cache_never_fails_across_rotations() {
    // propagationTime (1h) is at least the JWKS max-age (30m).
    assert_eq!(failed_verifications("1h", 30 * 60), 0);
}

#[test]
fn verifier_fails_when_propagation_is_shorter_than_the_max_age() {
    // Negative control: the same verifier, with the key announced for less than max-age.
    assert!(failed_verifications("10m", 30 * 60) > 0);
}

/// A pending key due to activate waits until every live replica publishes it; then it takes
/// over. With no replica reporting there is nothing to wait for.
#[test]
fn a_due_key_activates_only_once_every_live_replica_publishes_it() {
    let spec = spec("24h", "1h", "2h");
    let mut world = World::default();
    world.settle(&spec, at(0));
    let first = world.versions[0].kid.clone();
    assert_eq!(
        world.versions[0].phase,
        KeyPhase::Active,
        "the first key at once"
    );
    // The next key is made an hour before the first has signed for a day.
    world.settle(&spec, at(23 * HOUR));
    let next = world
        .versions
        .iter()
        .find(|v| v.phase == KeyPhase::Pending)
        .expect("a pending key")
        .kid
        .clone();
    // Due now, but one replica still serves a JWKS without it.
    world.published = Some([first.clone()].into());
    world.settle(&spec, at(24 * HOUR + 60));
    let phase = |w: &World, kid: &str| w.versions.iter().find(|v| v.kid == kid).unwrap().phase;
    assert_eq!(
        phase(&world, &next),
        KeyPhase::Pending,
        "waits for the replicas"
    );
    assert_eq!(phase(&world, &first), KeyPhase::Active);
    let bound = world.plan(&spec, at(24 * HOUR + 60)).requeue_at;
    assert_eq!(
        bound,
        Some(at(25 * HOUR)),
        "the wait ends one propagation time later"
    );
    // A replica that never publishes it does not stop rotation for good.
    let mut stuck = world.clone();
    stuck.settle(&spec, at(25 * HOUR));
    assert_eq!(
        phase(&stuck, &next),
        KeyPhase::Active,
        "after one more propagation time"
    );
    // Every replica publishes it: it takes over.
    world.published = Some([first.clone(), next.clone()].into());
    world.settle(&spec, at(24 * HOUR + 61));
    assert_eq!(phase(&world, &next), KeyPhase::Active);
    assert_eq!(phase(&world, &first), KeyPhase::Retired);
}
