//! What an STS replica serves, as it reports it: one `coordination.k8s.io` Lease per replica in
//! its TokenService's namespace, named `{token_service}-sts-{replica}`. The STS writes it (and
//! renews it every few seconds); the operator reads it to tell whether every live replica serves
//! the snapshot that holds an object's current generation. A Lease that is not renewed within
//! its duration is a replica that stopped: it drops out by itself, and no one has to delete it.
//!
//! Both sides use this one module, so the form cannot drift between them.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

/// Label: the TokenService the replica serves.
pub const TOKEN_SERVICE_LABEL: &str = "signet.dev/token-service";
/// Label: marks a replica report (and selects them).
pub const REPORT_LABEL: &str = "signet.dev/sts-replica";
/// Annotation: the hash of the snapshot the replica serves.
pub const SERVING: &str = "signet.dev/serving";
/// Annotation: the hash of the newest snapshot the replica refused, if it refused the last one.
pub const REFUSED: &str = "signet.dev/refused";
/// Annotation: why.
pub const REFUSED_REASON: &str = "signet.dev/refused-reason";
/// Annotation: the key ids of the JWKS the replica publishes, comma-separated.
pub const KIDS: &str = "signet.dev/jwks-kids";
/// The longest refusal reason kept (an annotation is not a log).
const MAX_REASON: usize = 512;

/// One replica's report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The replica (its pod name).
    pub replica: String,
    /// Hash of the snapshot it serves; none before its first.
    pub serving: Option<String>,
    /// The hash it refused last (unknown when the bytes did not even name one) and why, while
    /// it has not served anything newer since.
    pub refused: Option<(Option<String>, String)>,
    /// Key ids it publishes in its JWKS, sorted.
    pub kids: Vec<String>,
}

/// The Lease name of `replica` of `token_service`.
pub fn lease_name(token_service: &str, replica: &str) -> String {
    format!("{token_service}-sts-{replica}")
}

/// When and for how long a report holds, and whose it is.
#[derive(Clone, Debug)]
pub struct Term {
    /// This renewal.
    pub renewed: Timestamp,
    /// The start of the replica's current unbroken run of renewals: a replica that was stopped
    /// for longer than its Lease starts a new one, which is how a reader that ignores plain
    /// renewals learns that it is back.
    pub acquired: Timestamp,
    /// Seconds the report holds after `renewed`.
    pub duration_secs: i32,
    /// The replica's Pod (name and uid), when it runs in one: it owns the Lease, so the
    /// garbage collector removes the report of a deleted pod.
    pub pod: Option<(String, String)>,
}

