//! Propagation benchmark (issue 22): on a private control plane, the operator and three STS
//! replicas (release builds); one OidcClient's redirect URI changed CHANGES times, each change
//! timed from the write until `Ready=True` for its new generation (every live replica serves
//! it). Not a test: it prints p50/p90/p99/max; the goal is p99 under 2 s.
//!
//!   scripts/bench-propagation [CHANGES]     (default 200)

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use signet_tests::{PrivateCluster, Process, free_port, signet_api, signet_object, wait_for};

const NS: &str = "bench";
const REPLICAS: usize = 3;

fn bin(env: &str, default: &str) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(std::env::var(env).unwrap_or_else(|_| default.into()));
    anyhow::ensure!(path.exists(), "{} not built", path.display());
    Ok(path)
}

/// Whether `app`'s Ready condition is True for its current generation.
fn ready(app: &Value) -> bool {
    let generation = app["metadata"]["generation"].as_i64();
    app["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            c["type"] == "Ready"
                && c["status"] == "True"
                && c["observedGeneration"].as_i64() == generation
        })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let changes: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200);
    let operator_bin = bin("SIGNET_OPERATOR_BIN", "target/release/signet-operator")?;
    let sts_bin = bin("SIGNET_STS_BIN", "target/release/signet-sts")?;

    eprintln!("starting a private control plane");
    let cluster = PrivateCluster::start("bench-propagation").await?;
    let client = cluster.client().await?;
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    let examples = signet_tests::repo_root().join("examples");
    let out = cluster
        .kubectl()
        .args(["apply", "--server-side", "-n", NS, "-f"])
        .arg(&examples)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let kubeconfig = cluster.kubeconfig.to_string_lossy().into_owned();
    let env = [("KUBECONFIG", kubeconfig.as_str()), ("RUST_LOG", "warn")];
    let operator_args = [
        format!("--namespaces={NS}"),
        format!("--lease-namespace={NS}"),
        "--lease-name=op".into(),
        "--metrics-addr=127.0.0.1:0".into(),
    ];
    let _operator = Process::spawn(
        &operator_bin,
        "bench-propagation-operator",
        &operator_args,
        &env,
    )?;
    let mut replicas = Vec::new();
    for i in 0..REPLICAS {
        let args = [
            "--token-service=signet".into(),
            format!("--namespace={NS}"),
            format!("--listen=127.0.0.1:{}", free_port()),
            "--metrics-addr=127.0.0.1:0".into(),
            format!("--replica=bench-{i}"),
        ];
        replicas.push(Process::spawn(
            &sts_bin,
            &format!("bench-propagation-sts-{i}"),
            &args,
            &env,
        )?);
    }
    let tokenservices = signet_api(&client, NS, "TokenService");
    let want = format!("{REPLICAS}/{REPLICAS}");
    wait_for(
        "every replica serving",
        Duration::from_secs(120),
        || async {
            let ts = tokenservices.get("signet").await?;
            Ok((ts.data["status"]["serving"] == want.as_str()).then_some(()))
        },
    )
    .await?;

    let clients = signet_api(&client, NS, "OidcClient");
    let spec = json!({"grantTypes": ["authorization_code"], "redirectUris": ["https://app.example.com/0"]});
    clients
        .create(
            &PostParams::default(),
            &signet_object("OidcClient", "app", spec),
        )
        .await?;
    wait_for("app Ready", Duration::from_secs(60), || async {
        Ok(ready(&serde_json::to_value(clients.get("app").await?)?).then_some(()))
    })
    .await?;

    eprintln!("{changes} changes, each timed from the write until Ready for its generation");
    let mut times = Vec::with_capacity(changes);
    for i in 1..=changes {
        let change = json!({"spec": {"redirectUris": [format!("https://app.example.com/{i}")]}});
        let started = Instant::now();
        clients
            .patch("app", &PatchParams::default(), &Patch::Merge(&change))
            .await?;
        loop {
            if ready(&serde_json::to_value(clients.get("app").await?)?) {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "change {i} never Ready"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        times.push(started.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| changes | replicas | p50 ms | p90 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| {changes} | {REPLICAS} | {:.0} | {:.0} | {:.0} | {:.0} |",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(percentile(&times, 0.99)),
        ms(times[times.len() - 1]),
    );
    drop(replicas);
    Ok(())
}
