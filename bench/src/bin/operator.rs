//! Operator benchmark: creates many OidcClients across many namespaces on a private control
//! plane, with the operator and one STS replica running, and reports how the operator keeps
//! up: until every client is in the snapshot, `Compiled`, and `Ready` (served by the replica),
//! and what it wrote to the API server for them (from the audit log). Not a test: it prints
//! figures.
//!
//!   scripts/bench-operator [CLIENTS] [NAMESPACES]     (default 10000 across 100)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use signet_bench::cpu;
use signet_tests::{PrivateCluster, Process, signet_api, signet_object, wait_for};

/// When every one of `count` OidcClients first had `Compiled` and then `Ready` True, watched
/// (a list of 10,000 objects every 100 ms would load the API server being measured).
async fn watch_conditions(
    client: kube::Client,
    count: usize,
) -> anyhow::Result<(Instant, Instant)> {
    let api = Api::<DynamicObject>::all_with(client, &signet_tests::signet_resource("OidcClient"));
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let (mut compiled, mut ready) = (BTreeSet::new(), BTreeSet::new());
    let mut all_compiled = None;
    while let Some(event) = events.try_next().await? {
        let (watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = event else {
            continue;
        };
        let holds = |type_: &str| {
            o.data["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == type_ && c["status"] == "True")
            })
        };
        let key = (o.namespace().unwrap_or_default(), o.name_any());
        if holds("Compiled") {
            compiled.insert(key.clone());
        }
        if holds("Ready") {
            ready.insert(key);
        }
        if all_compiled.is_none() && compiled.len() == count {
            all_compiled = Some(Instant::now());
        }
        if let Some(at) = all_compiled.filter(|_| ready.len() == count) {
            return Ok((at, Instant::now()));
        }
    }
    anyhow::bail!("the OidcClient watch ended")
}

