//! Connection churn at the STS's HTTPS listener (issue 19, item 2): opens and closes many TLS
//! connections (handshake, one `GET /healthz`, close) from a few concurrent tasks against the
//! release `signet-sts`, and prints its RSS before, at intervals during, and after, with the
//! `signet_sts_connections` gauge once all are closed. A listener that keeps what closed
//! connections left behind grows with the count; one that forgets them stays flat.
//!
//!   connections [--connections 200000] [--concurrency 32]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use signet_bench::rss_kib;
use signet_tests::tls::{self, TlsConnector};
use signet_tests::{Process, TestPki, free_port, http, repo_root, wait_for};

#[derive(Parser, Debug)]
struct Args {
    /// Connections to open and close.
    #[arg(long, default_value_t = 200_000)]
    connections: usize,
    /// Connections in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

/// One connection: handshake, `GET /healthz`, read to the end, close.
async fn once(connector: &TlsConnector, port: u16) -> anyhow::Result<()> {
    let status = tls::get_once(connector, port, "/healthz").await?;
    anyhow::ensure!(status.starts_with("HTTP/1.1 200"), "{status}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin: PathBuf = repo_root().join("target/release/signet-sts");
    anyhow::ensure!(bin.exists(), "{} is not built", bin.display());
    let dir = std::env::temp_dir().join(format!("signet-bench-conns-{}", std::process::id()));
    let pki = TestPki::create(&dir);
    let (port, metrics_port) = (free_port(), free_port());
    let sts = Process::spawn(
        &bin,
        "sts-connections",
        &[
            format!("--manifests={}", repo_root().join("examples").display()),
            format!("--state-dir={}", dir.join("state").display()),
            format!("--issuer=https://127.0.0.1:{port}"),
            format!("--listen=127.0.0.1:{port}"),
            format!("--metrics-addr=127.0.0.1:{metrics_port}"),
            format!("--tls-cert={}", pki.cert.display()),
            format!("--tls-key={}", pki.key.display()),
        ],
        &[],
    )?;
    let connector = Arc::new(tls::connector(&pki.ca)?);
    wait_for("https", Duration::from_secs(60), || async {
        Ok(once(&connector, port).await.ok())
    })
    .await?;
    let started = Instant::now();
    let before = rss_kib(sts.pid())?;
    println!("| connections closed | STS RSS (MiB) |\n| ---: | ---: |");
    println!("| 0 | {:.1} |", before as f64 / 1024.0);
    let done = Arc::new(AtomicUsize::new(0));
    let step = (args.connections / 10).max(1);
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (connector, done) = (connector.clone(), done.clone());
        let total = args.connections;
        tasks.push(tokio::spawn(async move {
            while done.fetch_add(1, Ordering::Relaxed) < total {
                once(&connector, port).await?;
            }
            anyhow::Ok(())
        }));
    }
    let mut reported = 0;
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let closed = done.load(Ordering::Relaxed).min(args.connections);
        if closed >= reported + step {
            reported = closed - closed % step;
            println!(
                "| {reported} | {:.1} |",
                rss_kib(sts.pid())? as f64 / 1024.0
            );
        }
    }
    for task in tasks {
        task.await??;
    }
    let metrics = format!("127.0.0.1:{metrics_port}");
    let held = wait_for(
        "the listener to hold nothing",
        Duration::from_secs(60),
        || async {
            let body = http::get(&metrics, "/metrics").await?.body;
            Ok(body
                .lines()
                .find_map(|l| l.strip_prefix("signet_sts_connections "))
                .filter(|v| v.trim() == "0")
                .map(str::to_owned))
        },
    )
    .await?;
    let after = rss_kib(sts.pid())?;
    println!(
        "| {} (all) | {:.1} |",
        args.connections,
        after as f64 / 1024.0
    );
    println!();
    println!(
        "{} connections in {:.1} s; RSS after / before = {:.2}; signet_sts_connections {}",
        args.connections,
        started.elapsed().as_secs_f64(),
        after as f64 / before as f64,
        held.trim()
    );
    Ok(())
}
