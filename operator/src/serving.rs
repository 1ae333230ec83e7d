//! The conditions that say whether an object is served (pure, `now` passed in): `Compiled`
//! (it is in the snapshot: what `Ready` meant before replicas reported), `Served` (every live
//! STS replica serves a snapshot that holds its current generation), `Ready` (both), and the
//! two that kstatus (`sigs.k8s.io/cli-utils`) and so GitOps tools read: `Reconciling` (True
//! while it waits for replicas) and `Stalled` (True when it will not get there by itself: left
//! out of the snapshot, or a replica refuses the snapshot).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::conditions::with_status;
use crate::pass::served::Served;

/// `conditions` (Ready first, meaning compiled) with Ready now requiring `served`, and
/// Compiled, Served, Reconciling and Stalled after it.
pub fn with_serving(
    mut conditions: Vec<Condition>,
    served: &Served,
    token_service: &str,
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let Some(at) = conditions.iter().position(|c| c.type_ == "Ready") else {
        return conditions;
    };
    let compiled = conditions[at].clone();
    let cond = |type_: &str, status: &str, reason: &str, message: String| {
        with_status(
            type_,
            status,
            reason.into(),
            message,
            previous,
            generation,
            now,
        )
    };
    let in_snapshot = compiled.status == "True";
    let (status, reason, message) = match (in_snapshot, served) {
        (false, _) => (
            "Unknown",
            "NotCompiled",
            "not in the snapshot; see Compiled".to_owned(),
        ),
        // Compiled, but no snapshot was written for it (the TokenService's Secret is taken).
        (true, Served::NotInSnapshot) => (
            "False",
            "SnapshotNotWritten",
            format!("TokenService {token_service} wrote no snapshot; see its Ready condition"),
        ),
        // No count here: a replica joining or leaving must not rewrite every object's status.
        (true, Served::Yes(_)) => (
            "True",
            "Served",
            format!("every live replica of TokenService {token_service} serves this generation"),
        ),
        (true, Served::Behind(names, n)) => (
            "False",
            "NotYetServed",
            format!(
                "{} of {n} live replicas of TokenService {token_service} still serve an older snapshot: {}",
                names.len(),
                names.join(", ")
            ),
        ),
        (true, Served::Refused(replica, why)) => (
            "False",
            "SnapshotRefused",
            format!(
                "replica {replica} of TokenService {token_service} refused the snapshot: {why}"
            ),
        ),
        (true, Served::NoReplicas) => (
            "False",
            "NoReplicas",
            format!("no live STS replica of TokenService {token_service} reports what it serves"),
        ),
    };
    let served_condition = cond("Served", status, reason, message.clone());
    let ready = match (in_snapshot, status) {
        (false, _) => cond("Ready", "False", &compiled.reason, compiled.message.clone()),
        (true, "True") => cond("Ready", "True", reason, message.clone()),
        (true, _) => cond("Ready", "False", reason, message.clone()),
    };
    let waiting = in_snapshot && matches!(served, Served::Behind(..) | Served::NoReplicas);
    let stuck = !in_snapshot || matches!(served, Served::Refused(..) | Served::NotInSnapshot);
    let reconciling = match waiting {
        true => cond("Reconciling", "True", reason, message.clone()),
        false => cond("Reconciling", "False", "Settled", String::new()),
    };
    let stalled = match (stuck, in_snapshot) {
        (true, true) => cond("Stalled", "True", reason, message),
        (true, false) => cond(
            "Stalled",
            "True",
            &compiled.reason,
            compiled.message.clone(),
        ),
        (false, _) => cond("Stalled", "False", "Progressing", String::new()),
    };
    let mut renamed = compiled;
    renamed.type_ = "Compiled".into();
    renamed.last_transition_time = previous
        .iter()
        .find(|c| c.type_ == "Compiled" && c.status == renamed.status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    conditions[at] = ready;
    let extra = [renamed, served_condition, reconciling, stalled];
    conditions.splice(at + 1..at + 1, extra);
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    fn compiled(status: &str, reason: &str) -> Vec<Condition> {
        vec![with_status(
            "Ready",
            status,
            reason.into(),
            "m".into(),
            &[],
            Some(2),
            &at(1),
        )]
    }

    fn summary(conditions: &[Condition]) -> Vec<(String, String, String)> {
        conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect()
    }

    fn row(t: &str, s: &str, r: &str) -> (String, String, String) {
        (t.into(), s.into(), r.into())
    }

    #[test]
    fn ready_needs_the_snapshot_and_every_live_replica() {
        let served = with_serving(
            compiled("True", "Compiled"),
            &Served::Yes(3),
            "signet",
            &[],
            Some(2),
            &at(5),
        );
        assert_eq!(
            summary(&served),
            [
                row("Ready", "True", "Served"),
                row("Compiled", "True", "Compiled"),
                row("Served", "True", "Served"),
                row("Reconciling", "False", "Settled"),
                row("Stalled", "False", "Progressing"),
            ]
        );
        let behind = Served::Behind(vec!["sts-1".into()], 3);
        let waiting = with_serving(
            compiled("True", "Compiled"),
            &behind,
            "signet",
            &served,
            Some(2),
            &at(6),
        );
        assert_eq!(waiting[0].status, "False");
        assert_eq!(waiting[0].reason, "NotYetServed");
        assert!(
            waiting[0].message.contains("sts-1"),
            "{}",
            waiting[0].message
        );
        assert_eq!(
            summary(&waiting)[3],
            row("Reconciling", "True", "NotYetServed")
        );
        assert_eq!(
            waiting[1].last_transition_time,
            at(5),
            "Compiled did not change"
        );

        let refused = Served::Refused("sts-2".into(), "unknown schema version".into());
        let stuck = with_serving(
            compiled("True", "Compiled"),
            &refused,
            "signet",
            &[],
            Some(2),
            &at(6),
        );
        assert_eq!(summary(&stuck)[0], row("Ready", "False", "SnapshotRefused"));
        assert!(stuck[0].message.contains("sts-2") && stuck[0].message.contains("unknown schema"));
        assert_eq!(
            summary(&stuck)[4],
            row("Stalled", "True", "SnapshotRefused")
        );

        let none = with_serving(
            compiled("True", "Compiled"),
            &Served::NoReplicas,
            "signet",
            &[],
            Some(2),
            &at(6),
        );
        assert_eq!(summary(&none)[0], row("Ready", "False", "NoReplicas"));
    }

    /// Compiled, but its TokenService wrote no snapshot (its Secret is someone else's): not
    /// ready, and stalled, since waiting will not help.
    #[test]
    fn an_object_whose_snapshot_was_not_written_is_stalled() {
        let out = with_serving(
            compiled("True", "Compiled"),
            &Served::NotInSnapshot,
            "signet",
            &[],
            Some(2),
            &at(5),
        );
        assert_eq!(
            summary(&out)[0],
            row("Ready", "False", "SnapshotNotWritten")
        );
        assert_eq!(
            summary(&out)[4],
            row("Stalled", "True", "SnapshotNotWritten")
        );
    }

    #[test]
    fn an_object_left_out_of_the_snapshot_keeps_its_reason_and_is_stalled() {
        let out = with_serving(
            compiled("False", "ClientIdConflict"),
            &Served::NotInSnapshot,
            "signet",
            &[],
            Some(2),
            &at(5),
        );
        assert_eq!(
            summary(&out),
            [
                row("Ready", "False", "ClientIdConflict"),
                row("Compiled", "False", "ClientIdConflict"),
                row("Served", "Unknown", "NotCompiled"),
                row("Reconciling", "False", "Settled"),
                row("Stalled", "True", "ClientIdConflict"),
            ]
        );
    }
}
