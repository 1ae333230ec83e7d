//! This replica's report of what it serves (`signet_crds::replica`): its Lease in the
//! TokenService's namespace, renewed every interval, and at once when what it serves or
//! refuses changes. The operator reads it to say an object is Served.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use signet_crds::replica::{self, Report, Term};

use crate::app::App;

/// How often a replica renews its report by default; its Lease lasts three times as long.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Field manager of the report's server-side apply.
const MANAGER: &str = "signet-sts";

/// Who reports, and how often.
#[derive(Clone, Debug)]
pub struct Reporting {
    /// The replica's name (the pod name in the chart).
    pub replica: String,
    /// Its Pod's uid, when it runs in one (POD_UID from the downward API): the Pod owns the
    /// report.
    pub pod_uid: Option<String>,
    /// Between renewals.
    pub interval: Duration,
}

/// What this replica serves now.
pub fn current(app: &App, replica: &str) -> Report {
    let loaded = app.loaded.load();
    let serving = loaded.as_ref().map(|l| l.snapshot.hash.clone());
    let mut kids: Vec<String> = loaded
        .as_ref()
        .map(|l| l.snapshot.keys.iter().map(|k| k.kid.clone()).collect())
        .unwrap_or_default();
    kids.sort();
    let refused = app
        .refused
        .lock()
        .expect("refused lock")
        .clone()
        .map(|r| (r.hash, r.reason));
    Report {
        replica: replica.to_owned(),
        serving,
        refused,
        kids,
    }
}

/// Writes the report until `stop` resolves, then deletes it (a replica that shuts down drops
/// out at once). A failed write is logged and tried again at the next renewal: the Lease
/// expiring meanwhile only makes the operator wait for this replica.
pub async fn run(
    app: Arc<App>,
    client: kube::Client,
    namespace: String,
    token_service: String,
    reporting: Reporting,
    stop: impl std::future::Future<Output = ()>,
) {
    let api: Api<Lease> = Api::namespaced(client, &namespace);
    let name = replica::lease_name(&token_service, &reporting.replica);
    let duration = i32::try_from(reporting.interval.as_secs().max(1) * 3).unwrap_or(i32::MAX);
    let params = PatchParams::apply(MANAGER).force();
    let pod = reporting
        .pod_uid
        .clone()
        .map(|uid| (reporting.replica.clone(), uid));
    tracing::info!(lease = %name, every = ?reporting.interval, "reporting what this replica serves");
    let mut last_written: Option<Timestamp> = None;
    let mut acquired = Timestamp::now();
    tokio::pin!(stop);
    loop {
        let now = Timestamp::now();
        acquired = next_acquired(acquired, last_written, now, duration);
        let term = Term {
            renewed: now,
            acquired,
            duration_secs: duration,
            pod: pod.clone(),
        };
        let lease = replica::to_lease(&token_service, &current(&app, &reporting.replica), &term);
        match api.patch(&name, &params, &Patch::Apply(&lease)).await {
            Ok(_) => last_written = Some(now),
            Err(error) => {
                tracing::warn!(lease = %name, %error, "the replica report was not written")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(reporting.interval) => {}
            () = app.served_changed.notified() => {}
            () = &mut stop => break,
        }
    }
    if let Err(error) = api.delete(&name, &Default::default()).await {
        tracing::warn!(lease = %name, %error, "the replica report was not deleted");
    }
}

/// The start of the current run of renewals: unchanged while the last write is recent, `now`
/// after a gap longer than the Lease (the process was stopped, or could not write), so that the
/// report changes and the operator notices the replica is back.
fn next_acquired(
    acquired: Timestamp,
    last_written: Option<Timestamp>,
    now: Timestamp,
    duration_secs: i32,
) -> Timestamp {
    match last_written {
        Some(last) if now.as_second() - last.as_second() >= i64::from(duration_secs) => now,
        _ => acquired,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    #[test]
    fn a_replica_back_after_its_lease_ran_out_starts_a_new_term() {
        assert_eq!(
            next_acquired(at(100), None, at(100), 15),
            at(100),
            "the first write"
        );
        assert_eq!(
            next_acquired(at(100), Some(at(105)), at(110), 15),
            at(100),
            "renewing"
        );
        assert_eq!(
            next_acquired(at(100), Some(at(110)), at(125), 15),
            at(125),
            "after a stop"
        );
    }
}
