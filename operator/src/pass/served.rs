//! Whether the STS replicas serve an object's current generation (pure, `now` passed in).
//!
//! Per TokenService the operator keeps the snapshots it has written, newest last, each with the
//! generation of every object it holds. An object is Served when every live replica serves a
//! snapshot at least as new as the first one of the unbroken run that ends at the newest and
//! holds the object's current generation. A replica serving a hash the history does not know
//! (older than it, or from before this operator started) is behind: it is waited for, never
//! guessed to be new enough.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use signet_crds::compile::{Inputs, Kind, ObjectKey, Output};
use signet_crds::replica::{self, Report};

/// How many snapshot hashes a history keeps: a replica serving an older one counts as behind
/// for every object until it catches up.
const KEPT: usize = 64;

/// An object of a snapshot.
pub type Object = (Kind, ObjectKey);

/// The snapshots one TokenService was written as: the last hashes, numbered in the order
/// written, and for each object the snapshot from which on every one held it at its present
/// generation. One entry per object, however many snapshots are kept (10,000 clients cost
/// 10,000 entries, not 10,000 per snapshot).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// `(hash, number)`, oldest first.
    hashes: VecDeque<(String, u64)>,
    /// Per object: its generation in the newest snapshot, and the number of the first snapshot
    /// of the unbroken run, ending at the newest, that held it at that generation.
    since: BTreeMap<Object, (i64, u64)>,
    /// The number the next snapshot gets.
    next: u64,
}

impl History {
    /// Records that the snapshot `hash` holds `generations`. The newest hash again (a pass with
    /// nothing new, or a spec change that compiles to the same bytes) is no new snapshot, but
    /// the objects' generations are updated: the snapshot served holds the new ones too.
    pub fn record(&mut self, hash: &str, generations: BTreeMap<Object, i64>) {
        let again = self
            .hashes
            .back()
            .filter(|(h, _)| h == hash)
            .map(|(_, n)| *n);
        let number = again.unwrap_or(self.next);
        let before = std::mem::take(&mut self.since);
        self.since = generations
            .into_iter()
            .map(|(object, generation)| {
                let kept = before.get(&object).filter(|(g, _)| *g == generation);
                let first = kept.map_or(number, |(_, first)| *first);
                (object, (generation, first))
            })
            .collect();
        if again.is_none() {
            self.next += 1;
            self.hashes.push_back((hash.to_owned(), number));
            while self.hashes.len() > KEPT {
                self.hashes.pop_front();
            }
        }
    }

    /// The hash of the newest snapshot.
    pub fn newest(&self) -> Option<&str> {
        self.hashes.back().map(|(hash, _)| hash.as_str())
    }

    /// The number of the snapshot `hash`, if it is one of those kept.
    fn position(&self, hash: &str) -> Option<u64> {
        self.hashes
            .iter()
            .rev()
            .find(|(h, _)| h == hash)
            .map(|(_, n)| *n)
    }

    /// The number of the first snapshot of the run, ending at the newest, that holds `object`
    /// at `generation`; None when the newest does not hold it.
    fn holding_since(&self, object: &Object, generation: i64) -> Option<u64> {
        self.since
            .get(object)
            .filter(|(g, _)| *g == generation)
            .map(|(_, first)| *first)
    }
}

/// What the live replicas of each TokenService serve, with its snapshot history.
#[derive(Debug, Default)]
pub struct Serving {
    /// By TokenService: its history and its live replicas' reports, by replica name.
    pub token_services: BTreeMap<ObjectKey, (Arc<History>, Vec<Report>)>,
}

impl Serving {
    /// Whether the replicas of `object`'s TokenService serve its `generation`.
    pub fn of(
        &self,
        token_service: Option<&ObjectKey>,
        object: &Object,
        generation: i64,
    ) -> Served {
        match token_service.and_then(|ts| self.token_services.get(ts)) {
            Some((history, replicas)) => served(history, replicas, object, generation),
            None => Served::NotInSnapshot,
        }
    }
}

