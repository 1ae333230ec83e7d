//! Running the operator against the test control plane, and reading what it wrote.

#![allow(dead_code)] // each test binary uses a different part

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Client;
use kube::api::Api;
use signet_crds::snapshot::Snapshot;
use signet_tests::{Process, signet_api, wait_for};

/// Generous: the control plane shares two cores with the build and other tests.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Starts `signet-operator` watching `namespaces`, with a Lease of its own in the first one.
pub fn start_operator(
    kubeconfig: &Path,
    namespaces: &[&str],
    name: &str,
) -> anyhow::Result<Process> {
    start_operator_with(kubeconfig, namespaces, name, &[])
}

/// Like [`start_operator`], with extra environment (e.g. a failpoint).
pub fn start_operator_with(
    kubeconfig: &Path,
    namespaces: &[&str],
    name: &str,
    extra_env: &[(&str, &str)],
) -> anyhow::Result<Process> {
    let args = vec![
        format!("--namespaces={}", namespaces.join(",")),
        format!("--lease-name=operator-{name}"),
        format!("--lease-namespace={}", namespaces[0]),
        "--lease-duration=6".into(),
        "--metrics-addr=127.0.0.1:0".into(),
    ];
    let mut env = vec![
        ("KUBECONFIG", kubeconfig.to_str().unwrap()),
        ("RUST_LOG", "info,kube=warn,signet_operator=debug"),
    ];
    env.extend_from_slice(extra_env);
    Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_signet-operator")),
        &format!("operator-{name}"),
        &args,
        &env,
    )
}

/// Applies examples/ into `ns` with the built kubectl.
pub fn apply_examples(cluster: &signet_tests::SharedCluster, ns: &str) {
    let out = cluster
        .kubectl()
        .args(["apply", "--server-side", "-n", ns, "-f"])
        .arg(signet_tests::repo_root().join("examples"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The snapshot of TokenService `ts`, decompressed, verified against its hash annotation the
/// way the STS verifies it, and named by that hash; `None` while there is none or it does not
/// verify (a Secret edited by hand).
pub async fn snapshot(client: &Client, ns: &str, ts: &str) -> anyhow::Result<Option<Snapshot>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let Some(secret) = secrets.get_opt(&format!("{ts}-snapshot")).await? else {
        return Ok(None);
    };
    let hash = secret
        .metadata
        .annotations
        .unwrap_or_default()
        .remove("signet.dev/snapshot-hash")
        .unwrap_or_default();
    let gz = &secret.data.unwrap_or_default()["snapshot.json.gz"].0;
    let mut json = Vec::new();
    if flate2_read(gz, &mut json).is_err() {
        return Ok(None);
    }
    let wire = signet_crds::snapshot::Wire { hash, json };
    Ok(if wire.verify() {
        Some(wire.parse()?)
    } else {
        None
    })
}

fn flate2_read(gz: &[u8], out: &mut Vec<u8>) -> anyhow::Result<()> {
    flate2::read::GzDecoder::new(gz).read_to_end(out)?;
    Ok(())
}

/// Waits until the snapshot satisfies `check`, and returns it.
pub async fn wait_for_snapshot(
    client: &Client,
    ns: &str,
    what: &str,
    check: impl Fn(&Snapshot) -> bool,
) -> anyhow::Result<Snapshot> {
    wait_for(what, TIMEOUT, || async {
        Ok(snapshot(client, ns, "signet").await?.filter(|s| check(s)))
    })
    .await
}

/// The conditions of a Signet object.
pub async fn conditions(
    client: &Client,
    ns: &str,
    kind: &str,
    name: &str,
) -> anyhow::Result<Vec<Condition>> {
    let object = signet_api(client, ns, kind).get(name).await?;
    let conditions = object.data["status"]["conditions"].clone();
    Ok(if conditions.is_null() {
        vec![]
    } else {
        serde_json::from_value(conditions)?
    })
}

/// Waits until condition `type_` of the object has `status` (and `reason`, when given).
pub async fn wait_for_condition(
    client: &Client,
    ns: &str,
    kind: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> anyhow::Result<Condition> {
    let what = format!("{kind} {ns}/{name} {type_}={status} {reason:?}");
    wait_for(&what, TIMEOUT, || async {
        let found = conditions(client, ns, kind, name)
            .await?
            .into_iter()
            .find(|c| {
                c.type_ == type_ && c.status == status && reason.is_none_or(|r| c.reason == r)
            });
        Ok(found)
    })
    .await
}

/// The address the operator serves /metrics on, from its log.
pub fn metrics_addr(operator: &Process) -> Option<String> {
    let log = operator.output();
    let line = log.lines().find(|l| l.contains("serving /metrics"))?;
    Some(
        line.split("addr=")
            .nth(1)?
            .split_whitespace()
            .next()?
            .to_owned(),
    )
}

/// GET on loopback: status code and body.
pub async fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let response = signet_tests::http::get(addr, path).await?;
    Ok((response.status, response.body))
}
