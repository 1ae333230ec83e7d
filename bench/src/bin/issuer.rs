//! A 100,000-client issuer (`scripts/bench-issuer`). Not a test: it prints one markdown table.
//!
//! Generates the clients as manifests, admits and compiles them as standalone mode does (timing
//! each half), writes the sharded snapshot Secrets to a private control plane exactly as the
//! operator writes them, and starts a cluster-mode `signet-sts` on them with the chart's
//! least-privilege identity. A second STS serves a 100-client snapshot beside it; wrk then runs
//! client_credentials against the two in turn, so the rates compared see the same machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::json;
use signet_bench::bodies::{self, form};
use signet_bench::manifests::{self, bench_client};
use signet_bench::{cpu, rss_kib, wrk};
use signet_crds::snapshot_secret::{self, DATA_KEY, SNAPSHOT_LABEL};
use signet_sts::source::standalone;
use signet_tests::{PrivateCluster, Process, free_port, http, repo_root, wait_ready};

/// A 100,000-client issuer.
#[derive(Parser, Debug)]
struct Args {
    /// Clients of the large issuer.
    #[arg(long, default_value_t = 100_000)]
    clients: usize,
    /// Clients of the small issuer it is compared with.
    #[arg(long, default_value_t = 100)]
    small: usize,
    /// Distinct clients the token load cycles through on each issuer (spread over all of them).
    #[arg(long, default_value_t = 10_000)]
    requesting: usize,
    /// Rounds of (small, large) token runs.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
}

/// One issuer's snapshot as the STS reads it, and what it took to make.
struct Issuer {
    /// Generated clients (`bench-0..`).
    generated: usize,
    /// Clients in the snapshot: the generated ones and the examples'.
    clients: usize,
    read_seconds: f64,
    compile_seconds: f64,
    json_bytes: usize,
    gzip_bytes: usize,
    shards: usize,
    state: PathBuf,
}

/// Writes `clients` generated clients plus the examples into `work`, admits and compiles them.
fn compile(work: &Path, clients: usize) -> anyhow::Result<(Issuer, signet_crds::snapshot::Wire)> {
    let (dir, state) = (work.join("manifests"), work.join("state"));
    manifests::write(&dir, &repo_root().join("examples"), clients, None)?;
    let started = Instant::now();
    let read = standalone::read_manifests(&dir, None)?;
    let read_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(read.refused.is_empty(), "manifests refused");
    let started = Instant::now();
    let compiled = standalone::compile_manifests(read, &dir, &state)?;
    let wire = compiled.snapshot.to_wire();
    let compile_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        compiled.snapshot.clients.len() > clients,
        "only {} clients compiled",
        compiled.snapshot.clients.len()
    );
    let issuer = Issuer {
        generated: clients,
        clients: compiled.snapshot.clients.len(),
        read_seconds,
        compile_seconds,
        json_bytes: wire.json.len(),
        gzip_bytes: 0,
        shards: 0,
        state,
    };
    Ok((issuer, wire))
}

/// Writes the snapshot Secrets of TokenService `signet` into `ns`, as the operator does.
async fn publish(
    client: &kube::Client,
    ns: &str,
    wire: &signet_crds::snapshot::Wire,
    issuer: &mut Issuer,
) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await?;
    let gz = snapshot_secret::compress(&wire.json);
    let shards = snapshot_secret::shards("signet", &gz, snapshot_secret::SHARD_BYTES);
    anyhow::ensure!(
        shards.len() <= snapshot_secret::MAX_SHARDS,
        "{} shards: more than an STS reads",
        shards.len()
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for shard in &shards {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(shard.name.clone()),
                labels: Some(BTreeMap::from([(
                    SNAPSHOT_LABEL.to_owned(),
                    "signet".to_owned(),
                )])),
                annotations: Some(snapshot_secret::annotations(wire, shard)),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                DATA_KEY.to_owned(),
                ByteString(shard.bytes.clone()),
            )])),
            ..Default::default()
        };
        secrets.create(&PostParams::default(), &secret).await?;
    }
    issuer.gzip_bytes = gz.len();
    issuer.shards = shards.len();
    Ok(())
}