/// Records in `histories` the snapshot each TokenService now has written (not one whose Secret
/// is someone else's: nothing was written), and reads the live reports among `leases`.
pub fn observe(
    histories: &mut BTreeMap<ObjectKey, Arc<History>>,
    inputs: &Inputs,
    out: &Output,
    conflicts: &BTreeSet<ObjectKey>,
    leases: &[Arc<Lease>],
    now: Timestamp,
) -> Serving {
    histories.retain(|ts, _| out.snapshots.contains_key(ts));
    let mut serving = Serving::default();
    for (ts, snapshot) in &out.snapshots {
        if conflicts.contains(ts) {
            continue;
        }
        let history = histories.entry(ts.clone()).or_default();
        // Not shared by then (the last pass's Serving is gone): recorded in place, not copied.
        Arc::make_mut(history).record(&snapshot.hash, generations(inputs, out, ts));
        let mine = leases
            .iter()
            .filter(|l| l.namespace().as_deref() == Some(ts.namespace.as_str()));
        let mut replicas = Vec::new();
        for lease in mine {
            // A replica that serves nothing yet and refused nothing is starting: it answers
            // /readyz with 503 and gets no traffic, so it does not hold every object back.
            let report = replica::live_report(lease, &ts.name, now)
                .filter(|r| r.serving.is_some() || r.refused.is_some());
            if let Some(report) = report {
                replicas.push(report);
            }
        }
        replicas.sort_by(|a, b| a.replica.cmp(&b.replica));
        serving
            .token_services
            .insert(ts.clone(), (Arc::clone(history), replicas));
    }
    serving
}

/// The generation of every object the snapshot of `ts` holds.
fn generations(inputs: &Inputs, out: &Output, ts: &ObjectKey) -> BTreeMap<Object, i64> {
    let mut held = BTreeMap::new();
    let mut add = |kind: Kind, meta: &ObjectMeta| {
        let key = ObjectKey::new(
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        );
        let report = out.reports.get(&(kind, key.clone()));
        if report.is_some_and(|r| r.included() && r.token_service.as_ref() == Some(ts)) {
            held.insert((kind, key), meta.generation.unwrap_or_default());
        }
    };
    for client in &inputs.clients {
        add(Kind::OidcClient, &client.metadata);
    }
    for scope in &inputs.scopes {
        add(Kind::ApiScope, &scope.metadata);
    }
    for idp in &inputs.identity_providers {
        add(Kind::IdentityProvider, &idp.metadata);
    }
    held
}

/// Whether the live replicas serve an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    /// Every live replica serves it (their count).
    Yes(usize),
    /// These replicas serve an older snapshot (of this many live ones).
    Behind(Vec<String>, usize),
    /// This replica refused the snapshot that holds it, for this reason.
    Refused(String, String),
    /// No replica reports serving this TokenService.
    NoReplicas,
    /// The newest snapshot does not hold this generation (it is not compiled in).
    NotInSnapshot,
}