/// The Lease that says `report` for `term`.
pub fn to_lease(token_service: &str, report: &Report, term: &Term) -> Lease {
    let mut annotations = BTreeMap::new();
    if let Some(hash) = &report.serving {
        annotations.insert(SERVING.to_owned(), hash.clone());
    }
    if let Some((hash, reason)) = &report.refused {
        annotations.insert(REFUSED.to_owned(), hash.clone().unwrap_or_default());
        let reason: String = reason.chars().take(MAX_REASON).collect();
        annotations.insert(REFUSED_REASON.to_owned(), reason);
    }
    annotations.insert(KIDS.to_owned(), report.kids.join(","));
    Lease {
        metadata: ObjectMeta {
            name: Some(lease_name(token_service, &report.replica)),
            labels: Some(BTreeMap::from([
                (TOKEN_SERVICE_LABEL.to_owned(), token_service.to_owned()),
                (REPORT_LABEL.to_owned(), "true".to_owned()),
            ])),
            annotations: Some(annotations),
            owner_references: term.pod.as_ref().map(|(name, uid)| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    name: name.clone(),
                    uid: uid.clone(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(report.replica.clone()),
            lease_duration_seconds: Some(term.duration_secs),
            renew_time: Some(MicroTime(term.renewed)),
            acquire_time: Some(MicroTime(term.acquired)),
            ..Default::default()
        }),
    }
}

/// The longest a report may claim to hold: a forged or broken one cannot keep a replica "live"
/// for long after it stopped.
pub const MAX_DURATION_SECS: i64 = 180;
/// How far in the future a renewal may lie (clock skew): a later one is not believed.
const MAX_SKEW_SECS: i64 = 30;

/// The report of a Lease of `token_service` that is still valid at `now`; None for another
/// TokenService's, an expired one, one that is not a report, and one that does not hold
/// together: its name must be its holder's Lease name, its duration at most
/// [`MAX_DURATION_SECS`] and its renewal no later than `now` plus a small skew.
pub fn live_report(lease: &Lease, token_service: &str, now: Timestamp) -> Option<Report> {
    let labels = lease.metadata.labels.as_ref()?;
    if labels.get(TOKEN_SERVICE_LABEL).map(String::as_str) != Some(token_service)
        || !labels.contains_key(REPORT_LABEL)
    {
        return None;
    }
    let spec = lease.spec.as_ref()?;
    let holder = spec.holder_identity.as_deref()?;
    if lease.metadata.name.as_deref() != Some(lease_name(token_service, holder).as_str()) {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?.0.as_second();
    let duration = i64::from(spec.lease_duration_seconds?).min(MAX_DURATION_SECS);
    let now = now.as_second();
    if renewed + duration <= now || renewed > now + MAX_SKEW_SECS {
        return None;
    }
    let annotations = lease.metadata.annotations.clone().unwrap_or_default();
    let kids = annotations
        .get(KIDS)
        .map(|k| {
            k.split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let refused = annotations.get(REFUSED_REASON).map(|reason| {
        let hash = annotations.get(REFUSED).filter(|h| !h.is_empty()).cloned();
        (hash, reason.clone())
    });
    Some(Report {
        replica: holder.to_owned(),
        serving: annotations.get(SERVING).cloned(),
        refused,
        kids,
    })
}

/// When the Lease expires, if it is a report.
pub fn expiry(lease: &Lease) -> Option<Timestamp> {
    let spec = lease.spec.as_ref()?;
    let renewed = spec.renew_time.as_ref()?.0;
    let duration = i64::from(spec.lease_duration_seconds?).min(MAX_DURATION_SECS);
    renewed
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(duration))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn term(second: i64) -> Term {
        Term {
            renewed: at(second),
            acquired: at(second),
            duration_secs: 15,
            pod: None,
        }
    }

    #[test]
    fn a_report_reads_back_until_its_lease_expires() {
        let report = Report {
            replica: "sts-7d9f-abc".into(),
            serving: Some("a".repeat(64)),
            refused: Some((Some("b".repeat(64)), "unknown schema version 2.0".into())),
            kids: vec!["k1".into(), "k2".into()],
        };
        let lease = to_lease("signet", &report, &term(1_000));
        assert_eq!(
            lease.metadata.name.as_deref(),
            Some("signet-sts-sts-7d9f-abc")
        );
        assert_eq!(
            live_report(&lease, "signet", at(1_014)),
            Some(report.clone())
        );
        assert_eq!(live_report(&lease, "signet", at(1_015)), None, "expired");
        assert_eq!(
            live_report(&lease, "other", at(1_001)),
            None,
            "another TokenService's"
        );
        assert_eq!(expiry(&lease), Some(at(1_015)));

        // What does not hold together is no report.
        let mut renamed = lease.clone();
        renamed.metadata.name = Some("signet-sts-someone-else".into());
        assert_eq!(
            live_report(&renamed, "signet", at(1_001)),
            None,
            "name and holder differ"
        );
        let mut forever = lease.clone();
        forever.spec.as_mut().unwrap().lease_duration_seconds = Some(i32::MAX);
        assert_eq!(
            live_report(&forever, "signet", at(1_000 + MAX_DURATION_SECS)),
            None,
            "capped"
        );
        let mut ahead = lease.clone();
        ahead.spec.as_mut().unwrap().renew_time = Some(MicroTime(at(5_000)));
        assert_eq!(
            live_report(&ahead, "signet", at(1_001)),
            None,
            "renewed in the future"
        );

        let first = Report {
            replica: "r".into(),
            ..Default::default()
        };
        let mut owned = term(1_000);
        owned.pod = Some(("sts-0".into(), "uid-0".into()));
        let lease = to_lease("signet", &first, &owned);
        assert_eq!(lease.metadata.owner_references.unwrap()[0].uid, "uid-0");
        let lease = to_lease("signet", &first, &term(1_000));
        assert_eq!(live_report(&lease, "signet", at(1_000)), Some(first));
    }

    #[test]
    fn a_long_refusal_reason_is_cut() {
        let report = Report {
            replica: "r".into(),
            refused: Some((None, "x".repeat(10_000))),
            ..Default::default()
        };
        let lease = to_lease("signet", &report, &term(0));
        let read = live_report(&lease, "signet", at(1)).unwrap();
        assert_eq!(read.refused, Some((None, "x".repeat(MAX_REASON))));
    }
}
