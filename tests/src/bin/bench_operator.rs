//! Operator benchmark: creates many OidcClients across many namespaces on a private control
//! plane and reports how the operator keeps up. Not a test: it prints figures.
//!
//!   scripts/bench-operator [CLIENTS] [NAMESPACES]     (default 10000 across 100)

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use signet_tests::{PrivateCluster, Process, signet_api, signet_object, wait_for};

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
    anyhow::ensure!(
        operator_bin.exists(),
        "{} not built",
        operator_bin.display()
    );

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
    let ts = json!({"issuer": "https://id.example.com", "clientNamespaceSelector": {"matchLabels": {"signet.dev/bench": "yes"}}});
    signet_api(&client, "bench-system", "TokenService")
        .create(
            &PostParams::default(),
            &signet_object("TokenService", "signet", ts),
        )
        .await?;

    let kubeconfig = cluster.kubeconfig.to_string_lossy().into_owned();
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

    eprintln!("creating {clients} OidcClients in {namespaces} namespaces");
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
    wait_for(
        "every client Compiled",
        Duration::from_secs(600),
        || async {
            let list = kube::api::Api::<kube::api::DynamicObject>::all_with(
                client.clone(),
                &signet_tests::signet_resource("OidcClient"),
            )
            .list(&ListParams::default())
            .await?;
            let ready = list
                .items
                .iter()
                .filter(|o| {
                    o.data["status"]["conditions"].as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Compiled" && c["status"] == "True")
                    })
                })
                .count();
            Ok((ready == clients).then_some(()))
        },
    )
    .await?;
    let all_ready = last_create.elapsed();

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
            format!("{:.1} s", all_ready.as_secs_f64()),
        ),
        (
            "5 object reconciles per second",
            format!(
                "{:.0} ({reconciles:.0} in {total:.0} s)",
                reconciles / total
            ),
        ),
        ("6 operator peak RSS", field("VmHWM:")),
        (
            "7 snapshot bytes (gzip) / shards",
            format!("{snapshot_bytes} / {}", shards.items.len()),
        ),
    ]);
    println!("\n| measure | value |\n| --- | --- |");
    for (k, v) in rows {
        println!("| {} | {v} |", &k[2..]);
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
