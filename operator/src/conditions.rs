//! Status conditions from a compile report: pure, with `now` passed in.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use signet_crds::compile::{ConditionType, Kind, Report};

/// The condition types each kind always carries, besides `Ready`.
fn specific(kind: Kind) -> &'static [ConditionType] {
    match kind {
        Kind::OidcClient => &[
            ConditionType::SecretReady,
            ConditionType::Conflict,
            ConditionType::Ambiguous,
            ConditionType::ScopesResolved,
            ConditionType::Restricted,
        ],
        Kind::ApiScope => &[
            ConditionType::Conflict,
            ConditionType::Ambiguous,
            ConditionType::Restricted,
        ],
        Kind::TokenService | Kind::IdentityProvider | Kind::SigningKey => &[],
    }
}

fn name(condition: ConditionType) -> &'static str {
    match condition {
        ConditionType::Ready => "Ready",
        ConditionType::Conflict => "Conflict",
        ConditionType::Ambiguous => "Ambiguous",
        ConditionType::ScopesResolved => "ScopesResolved",
        ConditionType::SecretReady => "SecretReady",
        ConditionType::Restricted => "Restricted",
    }
}

/// The reason of a specific condition when nothing is wrong.
fn all_clear(condition: ConditionType) -> &'static str {
    match condition {
        ConditionType::Ready => "Compiled",
        ConditionType::Conflict => "NoConflict",
        ConditionType::Ambiguous => "Unambiguous",
        ConditionType::ScopesResolved => "ScopesResolved",
        ConditionType::SecretReady => "SecretReady",
        ConditionType::Restricted => "AsDeclared",
    }
}

/// Whether a condition of this type reports a problem when True (Conflict, Ambiguous) rather
/// than when False (Ready, SecretReady, ScopesResolved).
fn true_is_bad(condition: ConditionType) -> bool {
    matches!(
        condition,
        ConditionType::Conflict | ConditionType::Ambiguous | ConditionType::Restricted
    )
}

