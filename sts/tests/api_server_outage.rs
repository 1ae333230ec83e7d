//! The STS through an API server outage: it keeps serving its last snapshot while the API
//! server is unreachable, and watches again by itself once it is back (as does the operator).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;
mod common;

use common::cluster::{Deployed, credentials, deploy, token};
use signet_tests::{PrivateCluster, TestNamespace, signet_api, signet_object, wait_for};
use tokio::time::Instant;

/// How long the API server stays down: the requirement itself, not a wait.
const OUTAGE: Duration = Duration::from_secs(30);
/// One token request this often.
const INTERVAL: Duration = Duration::from_millis(20);
/// A request that takes longer than this counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Generous: the control plane shares the machine's cores with the build and other tests.
const TIMEOUT: Duration = Duration::from_secs(90);
/// How long a client created after the outage may take to be served.
const RECOVERY: Duration = Duration::from_secs(60);

/// One request of the load: when it was sent, and its status or what went wrong.
struct Outcome {
    sent: Instant,
    result: Result<u16, String>,
}

/// Requests a token every [`INTERVAL`] until `stop` is set.
async fn load(addr: String, id: String, secret: String, stop: Arc<AtomicBool>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Acquire) {
        tick.tick().await;
        let sent = Instant::now();
        let result = match tokio::time::timeout(REQUEST_TIMEOUT, token(&addr, &id, &secret)).await {
            Ok(Ok(r)) if r.status == 200 => Ok(200),
            Ok(Ok(r)) => Err(format!("{}: {}", r.status, r.body)),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no response within {REQUEST_TIMEOUT:?}")),
        };
        outcomes.push(Outcome { sent, result });
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_served_through_an_api_server_outage_and_watching_resumes() -> anyhow::Result<()>
{
    let cluster = PrivateCluster::start("api-outage").await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "api-server-outage")
        .await?
        .name;
    let Deployed {
        operator,
        sts,
        addr,
        ..
    } = deploy(
        cluster.kubectl(),
        &cluster.kubeconfig,
        &client,
        &ns,
        "api-outage",
    )
    .await?;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let (id, secret) = credentials(&secrets, "orders-worker-oidc", TIMEOUT).await?;
    wait_for("a first token", TIMEOUT, || async {
        Ok((token(&addr, &id, &secret).await?.status == 200).then_some(()))
    })
    .await?;

    let stop = Arc::new(AtomicBool::new(false));
    let requests = tokio::spawn(load(addr.clone(), id, secret, stop.clone()));

    let logs_before = (sts.output().len(), operator.output().len());
    cluster.stop_apiserver().await?;
    let down = Instant::now();
    assert!(
        client.apiserver_version().await.is_err(),
        "the API server is unreachable"
    );
    // The outage itself: its length is the scenario, not a wait for a condition.
    tokio::time::sleep_until(down + OUTAGE).await;
    cluster.start_apiserver().await?;
    let up = Instant::now();
    let sts_log_at_up = sts.output().len();

    // A client created now is served only once the operator and the STS watch again.
    let spec = json!({"grantTypes": ["client_credentials"], "allowedScopes": ["orders.read"], "tokenEndpointAuthMethod": "client_secret_post"});
    signet_api(&client, &ns, "OidcClient")
        .create(
            &PostParams::default(),
            &signet_object("OidcClient", "after-outage", spec),
        )
        .await?;
    let (late_id, late_secret) = credentials(&secrets, "after-outage-oidc", TIMEOUT).await?;
    wait_for(
        "a token for the client created after the outage",
        RECOVERY,
        || async { Ok((token(&addr, &late_id, &late_secret).await?.status == 200).then_some(())) },
    )
    .await?;
    let recovered = up.elapsed();

    stop.store(true, Ordering::Release);
    let outcomes = requests.await?;
    let failures: Vec<_> = outcomes
        .iter()
        .filter_map(|o| {
            o.result
                .as_ref()
                .err()
                .map(|e| format!("{:?} after the stop: {e}", o.sent - down))
        })
        .collect();
    let during_outage = outcomes
        .iter()
        .filter(|o| o.sent >= down && o.sent < up && o.result.is_ok())
        .count();
    println!(
        "API server down {:?}; {} requests, {during_outage} served while it was down, {} failed; \
         API server back -> new client served: {recovered:?}",
        up - down,
        outcomes.len(),
        failures.len(),
    );
    assert!(
        failures.is_empty(),
        "{} failed requests, the first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        during_outage > 0,
        "requests were served while the API server was down"
    );

    // Both lost their watches (so the outage was real to them) and got them back by themselves.
    let sts_log = sts.output();
    let sts_errors = String::from_utf8_lossy(&sts_log.as_bytes()[logs_before.0..sts_log_at_up])
        .matches("snapshot watch error")
        .count();
    println!("STS watch errors while the API server was down: {sts_errors}");
    assert!(sts_errors > 0, "the STS saw the outage: {sts_log}");
    // It retries with a backoff, not in a hot loop: on average less than once a second for
    // each of the Secrets it watches.
    let watches = signet_sts::source::cluster::secret_names("signet").len();
    assert!(
        sts_errors as u64 <= watches as u64 * (up - down).as_secs(),
        "{sts_errors} watch errors in {:?}",
        up - down
    );
    let operator_log = operator.output();
    assert!(
        String::from_utf8_lossy(&operator_log.as_bytes()[logs_before.1..]).contains("watch error"),
        "the operator saw the outage: {operator_log}"
    );
    Ok(())
}
