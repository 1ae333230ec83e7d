//! Workload-identity benchmark (`scripts/bench-workload`, issue 20). Not a test: it prints one
//! markdown table.
//!
//! A private control plane, the examples and `examples/workload/` applied, the release operator
//! and STS in-cluster. In one run: client_credentials authenticated by a client secret, then by
//! one ServiceAccount token (its review cached: the warm rate), with wrk; then by a new token
//! per request (every one reviewed by the API server: the cold rate), with the CPU each process
//! spent, which says where the cold path's time goes.

use std::time::{Duration, Instant};

use clap::Parser;
use futures::{StreamExt, stream};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, PostParams};
use signet_bench::bodies::{self, assertion_body, form};
use signet_bench::{cpu, wrk};
use signet_tests::{PrivateCluster, Process, free_port, http, repo_root, wait_for, wait_ready};

/// Workload-identity benchmark.
#[derive(Parser, Debug)]
struct Args {
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Distinct ServiceAccount tokens for the cold run.
    #[arg(long, default_value_t = 2_000)]
    cold: usize,
    /// Requests in flight in the cold run.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

const NS: &str = "bench";
const ACCOUNT: &str = "orders-reporter";
const TIMEOUT: Duration = Duration::from_secs(120);

fn kubectl_ok(cluster: &PrivateCluster, args: &[&str]) -> anyhow::Result<String> {
    let out = cluster.kubectl().args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// The API server's pid: the second process the control plane script started.
fn apiserver_pid(cluster: &PrivateCluster) -> anyhow::Result<u32> {
    let pids = std::fs::read_to_string(cluster.dir.join("pids"))?;
    let pid = pids.lines().nth(1).unwrap_or_default().trim().parse()?;
    Ok(pid)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (sts_bin, operator_bin) = (
        signet_bench::sibling("signet-sts")?,
        signet_bench::sibling("signet-operator")?,
    );
    eprintln!("[bench-workload] starting a control plane");
    let cluster = PrivateCluster::start("bench-workload").await?;
    let client = cluster.client().await?;
    kubectl_ok(&cluster, &["create", "namespace", NS])?;
    for dir in ["examples", "examples/workload"] {
        let path = repo_root().join(dir);
        kubectl_ok(
            &cluster,
            &[
                "apply",
                "--server-side",
                "-n",
                NS,
                "-f",
                &path.to_string_lossy(),
            ],
        )?;
    }
    let kubeconfig = cluster.kubeconfig.to_string_lossy().into_owned();
    let env = [("KUBECONFIG", kubeconfig.as_str())];
    let _operator = Process::spawn(
        &operator_bin,
        "bench-operator",
        &[
            format!("--namespaces={NS}"),
            format!("--lease-namespace={NS}"),
            "--lease-name=op".into(),
            "--metrics-addr=127.0.0.1:0".into(),
        ],
        &env,
    )?;
    let addr = format!("127.0.0.1:{}", free_port());
    let sts = Process::spawn(
        &sts_bin,
        "bench-sts",
        &[
            "--token-service=signet".into(),
            format!("--namespace={NS}"),
            format!("--listen={addr}"),
            "--metrics-addr=127.0.0.1:0".into(),
        ],
        &env,
    )?;
    wait_ready(&addr).await?;
    let issuer = http::get(&addr, "/.well-known/openid-configuration")
        .await?
        .json()["issuer"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // The secret client's credentials, as the operator delivered them.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let secret = wait_for("Secret orders-worker-oidc", TIMEOUT, || async {
        Ok(secrets.get_opt("orders-worker-oidc").await?)
    })
    .await?;
    let data = secret.data.unwrap_or_default();
    let text = |k: &str| String::from_utf8_lossy(&data[k].0).into_owned();
    let secret_body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &text("client_id")),
        ("client_secret", &text("client_secret")),
    ])?;

    // ServiceAccount tokens for the issuer.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), NS);
    let mint = || async {
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(vec![issuer.clone()]),
                expiration_seconds: Some(3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = accounts
            .create_token_request(ACCOUNT, &PostParams::default(), &request)
            .await?
            .status;
        status
            .and_then(|s| s.token)
            .ok_or_else(|| anyhow::anyhow!("TokenRequest without a token"))
    };
    let workload_id = format!("{NS}.{ACCOUNT}");
    let warm_token = mint().await?;
    let warm_body = assertion_body(&workload_id, &warm_token);
    wait_for("the workload client to be served", TIMEOUT, || async {
        let answer = http::post(
            &addr,
            "/token",
            "application/x-www-form-urlencoded",
            warm_body.as_bytes(),
            &[],
        )
        .await?;
        Ok((answer.status == 200).then_some(()))
    })
    .await?;
    bodies::post(&addr, "/token", &secret_body).await?;

    let work = std::env::temp_dir().join(format!("signet-bench-workload-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    bodies::write_lines(&work.join("secret.txt"), std::slice::from_ref(&secret_body))?;
    bodies::write_lines(&work.join("warm.txt"), std::slice::from_ref(&warm_body))?;
    let script = work.join("cycle.lua");
    std::fs::write(&script, wrk::SCRIPT)?;
    let load = wrk::Load {
        connections: args.connections,
        threads: 2,
        seconds: args.seconds,
    };
    let run = |file: &str| {
        let target = wrk::Target {
            addr: addr.clone(),
            method: "POST",
            path: "/token",
            bodies: Some(work.join(file)),
        };
        wrk::run(&load, &target, &script)
    };
    eprintln!("[bench-workload] wrk: client secret");
    let by_secret = run("secret.txt")?;
    eprintln!("[bench-workload] wrk: one ServiceAccount token (review cached)");
    let warm = run("warm.txt")?;

    eprintln!(
        "[bench-workload] minting {} ServiceAccount tokens",
        args.cold
    );
    let cold_tokens: Vec<String> = stream::iter(0..args.cold)
        .map(|_| mint())
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let cold_bodies: Vec<String> = cold_tokens
        .iter()
        .map(|t| assertion_body(&workload_id, t))
        .collect();
    let apiserver = apiserver_pid(&cluster)?;
    let before = (cpu::seconds(sts.pid())?, cpu::seconds(apiserver)?);
    eprintln!("[bench-workload] cold: a new token per request");
    let started = Instant::now();
    let mut latencies: Vec<Duration> = stream::iter(&cold_bodies)
        .map(|body| async {
            let at = Instant::now();
            let answer = http::post(
                &addr,
                "/token",
                "application/x-www-form-urlencoded",
                body.as_bytes(),
                &[],
            )
            .await?;
            anyhow::ensure!(
                answer.status == 200,
                "cold: {} {}",
                answer.status,
                answer.body
            );
            Ok(at.elapsed())
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let wall = started.elapsed().as_secs_f64();
    let sts_cores = (cpu::seconds(sts.pid())? - before.0) / wall;
    let apiserver_cores = (cpu::seconds(apiserver)? - before.1) / wall;
    latencies.sort();
    let quantile =
        |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let _ = std::fs::remove_dir_all(&work);
    drop(sts);

    println!("| authentication | req/s | p50 | p99 | vs client secret |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let row = |name: &str, f: &wrk::Figures| {
        println!(
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {:.0} % |",
            f.rate,
            f.p50_us as f64 / 1000.0,
            f.p99_us as f64 / 1000.0,
            100.0 * f.rate / by_secret.rate
        );
    };
    row("client secret (client_secret_post)", &by_secret);
    row("ServiceAccount token, review cached (goal >= 50 %)", &warm);
    let cold_rate = cold_bodies.len() as f64 / wall;
    println!(
        "| ServiceAccount token, a new one per request ({} in flight) | {cold_rate:.0} | {:.2} ms | {:.2} ms | {:.0} % |",
        args.concurrency,
        quantile(0.5).as_secs_f64() * 1000.0,
        quantile(0.99).as_secs_f64() * 1000.0,
        100.0 * cold_rate / by_secret.rate
    );
    println!(
        "\nCold run: {} requests in {wall:.1} s; CPU cores used: signet-sts {sts_cores:.2}, kube-apiserver {apiserver_cores:.2} (TokenReview).",
        cold_bodies.len()
    );
    Ok(())
}
