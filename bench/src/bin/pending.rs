//! Pending-interactions benchmark (`scripts/bench-pending`, issue 19 item 1). Not a test: it
//! prints one markdown table.
//!
//! The release `signet-sts` on the examples with the memory store. The p50 and p99 of JWT
//! introspection (a deny-list lookup in the store) and of code redemption (a compare-and-set on
//! the code, then the tokens) are measured, then `--pending` anonymous `GET /authorize` leave
//! that many interactions in the store (kept 15 minutes), then both are measured again in the
//! same run. The goal: neither p99 more than 2x.

use std::time::Instant;

use clap::Parser;
use futures::{StreamExt, stream};
use signet_bench::bodies::{self, form};
use signet_bench::codeflow::{self, CODE_REQUEST, WEB};
use signet_bench::latency::{Latencies, measure};
use signet_bench::manifests::{self, INTROSPECTOR, bench_client};
use signet_tests::browserless::Person;
use signet_tests::{http, repo_root};

/// Pending-interactions benchmark.
#[derive(Parser, Debug)]
struct Args {
    /// Interactions left pending between the two measurements.
    #[arg(long, default_value_t = 100_000)]
    pending: usize,
    /// Introspections per measurement.
    #[arg(long, default_value_t = 20_000)]
    introspections: usize,
    /// Code redemptions per measurement.
    #[arg(long, default_value_t = 2_000)]
    redemptions: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

/// `count` codes for the web app, from one person's session (one password check in all).
async fn codes(addr: &str, person: &Person, count: usize) -> anyhow::Result<Vec<String>> {
    stream::iter(0..count)
        .map(|_| codeflow::code(addr, person))
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

struct Phase {
    introspection: Latencies,
    redemption: Latencies,
}

async fn phase(
    args: &Args,
    addr: &str,
    person: &Person,
    introspections: &[String],
    web_basic: &str,
) -> anyhow::Result<Phase> {
    let introspection = measure(args.introspections, args.concurrency, |i| async move {
        let body = &introspections[i % introspections.len()];
        let answer = bodies::post(addr, "/introspect", body).await?;
        anyhow::ensure!(answer["active"] == true, "inactive: {answer}");
        Ok(())
    })
    .await
    .strict()?;
    // Codes live a minute: made right before they are redeemed.
    let codes = codes(addr, person, args.redemptions).await?;
    let codes = &codes;
    let redemption = measure(codes.len(), args.concurrency, |i| {
        codeflow::redeem(addr, web_basic, &codes[i])
    })
    .await
    .strict()?;
    Ok(Phase {
        introspection,
        redemption,
    })
}

fn micros(d: std::time::Duration) -> u128 {
    d.as_micros()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sts_bin = signet_bench::sibling("signet-sts")?;
    let work = std::env::temp_dir().join(format!("signet-bench-pending-{}", std::process::id()));
    let (manifests_dir, state) = (work.join("manifests"), work.join("state"));
    manifests::write(&manifests_dir, &repo_root().join("examples"), 1, None)?;
    let args_sts = vec![
        format!("--manifests={}", manifests_dir.display()),
        format!("--state-dir={}", state.display()),
        "--metrics-addr=127.0.0.1:0".into(),
        // Every request comes from loopback: the per-source budget must not be what is measured.
        "--interactions-per-minute=100000000".into(),
    ];
    let (sts, addr) = signet_bench::serve(&sts_bin, "bench-pending-sts", args_sts).await?;

    // Tokens to introspect, and a person signed in once who has consented.
    let secret = manifests::client_secret(&state, &bench_client(0))?;
    let request = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &bench_client(0)),
        ("client_secret", &secret),
        ("scope", "orders.read"),
    ])?;
    let jwts = bodies::issue(&addr, &vec![request; 2_000], 16).await?;
    let introspector = manifests::client_secret(&state, INTROSPECTOR)?;
    let introspections = bodies::introspections(&jwts, INTROSPECTOR, &introspector)?;
    let person = codeflow::signed_in(&addr).await?;
    let web_basic = http::basic_auth(WEB, &manifests::client_secret(&state, WEB)?);

    eprintln!("[bench-pending] measuring with nothing pending");
    let before = phase(&args, &addr, &person, &introspections, &web_basic).await?;
    eprintln!(
        "[bench-pending] leaving {} interactions pending",
        args.pending
    );
    let filling = Instant::now();
    let mut pending_request = CODE_REQUEST.to_vec();
    pending_request.push(("state", "a-state-of-average-length-0123456789"));
    let authorize = format!("/authorize?{}", http::query(&pending_request));
    let authorize = &authorize;
    measure(args.pending, 32, |_| async {
        let answer = http::get(&addr, authorize).await?;
        let location = answer.header("location").unwrap_or_default();
        anyhow::ensure!(
            location.starts_with("/login?"),
            "{} {location}",
            answer.status
        );
        Ok(())
    })
    .await
    .strict()?;
    let fill_seconds = filling.elapsed().as_secs_f64();
    let rss_kib = signet_bench::rss_kib(sts.pid())?;
    eprintln!("[bench-pending] measuring with them pending");
    let after = phase(&args, &addr, &person, &introspections, &web_basic).await?;
    drop(sts);
    let _ = std::fs::remove_dir_all(&work);

    println!(
        "{} interactions left pending in {fill_seconds:.1} s (RSS after: {:.1} MiB); {} requests in flight\n",
        args.pending,
        rss_kib as f64 / 1024.0,
        args.concurrency
    );
    println!(
        "| measurement | p50 before | p50 pending | p99 before | p99 pending | p99 ratio (goal <= 2x) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, b, a) in [
        (
            "JWT introspection (deny-list lookup)",
            &before.introspection,
            &after.introspection,
        ),
        ("code redemption", &before.redemption, &after.redemption),
    ] {
        let ratio = a.quantile(0.99).as_secs_f64() / b.quantile(0.99).as_secs_f64();
        println!(
            "| {name} | {} us | {} us | {} us | {} us | {ratio:.2}x |",
            micros(b.quantile(0.5)),
            micros(a.quantile(0.5)),
            micros(b.quantile(0.99)),
            micros(a.quantile(0.99)),
        );
    }
    Ok(())
}