/// A cluster-mode STS of `signet` in `ns` with the chart's identity: it may read its snapshot
/// Secrets by name and write its report. Returns it once /readyz says it serves, with the time
/// that took.
async fn start_sts(
    cluster: &PrivateCluster,
    client: &kube::Client,
    ns: &str,
) -> anyhow::Result<(Process, String, f64)> {
    let rules = json!([
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"],
         "resourceNames": snapshot_secret::secret_names("signet")},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "patch", "delete"]},
    ]);
    let kubeconfig = signet_tests::namespaced_service_account_kubeconfig(
        client,
        &cluster.kubeconfig,
        ns,
        "sts",
        rules,
    )
    .await?;
    let addr = format!("127.0.0.1:{}", free_port());
    let args = vec![
        "--token-service=signet".to_owned(),
        format!("--namespace={ns}"),
        format!("--listen={addr}"),
        "--metrics-addr=127.0.0.1:0".into(),
        format!("--replica={ns}-0"),
    ];
    let started = Instant::now();
    let sts = Process::spawn(
        &signet_bench::sibling("signet-sts")?,
        &format!("bench-issuer-{ns}"),
        &args,
        &[
            ("KUBECONFIG", &kubeconfig.to_string_lossy()),
            ("RUST_LOG", "warn"),
        ],
    )?;
    if let Err(error) = wait_ready(&addr).await {
        anyhow::bail!("{ns}: {error}\n{}", sts.output());
    }
    Ok((sts, addr, started.elapsed().as_secs_f64()))
}

/// Token requests for `count` clients spread evenly over the `clients` generated ones.
fn token_requests(state: &Path, clients: usize, count: usize) -> anyhow::Result<Vec<String>> {
    let count = count.min(clients);
    (0..count)
        .map(|i| {
            let id = bench_client(i * clients / count);
            let secret = manifests::client_secret(state, &id)?;
            form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "orders.read"),
            ])
        })
        .collect()
}