/// Whether `replicas` (the live ones) serve `object` at `generation`, by `history`.
pub fn served(history: &History, replicas: &[Report], object: &Object, generation: i64) -> Served {
    let Some(since) = history.holding_since(object, generation) else {
        return Served::NotInSnapshot;
    };
    if replicas.is_empty() {
        return Served::NoReplicas;
    }
    let newest = history.newest().unwrap_or_default();
    let mut behind = Vec::new();
    for replica in replicas {
        let at = replica.serving.as_deref().and_then(|h| history.position(h));
        if at.is_some_and(|at| at >= since) {
            continue;
        }
        // Refusing the newest snapshot, it will not catch up by itself.
        if let Some((hash, reason)) = &replica.refused
            && hash.as_deref().is_none_or(|h| h == newest)
        {
            return Served::Refused(replica.replica.clone(), reason.clone());
        }
        behind.push(replica.replica.clone());
    }
    if behind.is_empty() {
        Served::Yes(replicas.len())
    } else {
        Served::Behind(behind, replicas.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str) -> Object {
        (Kind::OidcClient, ObjectKey::new("team-a", name))
    }

    fn replica(name: &str, serving: &str) -> Report {
        Report {
            replica: name.into(),
            serving: Some(serving.into()),
            ..Default::default()
        }
    }

    /// Three snapshots: `app` at generation 1 in h1 and h2, generation 2 in h3; `other` only
    /// from h2 on.
    fn history() -> History {
        let mut history = History::default();
        history.record("h1", BTreeMap::from([(client("app"), 1)]));
        history.record(
            "h2",
            BTreeMap::from([(client("app"), 1), (client("other"), 1)]),
        );
        history.record(
            "h2",
            BTreeMap::from([(client("app"), 1), (client("other"), 1)]),
        );
        history.record(
            "h3",
            BTreeMap::from([(client("app"), 2), (client("other"), 1)]),
        );
        history
    }

    #[test]
    fn an_object_is_served_once_every_live_replica_serves_a_snapshot_that_holds_it() {
        let history = history();
        let app = client("app");
        let other = client("other");
        assert_eq!(
            history.newest(),
            Some("h3"),
            "a repeated hash is recorded once"
        );
        assert_eq!(history.position("h2"), Some(1));
        let all_new = [replica("a", "h3"), replica("b", "h3")];
        assert_eq!(served(&history, &all_new, &app, 2), Served::Yes(2));
        let one_old = [replica("a", "h3"), replica("b", "h2")];
        assert_eq!(
            served(&history, &one_old, &app, 2),
            Served::Behind(vec!["b".into()], 2)
        );
        assert_eq!(
            served(&history, &one_old, &other, 1),
            Served::Yes(2),
            "h2 holds it"
        );
        let older = [replica("a", "h1")];
        assert_eq!(
            served(&history, &older, &other, 1),
            Served::Behind(vec!["a".into()], 1)
        );
        let unknown = [replica("a", "from-before-this-operator")];
        assert_eq!(
            served(&history, &unknown, &other, 1),
            Served::Behind(vec!["a".into()], 1)
        );
        assert_eq!(served(&history, &[], &app, 2), Served::NoReplicas);
        assert_eq!(
            served(&history, &all_new, &app, 1),
            Served::NotInSnapshot,
            "an old generation"
        );
        let starting = [Report {
            replica: "new".into(),
            ..Default::default()
        }];
        assert_eq!(
            served(&history, &starting, &app, 2),
            Served::Behind(vec!["new".into()], 1)
        );
    }

    /// A spec change that compiles to the same snapshot (same hash) is served by what serves it.
    #[test]
    fn a_new_generation_in_the_same_bytes_is_served_at_once() {
        let mut history = history();
        let same = BTreeMap::from([(client("app"), 3), (client("other"), 1)]);
        history.record("h3", same);
        let replicas = [replica("a", "h3")];
        assert_eq!(
            served(&history, &replicas, &client("app"), 3),
            Served::Yes(1)
        );
        let behind = [replica("a", "h2")];
        let waiting = served(&history, &behind, &client("app"), 3);
        assert_eq!(waiting, Served::Behind(vec!["a".into()], 1));
    }

    #[test]
    fn a_replica_refusing_the_newest_snapshot_is_named_with_its_reason() {
        let history = history();
        let mut refusing = replica("b", "h2");
        refusing.refused = Some((
            Some("h3".into()),
            "unknown schema version 1.5 (this STS reads 0.x)".into(),
        ));
        let replicas = [replica("a", "h3"), refusing.clone()];
        assert_eq!(
            served(&history, &replicas, &client("app"), 2),
            Served::Refused(
                "b".into(),
                "unknown schema version 1.5 (this STS reads 0.x)".into()
            )
        );
        // What it still serves is new enough for an object the refused snapshot did not change.
        assert_eq!(
            served(&history, &replicas, &client("other"), 1),
            Served::Yes(2)
        );
        // A refusal of an older snapshot is history: it is merely behind.
        refusing.refused = Some((Some("h1".into()), "old".into()));
        assert_eq!(
            served(&history, &[refusing], &client("app"), 2),
            Served::Behind(vec!["b".into()], 1)
        );
    }
}