/// The writes (create, update, patch, delete) of `user` in the audit log, by resource.
fn writes_by(audit: &Path, user: &str) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(audit)?.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let write = ["create", "update", "patch", "delete"]
            .contains(&entry["verb"].as_str().unwrap_or_default());
        if !write || entry["stage"] != "ResponseComplete" || entry["user"]["username"] != user {
            continue;
        }
        let resource = &entry["objectRef"];
        let mut name = resource["resource"].as_str().unwrap_or_default().to_owned();
        if let Some(sub) = resource["subresource"].as_str() {
            name = format!("{name}/{sub}");
        }
        *counts.entry(name).or_default() += 1;
    }
    Ok(counts)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let clients: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let namespaces: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let operator_bin = PathBuf::from(
        std::env::var("SIGNET_OPERATOR_BIN")
            .unwrap_or_else(|_| "target/release/signet-operator".into()),
    );
    let sts_bin = PathBuf::from(
        std::env::var("SIGNET_STS_BIN").unwrap_or_else(|_| "target/release/signet-sts".into()),
    );
    for bin in [&operator_bin, &sts_bin] {
        anyhow::ensure!(bin.exists(), "{} not built", bin.display());
    }

    eprintln!("starting a private control plane");
    let cluster = PrivateCluster::start("bench").await?;
    let client = cluster.client().await?;
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let make_ns = |name: String, bench: bool| {
        let labels = if bench {
            json!({"signet.dev/bench": "yes"})
        } else {
            json!({})
        };
        serde_json::from_value::<Namespace>(json!({"metadata": {"name": name, "labels": labels}}))
            .unwrap()
    };
    ns_api
        .create(
            &PostParams::default(),
            &make_ns("bench-system".into(), false),
        )
        .await?;
    for i in 0..namespaces {
        ns_api
            .create(
                &PostParams::default(),
                &make_ns(format!("bench-{i:03}"), true),
            )
            .await?;
    }
    // A signing key, or the replica would refuse every snapshot (no key to sign with).
    let ts = json!({"issuer": "https://id.example.com", "clientNamespaceSelector": {"matchLabels": {"signet.dev/bench": "yes"}},
        "signingKeys": ["bench-es256"], "idTokenSigningAlg": "ES256", "accessTokenSigningAlg": "ES256"});
    signet_api(&client, "bench-system", "SigningKey")
        .create(
            &PostParams::default(),
            &signet_object("SigningKey", "bench-es256", json!({"algorithm": "ES256"})),
        )
        .await?;
    signet_api(&client, "bench-system", "TokenService")
        .create(
            &PostParams::default(),
            &signet_object("TokenService", "signet", ts),
        )
        .await?;

    // The operator as a ServiceAccount of its own, so the audit log tells its writes apart.
    let operator_rules = json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]);
    signet_tests::grant_cluster_rules(&client, "bench-system", "operator", operator_rules).await?;
    let operator_kubeconfig = signet_tests::namespaced_service_account_kubeconfig(
        &client,
        &cluster.kubeconfig,
        "bench-system",
        "operator",
        json!([]),
    )
    .await?;
    let kubeconfig = operator_kubeconfig.to_string_lossy().into_owned();
    let args: Vec<String> = [
        "--lease-namespace=bench-system",
        "--lease-name=bench",
        "--metrics-addr=127.0.0.1:0",
    ]
    .map(String::from)
    .to_vec();
    let operator = Process::spawn(
        &operator_bin,
        "bench-operator",
        &args,
        &[
            ("KUBECONFIG", &kubeconfig),
            ("RUST_LOG", "warn,signet_operator=info"),
        ],
    )?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "bench-system");
    wait_for("the first snapshot", Duration::from_secs(60), || async {
        Ok(secrets.get_opt("signet-snapshot").await?)
    })
    .await?;

    // One STS replica with the chart's identity: `Ready` means it serves the client.
    let sts_rules = json!([
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"],
         "resourceNames": signet_crds::snapshot_secret::secret_names("signet")},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "patch", "delete"]},
    ]);
    let sts_kubeconfig = signet_tests::namespaced_service_account_kubeconfig(
        &client,
        &cluster.kubeconfig,
        "bench-system",
        "sts",
        sts_rules,
    )
    .await?;
    let sts_addr = format!("127.0.0.1:{}", signet_tests::free_port());
    let _sts = Process::spawn(
        &sts_bin,
        "bench-sts",
        &[
            "--token-service=signet".into(),
            "--namespace=bench-system".into(),
            format!("--listen={sts_addr}"),
            "--metrics-addr=127.0.0.1:0".into(),
            "--replica=bench-sts-0".into(),
        ],
        &[
            ("KUBECONFIG", &sts_kubeconfig.to_string_lossy()),
            ("RUST_LOG", "warn"),
        ],
    )?;
    signet_tests::wait_ready(&sts_addr).await?;
    let conditions = tokio::spawn(watch_conditions(client.clone(), clients));

    eprintln!("creating {clients} OidcClients in {namespaces} namespaces");
    let marker = cluster.dir.to_string_lossy().into_owned();
    let cpu_before = (
        cpu::by_program(&marker),
        cpu::seconds(operator.pid())?,
        cpu::machine_seconds()?,
        cpu::seconds(std::process::id())?,
    );
    let started = Instant::now();
    let created = stream::iter(0..clients)
        .map(|i| {
            let client = client.clone();
            async move {
                let ns = format!("bench-{:03}", i % namespaces);
                let spec =
                    json!({"grantTypes": ["client_credentials"], "allowedScopes": ["openid"]});
                signet_api(&client, &ns, "OidcClient")
                    .create(
                        &PostParams::default(),
                        &signet_object("OidcClient", &format!("app-{i}"), spec),
                    )
                    .await
            }
        })
        .buffer_unordered(32)
        .filter(|r| std::future::ready(r.is_ok()))
        .count()
        .await;
    let create_time = started.elapsed();
    anyhow::ensure!(
        created == clients,
        "only {created} of {clients} creates succeeded"
    );
    let last_create = Instant::now();

    let tokenservices = signet_api(&client, "bench-system", "TokenService");
    wait_for(
        "every client in the snapshot",
        Duration::from_secs(600),
        || async {
            let ts = tokenservices.get("signet").await?;
            Ok((ts.data["status"]["clients"] == json!(clients)).then_some(()))
        },
    )
    .await?;
    let in_snapshot = last_create.elapsed();
    let (compiled_at, ready_at) = tokio::time::timeout(Duration::from_secs(600), conditions)
        .await
        .map_err(|_| anyhow::anyhow!("not every client Compiled and Ready within 600 s"))???;
    let all_compiled = compiled_at.saturating_duration_since(last_create);
    let all_ready = ready_at.saturating_duration_since(last_create);

    let shards = secrets
        .list(&ListParams::default().labels("signet.dev/snapshot-of=signet"))
        .await?;
    let snapshot_bytes: usize = shards
        .items
        .iter()
        .map(|s| {
            s.data
                .as_ref()
                .map_or(0, |d| d.values().map(|v| v.0.len()).sum::<usize>())
        })
        .sum();
    let status = std::fs::read_to_string(format!("/proc/{}/status", operator.pid()))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_owned())
            .unwrap_or_default()
    };
    let metrics = metrics_text(&operator).await.unwrap_or_default();
    let reconciles: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("signet_operator_reconciles_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let total = started.elapsed().as_secs_f64();
    // Who had the two cores from the first create until every client was Ready.
    let span = ready_at.duration_since(started).as_secs_f64();
    let mut cores: Vec<String> = cpu::by_program(&marker)
        .into_iter()
        .map(|(program, after)| {
            let before = cpu_before.0.get(&program).copied().unwrap_or(0.0);
            format!("{program} {:.2}", (after - before) / span)
        })
        .collect();
    cores.push(format!(
        "operator {:.2}",
        (cpu::seconds(operator.pid())? - cpu_before.1) / span
    ));
    cores.push(format!(
        "this driver (creates, watch) {:.2}",
        (cpu::seconds(std::process::id())? - cpu_before.3) / span
    ));
    cores.push(format!(
        "whole machine {:.2}",
        (cpu::machine_seconds()? - cpu_before.2) / span
    ));
    let writes = writes_by(
        &cluster.dir.join("audit.log"),
        "system:serviceaccount:bench-system:operator",
    )?;
    let write_total: usize = writes.values().sum();
    let listed: Vec<String> = writes.iter().map(|(r, n)| format!("{r} {n}")).collect();

    let rows: BTreeMap<&str, String> = BTreeMap::from([
        (
            "1 clients / namespaces",
            format!("{clients} / {namespaces}"),
        ),
        (
            "2 creates per second",
            format!("{:.0}", clients as f64 / create_time.as_secs_f64()),
        ),
        (
            "3 last create -> all in snapshot",
            format!("{:.1} s", in_snapshot.as_secs_f64()),
        ),
        (
            "4 last create -> all Compiled",
            format!("{:.1} s", all_compiled.as_secs_f64()),
        ),
        (
            "4a last create -> all Ready (served by the replica)",
            format!("{:.1} s", all_ready.as_secs_f64()),
        ),
        (
            "4b operator writes per client",
            format!(
                "{:.2} ({write_total}: {})",
                write_total as f64 / clients as f64,
                listed.join(", ")
            ),
        ),
        (
            "5 object reconciles per second",
            format!(
                "{:.0} ({reconciles:.0} in {total:.0} s)",
                reconciles / total
            ),
        ),
        ("6 operator peak RSS", field("VmHWM:")),
        ("6a cores used, first create -> all Ready", cores.join(", ")),
        (
            "7 snapshot bytes (gzip) / shards",
            format!("{snapshot_bytes} / {}", shards.items.len()),
        ),
    ]);
    println!("\n| measure | value |\n| --- | --- |");
    for (k, v) in rows {
        println!("| {} | {v} |", k.split_once(' ').map_or(k, |(_, k)| k));
    }
    Ok(())
}

async fn metrics_text(operator: &Process) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let log = operator.output();
    let addr = log
        .lines()
        .find_map(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(text)
}