/// Tokens per second of the server's CPU time: what the rate would be on one core.
fn per_core(figures: &wrk::Figures, server_cores: f64) -> f64 {
    if server_cores > 0.0 {
        figures.rate / server_cores
    } else {
        0.0
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let say = {
        let t0 = Instant::now();
        move |what: &str| eprintln!("[bench-issuer {:6.1}s] {what}", t0.elapsed().as_secs_f64())
    };
    let work = std::env::temp_dir().join(format!("signet-bench-issuer-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;

    say(&format!(
        "compiling {} and {} clients",
        args.small, args.clients
    ));
    let (mut small, small_wire) = compile(&work.join("small"), args.small)?;
    let (mut large, large_wire) = compile(&work.join("large"), args.clients)?;
    say(&format!(
        "large: admitted in {:.2} s, compiled in {:.2} s, {} bytes of JSON",
        large.read_seconds, large.compile_seconds, large.json_bytes
    ));

    say("starting a private control plane");
    let cluster = PrivateCluster::start("bench-issuer").await?;
    let client = cluster.client().await?;
    publish(&client, "issuer-small", &small_wire, &mut small).await?;
    publish(&client, "issuer-large", &large_wire, &mut large).await?;
    drop((small_wire, large_wire));
    say(&format!(
        "large: {} bytes of gzip in {} shards",
        large.gzip_bytes, large.shards
    ));

    let (small_sts, small_addr, small_ready) = start_sts(&cluster, &client, "issuer-small").await?;
    let (large_sts, large_addr, large_ready) = start_sts(&cluster, &client, "issuer-large").await?;
    let large_rss_ready = rss_kib(large_sts.pid())?;
    let small_rss_ready = rss_kib(small_sts.pid())?;
    say(&format!(
        "large STS served in {large_ready:.2} s, RSS {large_rss_ready} KiB"
    ));

    let script = work.join("cycle.lua");
    std::fs::write(&script, wrk::SCRIPT)?;
    let mut targets = Vec::new();
    for (name, issuer, addr, pid) in [
        ("small", &small, &small_addr, small_sts.pid()),
        ("large", &large, &large_addr, large_sts.pid()),
    ] {
        let requests = token_requests(&issuer.state, issuer.generated, args.requesting)?;
        // Each load measures real work: every client it uses gets a token signed for it.
        let tokens = bodies::issue(addr, &requests, 16).await?;
        let last = bench_client((requests.len() - 1) * issuer.generated / requests.len());
        let claims = http::jwt_claims(tokens.last().expect("a token"));
        anyhow::ensure!(claims["client_id"] == json!(last), "{name}: {claims}");
        let bodies_file = work.join(format!("{name}-token.txt"));
        bodies::write_lines(&bodies_file, &requests)?;
        targets.push((
            name,
            pid,
            wrk::Target {
                addr: addr.clone(),
                method: "POST",
                path: "/token",
                bodies: Some(bodies_file),
            },
        ));
    }
    let load = wrk::Load {
        connections: 64,
        threads: 2,
        seconds: args.seconds,
    };
    let mut runs: BTreeMap<&str, Vec<(wrk::Figures, f64)>> = BTreeMap::new();
    for round in 1..=args.rounds {
        for (name, pid, target) in &targets {
            cpu::wait_quiet(Duration::from_secs(60))?;
            let before = cpu::seconds(*pid)?;
            let started = Instant::now();
            let figures = wrk::run(&load, target, &script)?;
            let cores = (cpu::seconds(*pid)? - before) / started.elapsed().as_secs_f64();
            anyhow::ensure!(
                figures.non_2xx == 0 && figures.socket_errors == 0,
                "{name}: {figures:?}"
            );
            say(&format!(
                "round {round}, {name}: {:.0} tokens/s, p99 {} us, server cores {cores:.2}",
                figures.rate, figures.p99_us
            ));
            runs.entry(name).or_default().push((figures, cores));
        }
    }
    let large_rss_after = rss_kib(large_sts.pid())?;
    drop((small_sts, large_sts));

    let mean = |name: &str, f: &dyn Fn(&(wrk::Figures, f64)) -> f64| {
        let r = &runs[name];
        r.iter().map(f).sum::<f64>() / r.len() as f64
    };
    let rate = |name: &str| mean(name, &|(w, _)| w.rate);
    let core = |name: &str| mean(name, &|(w, c)| per_core(w, *c));
    let p99 = |name: &str| mean(name, &|(w, _)| w.p99_us as f64 / 1000.0);
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "\n| measure | {} clients | {} clients |",
        small.clients, large.clients
    );
    println!("| --- | --- | --- |");
    let row = |what: &str, a: String, b: String| println!("| {what} | {a} | {b} |");
    row(
        "admit (YAML + CEL), s",
        format!("{:.2}", small.read_seconds),
        format!("{:.2}", large.read_seconds),
    );
    row(
        "keys, client secret files, compile, serialise, s",
        format!("{:.2}", small.compile_seconds),
        format!("{:.2}", large.compile_seconds),
    );
    row(
        "snapshot JSON / gzip bytes",
        format!("{} / {}", small.json_bytes, small.gzip_bytes),
        format!("{} / {}", large.json_bytes, large.gzip_bytes),
    );
    row("shards", small.shards.to_string(), large.shards.to_string());
    row(
        "STS start -> serving, s",
        format!("{small_ready:.2}"),
        format!("{large_ready:.2}"),
    );
    row(
        "STS RSS serving, MiB",
        format!("{:.1}", mib(small_rss_ready)),
        format!(
            "{:.1} ({:.1} after the load)",
            mib(large_rss_ready),
            mib(large_rss_after)
        ),
    );
    row(
        &format!("tokens/s (mean of {} runs)", args.rounds),
        format!("{:.0}", rate("small")),
        format!("{:.0}", rate("large")),
    );
    row(
        "tokens/s per server core",
        format!("{:.0}", core("small")),
        format!("{:.0}", core("large")),
    );
    row(
        "p99, ms",
        format!("{:.2}", p99("small")),
        format!("{:.2}", p99("large")),
    );
    println!(
        "\nlarge / small: tokens/s {:.1} %, per server core {:.1} % (goal: within 10 %)",
        100.0 * rate("large") / rate("small"),
        100.0 * core("large") / core("small")
    );
    std::fs::remove_dir_all(&work)?;
    Ok(())
}