/// The conditions for an object of `kind` with `report`. A condition whose status did not
/// change keeps its `lastTransitionTime` from `previous`.
pub fn conditions(
    kind: Kind,
    report: &Report,
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out = Vec::new();
    // Ready: the first problem that keeps the object out (for a TokenService, any problem).
    let blocking = report.problems.iter().find(|p| {
        p.excluded || (kind == Kind::TokenService && p.condition == ConditionType::Ready)
    });
    let (status, reason, message) = match blocking {
        Some(p) => (false, p.reason.to_owned(), p.message.clone()),
        None => match &report.token_service {
            Some(ts) if kind == Kind::TokenService => {
                (true, "Compiled".into(), "the snapshot is up to date".into())
            }
            Some(ts) => (
                true,
                "Compiled".into(),
                format!("served by TokenService {ts}"),
            ),
            None => (
                false,
                "NoTokenService".into(),
                "no TokenService uses this object".into(),
            ),
        },
    };
    out.push(condition(
        ConditionType::Ready,
        status,
        reason,
        message,
        previous,
        generation,
        now,
    ));

    for &ctype in specific(kind) {
        // Several problems of one type (a clamped lifetime and a refused trust): the first
        // gives the reason, the message tells them all.
        let problems: Vec<_> = report
            .problems
            .iter()
            .filter(|p| p.condition == ctype)
            .collect();
        let bad = true_is_bad(ctype);
        let (status, reason, message) = match problems.first() {
            Some(p) => (
                bad,
                p.reason.to_owned(),
                problems
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            None => (!bad, all_clear(ctype).to_owned(), String::new()),
        };
        out.push(condition(
            ctype, status, reason, message, previous, generation, now,
        ));
    }
    if let Some(found) = service_accounts_found(report, previous, generation, now) {
        out.push(found);
    }
    out
}

/// `ServiceAccountsFound`, on a client that accepts ServiceAccount tokens: which it accepts
/// and whether each exists. A missing one is not an error of the client (the Deployment may
/// come later), so Ready does not depend on it.
fn service_accounts_found(
    report: &Report,
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Option<Condition> {
    if report.service_accounts.is_empty() {
        return None;
    }
    let missing: Vec<&str> = report
        .service_accounts
        .iter()
        .filter(|(_, found)| *found == Some(false))
        .map(|(name, _)| name.as_str())
        .collect();
    let listed: Vec<String> = report
        .service_accounts
        .iter()
        .map(|(name, found)| match found {
            Some(true) => format!("{name} (found)"),
            Some(false) => format!("{name} (not found)"),
            None => name.clone(),
        })
        .collect();
    let message = format!(
        "accepts the tokens of ServiceAccounts {}",
        listed.join(", ")
    );
    if let Some(cluster) = &report.workload_cluster {
        // Another cluster's ServiceAccounts are not visible from here.
        return Some(with_status(
            "ServiceAccountsFound",
            "Unknown",
            "OtherCluster".into(),
            format!("{message} of trusted cluster {cluster}, which the operator cannot see"),
            previous,
            generation,
            now,
        ));
    }
    let reason = match missing.is_empty() {
        true => "Found",
        false => "ServiceAccountNotFound",
    };
    Some(named(
        "ServiceAccountsFound",
        missing.is_empty(),
        reason.into(),
        message,
        previous,
        generation,
        now,
    ))
}

fn condition(
    ctype: ConditionType,
    status: bool,
    reason: String,
    message: String,
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    named(
        name(ctype),
        status,
        reason,
        message,
        previous,
        generation,
        now,
    )
}

/// A condition of type `type_`; one whose status did not change keeps its transition time.
fn named(
    type_: &str,
    status: bool,
    reason: String,
    message: String,
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let status = if status { "True" } else { "False" };
    with_status(type_, status, reason, message, previous, generation, now)
}

/// [`named`], with any status (`Unknown` included).
pub(crate) fn with_status(
    type_: &str,
    status: &str,
    reason: String,
    message: String,
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let type_ = type_.to_owned();
    let status = status.to_owned();
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    Condition {
        type_,
        status,
        reason,
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Whether two condition lists say the same, ignoring transition times (which only change
/// together with a status).
pub fn same(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.type_ == y.type_
                && x.status == y.status
                && x.reason == y.reason
                && x.message == y.message
                && x.observed_generation == y.observed_generation
        })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;
    use signet_crds::compile::{ObjectKey, Problem};

    use super::*;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn served() -> Report {
        Report {
            token_service: Some(ObjectKey::new("idp", "signet")),
            ..Default::default()
        }
    }

    fn find<'a>(conditions: &'a [Condition], t: &str) -> &'a Condition {
        conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn a_compiled_client_is_ready_with_every_specific_condition() {
        let c = conditions(Kind::OidcClient, &served(), &[], Some(3), &at(100));
        let summary: Vec<_> = c
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("Ready", "True"),
                ("SecretReady", "True"),
                ("Conflict", "False"),
                ("Ambiguous", "False"),
                ("ScopesResolved", "True"),
                ("Restricted", "False")
            ]
        );
        assert!(c.iter().all(|c| c.observed_generation == Some(3)));
    }

    #[test]
    fn a_restricted_client_stays_ready_and_the_condition_tells_every_override() {
        let mut report = served();
        for (reason, message) in [("TrustNotGranted", "trust"), ("LifetimeClamped", "life")] {
            report.problems.push(Problem {
                condition: ConditionType::Restricted,
                reason,
                message: message.into(),
                excluded: false,
            });
        }
        let c = conditions(Kind::OidcClient, &report, &[], Some(1), &at(100));
        assert_eq!(find(&c, "Ready").status, "True");
        let restricted = find(&c, "Restricted");
        assert_eq!(restricted.status, "True");
        assert_eq!(restricted.reason, "TrustNotGranted");
        assert_eq!(restricted.message, "trust; life");
    }

    /// A delegation entry outside the ApiScope's own namespace rule is ignored, and said so.
    #[test]
    fn an_api_scope_tells_which_delegation_entries_it_ignores() {
        let mut report = served();
        report.problems.push(Problem {
            condition: ConditionType::Restricted,
            reason: "DelegationNamespaceNotAllowed",
            message: "ignored: team-c/intruder".into(),
            excluded: false,
        });
        let c = conditions(Kind::ApiScope, &report, &[], Some(1), &at(100));
        assert_eq!(find(&c, "Ready").status, "True");
        let restricted = find(&c, "Restricted");
        assert_eq!(restricted.status, "True");
        assert_eq!(restricted.reason, "DelegationNamespaceNotAllowed");
        let clear = conditions(Kind::ApiScope, &served(), &[], Some(1), &at(100));
        assert_eq!(find(&clear, "Restricted").status, "False");
    }

    #[test]
    fn an_excluding_problem_makes_ready_false_with_its_reason() {
        let mut report = served();
        report.problems.push(Problem {
            condition: ConditionType::Conflict,
            reason: "ClientIdConflict",
            message: "taken".into(),
            excluded: true,
        });
        let c = conditions(Kind::OidcClient, &report, &[], Some(1), &at(100));
        assert_eq!(find(&c, "Ready").status, "False");
        assert_eq!(find(&c, "Ready").reason, "ClientIdConflict");
        assert_eq!(find(&c, "Conflict").status, "True");
    }

    #[test]
    fn a_partial_scope_problem_keeps_the_client_ready() {
        let mut report = served();
        report.problems.push(Problem {
            condition: ConditionType::ScopesResolved,
            reason: "ScopesNotResolved",
            message: "not granted: x".into(),
            excluded: false,
        });
        let c = conditions(Kind::OidcClient, &report, &[], None, &at(100));
        assert_eq!(find(&c, "Ready").status, "True");
        assert_eq!(find(&c, "ScopesResolved").status, "False");
    }

    #[test]
    fn transition_time_is_kept_while_the_status_stays() {
        let first = conditions(Kind::TokenService, &served(), &[], Some(1), &at(100));
        let again = conditions(Kind::TokenService, &served(), &first, Some(2), &at(200));
        assert_eq!(find(&again, "Ready").last_transition_time, at(100));

        let mut failing = served();
        failing.problems.push(Problem {
            condition: ConditionType::Ready,
            reason: "NoActiveKey",
            message: "none".into(),
            excluded: false,
        });
        let changed = conditions(Kind::TokenService, &failing, &again, Some(2), &at(300));
        assert_eq!(find(&changed, "Ready").status, "False");
        assert_eq!(find(&changed, "Ready").last_transition_time, at(300));
    }

    #[test]
    fn a_workload_client_says_which_service_accounts_exist_and_stays_ready_without_them() {
        let report = Report {
            service_accounts: vec![("batch".into(), Some(false)), ("worker".into(), Some(true))],
            ..served()
        };
        let c = conditions(Kind::OidcClient, &report, &[], Some(1), &at(100));
        let found = find(&c, "ServiceAccountsFound");
        assert_eq!(
            (found.status.as_str(), found.reason.as_str()),
            ("False", "ServiceAccountNotFound")
        );
        assert_eq!(
            found.message,
            "accepts the tokens of ServiceAccounts batch (not found), worker (found)"
        );
        assert_eq!(find(&c, "Ready").status, "True");
        let all = Report {
            service_accounts: vec![("worker".into(), Some(true))],
            ..served()
        };
        let later = conditions(Kind::OidcClient, &all, &c, Some(1), &at(200));
        let found = find(&later, "ServiceAccountsFound");
        assert_eq!(
            (found.status.as_str(), found.reason.as_str()),
            ("True", "Found")
        );
        assert_eq!(
            found.last_transition_time,
            at(200),
            "a change of status is a transition"
        );
        assert!(
            conditions(Kind::OidcClient, &served(), &[], Some(1), &at(100))
                .iter()
                .all(|c| c.type_ != "ServiceAccountsFound"),
            "only on workload clients"
        );
    }

    #[test]
    fn a_client_of_another_cluster_says_its_service_accounts_are_not_visible() {
        let report = Report {
            service_accounts: vec![("worker".into(), None)],
            workload_cluster: Some("east".into()),
            ..served()
        };
        let c = conditions(Kind::OidcClient, &report, &[], Some(1), &at(100));
        let found = find(&c, "ServiceAccountsFound");
        assert_eq!(
            (found.status.as_str(), found.reason.as_str()),
            ("Unknown", "OtherCluster")
        );
        assert_eq!(
            found.message,
            "accepts the tokens of ServiceAccounts worker of trusted cluster east, which the operator cannot see"
        );
        assert_eq!(find(&c, "Ready").status, "True");
    }
}
