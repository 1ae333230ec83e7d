//! STS load benchmark driver (`scripts/bench-sts`). Not a test: it prints one markdown table.
//!
//! Writes a manifests folder (examples/ plus N client_credentials clients and a reference-token
//! client, store on a redis it starts), serves it with the release `signet-sts`, issues tokens
//! ahead, then runs wrk against each endpoint and against the `ceiling` server, measures raw
//! ES256 rates in-process, and reads the STS's RSS.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use signet_bench::bodies::{self, form};
use signet_bench::manifests::{self, INTROSPECTOR, bench_client};
use signet_bench::report::{self, Results, Run};
use signet_bench::rss_kib;
use signet_bench::{Progress, crypto, serve, wrk};
use signet_tests::{RedisServer, http, repo_root};

/// STS load benchmark.
#[derive(Parser, Debug)]
struct Args {
    /// OidcClients generated (client_credentials, client_secret_post).
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// Tokens issued ahead for each introspection run.
    #[arg(long, default_value_t = 20_000)]
    tokens: usize,
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// wrk connections (keep-alive).
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// After the measured runs, record the STS with `perf record` during one more
    /// client_credentials run (ES256, and RS256 after the switch) and one more JWT
    /// introspection run (not in the table), writing `token.perf.data`,
    /// `token-rs256.perf.data` and `introspect-jwt.perf.data` into this folder.
    #[arg(long)]
    perf: Option<PathBuf>,
    /// Longest wait, in seconds, for a quiet machine before each measurement (0: do not wait).
    #[arg(long, default_value_t = 120)]
    quiet_wait: u64,
    /// Folder for manifests, state and request bodies (default: a fresh temporary folder).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// Starts `perf record` with call graphs on `pid` for `seconds`, writing `out`.
fn perf_record(pid: u32, seconds: u32, out: &Path) -> anyhow::Result<std::process::Child> {
    std::process::Command::new("perf")
        .args(["record", "-F", "499", "--call-graph", "dwarf", "-o"])
        .arg(out)
        .args(["-p", &pid.to_string(), "--", "sleep", &seconds.to_string()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("perf: {e} (scripts/bench-sts installs linux-perf)"))
}

/// Waits (up to 30 s) until /readyz names another snapshot than `before` did.
async fn wait_for_new_snapshot(addr: &str, before: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = http::get(addr, "/readyz").await?;
        if now.status == 200 && now.body != before {
            anyhow::ensure!(!now.body.contains("refused"), "{}", now.body);
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the STS did not load the changed folder: {}",
            now.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let load_average = std::fs::read_to_string("/proc/loadavg")?
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let progress = Progress::new("bench-sts");
    let (sts_bin, ceiling_bin) = (
        signet_bench::sibling("signet-sts")?,
        signet_bench::sibling("ceiling")?,
    );
    let work = args.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("signet-bench-sts-work-{}", std::process::id()))
    });
    let (manifests_dir, state) = (work.join("manifests"), work.join("state"));
    // Fresh manifests and state: every client's secret is generated, as on a first start. Only
    // these two subfolders are removed, so a --work-dir given by mistake loses nothing else.
    for dir in [&manifests_dir, &state] {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
    }
    std::fs::create_dir_all(&work)?;

    let redis = RedisServer::start().await?;
    manifests::write(
        &manifests_dir,
        &repo_root().join("examples"),
        args.clients,
        Some(&manifests::SharedStore::server(&redis.url())),
    )?;
    progress.say(&format!(
        "starting signet-sts with {} clients",
        args.clients
    ));
    let starting = Instant::now();
    let (mut sts, addr) = serve(
        &sts_bin,
        "bench-signet-sts",
        vec![
            format!("--manifests={}", manifests_dir.display()),
            format!("--state-dir={}", state.display()),
            "--metrics-addr=127.0.0.1:0".into(),
        ],
    )
    .await?;
    let startup_seconds = starting.elapsed().as_secs_f64();
    let rss_loaded_kib = rss_kib(sts.pid())?;
    progress.say(&format!("ready at {addr}; RSS {} KiB", rss_loaded_kib));

    let mut token_requests = Vec::with_capacity(args.clients);
    for n in 0..args.clients {
        let id = bench_client(n);
        let secret = manifests::client_secret(&state, &id)?;
        token_requests.push(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "orders.read"),
        ])?);
    }
    progress.say(&format!("issuing {} ES256 JWTs ahead", args.tokens));
    let cycled: Vec<String> = token_requests
        .iter()
        .cycle()
        .take(args.tokens)
        .cloned()
        .collect();
    let jwts = bodies::issue(&addr, &cycled, 32).await?;
    let introspector = manifests::client_secret(&state, INTROSPECTOR)?;
    let jwt_bodies = bodies::introspections(&jwts, INTROSPECTOR, &introspector)?;

    progress.say(&format!("issuing {} reference tokens ahead", args.tokens));
    let reference_bodies = bodies::references(&addr, &state, args.tokens)
        .await?
        .introspections;

    // The load must measure real work: an inactive answer would be a cheaper path.
    for (what, body) in [
        ("a JWT", &jwt_bodies[0]),
        ("a reference token", &reference_bodies[0]),
    ] {
        let answer = bodies::post(&addr, "/introspect", body).await?;
        anyhow::ensure!(answer["active"] == true, "introspecting {what}: {answer}");
    }
    let files = [
        ("token.txt", &token_requests),
        ("introspect-jwt.txt", &jwt_bodies),
        ("introspect-reference.txt", &reference_bodies),
    ];
    for (name, lines) in files {
        bodies::write_lines(&work.join(name), lines)?;
    }
    let script = work.join("cycle.lua");
    std::fs::write(&script, wrk::SCRIPT)?;

    let quiet = |what: &str| progress.quiet(args.quiet_wait, what).map(drop);
    quiet("the raw rates")?;
    progress.say("raw ES256 sign and verify, one core, 2 s each");
    let raw = tokio::task::spawn_blocking(|| crypto::measure(Duration::from_secs(2))).await??;

    let (ceiling_process, ceiling_addr) = serve(&ceiling_bin, "bench-ceiling", vec![]).await?;
    let load = wrk::Load {
        connections: args.connections,
        threads: args.threads,
        seconds: args.seconds,
    };
    let target = |addr: &str, method, path, bodies: Option<&str>| wrk::Target {
        addr: addr.to_owned(),
        method,
        path,
        bodies: bodies.map(|b| work.join(b)),
    };
    // `profile`: record the server with perf during this run, into that file.
    let run_profiled = |name: &str,
                        server: u32,
                        target: wrk::Target,
                        profile: Option<&Path>|
     -> anyhow::Result<Run> {
        quiet(name)?;
        let perf = profile
            .map(|out| perf_record(server, args.seconds, out))
            .transpose()?;
        progress.say(&format!("wrk: {name}"));
        let run = Run::measure(&load, &target, &script, server)?;
        progress.say(&format!("  {}", run.summary()));
        if let Some(mut perf) = perf {
            anyhow::ensure!(perf.wait()?.success(), "perf record failed");
        }
        Ok(run)
    };
    let run =
        |name: &str, server: u32, target: wrk::Target| run_profiled(name, server, target, None);
    let sts_pid = sts.pid();
    let client_credentials = run(
        "client_credentials",
        sts_pid,
        target(&addr, "POST", "/token", Some("token.txt")),
    )?;
    // The ceiling right after: the two are compared, so they should see the same machine.
    let ceiling = run(
        "ceiling",
        ceiling_process.pid(),
        target(&ceiling_addr, "POST", "/token", Some("token.txt")),
    )?;
    let introspect_jwt = run(
        "introspection, JWTs",
        sts_pid,
        target(&addr, "POST", "/introspect", Some("introspect-jwt.txt")),
    )?;
    let introspect_reference = run(
        "introspection, reference tokens",
        sts_pid,
        target(
            &addr,
            "POST",
            "/introspect",
            Some("introspect-reference.txt"),
        ),
    )?;
    let jwks = run("jwks", sts_pid, target(&addr, "GET", "/jwks", None))?;
    let discovery = run(
        "discovery",
        sts_pid,
        target(&addr, "GET", "/.well-known/openid-configuration", None),
    )?;

    if let Some(dir) = &args.perf {
        std::fs::create_dir_all(dir)?;
        let profiled = [
            ("token", "/token", "token.txt"),
            ("introspect-jwt", "/introspect", "introspect-jwt.txt"),
        ];
        for (name, path, bodies) in profiled {
            let out = dir.join(format!("{name}.perf.data"));
            run_profiled(
                &format!("{path} under perf -> {} (not in the table)", out.display()),
                sts_pid,
                target(&addr, "POST", path, Some(bodies)),
                Some(&out),
            )?;
        }
    }

    let rss_after_kib = rss_kib(sts.pid())?;
    // Last, the same clients with RS256 access tokens: the STS reloads the changed folder and
    // /readyz names the new snapshot once it serves.
    progress.say("switching the TokenService to RS256 access tokens");
    let before = http::get(&addr, "/readyz").await?.body;
    let ts_file = manifests_dir.join("token-service.yaml");
    let ts = std::fs::read_to_string(&ts_file)?;
    anyhow::ensure!(
        ts.contains("accessTokenSigningAlg: ES256"),
        "the example TokenService no longer signs access tokens with ES256; update bench-sts"
    );
    std::fs::write(
        &ts_file,
        ts.replace(
            "accessTokenSigningAlg: ES256",
            "accessTokenSigningAlg: RS256",
        ),
    )?;
    wait_for_new_snapshot(&addr, &before).await?;
    let sample = bodies::issue(&addr, &token_requests[..1], 1).await?;
    let alg = http::jwt_header(&sample[0])["alg"].clone();
    anyhow::ensure!(alg == "RS256", "the STS still signs with {alg}");
    let rs256 = run(
        "client_credentials, RS256",
        sts_pid,
        target(&addr, "POST", "/token", Some("token.txt")),
    )?;
    if let Some(dir) = &args.perf {
        let out = dir.join("token-rs256.perf.data");
        run_profiled(
            &format!(
                "/token RS256 under perf -> {} (not in the table)",
                out.display()
            ),
            sts_pid,
            target(&addr, "POST", "/token", Some("token.txt")),
            Some(&out),
        )?;
    }

    let results = Results {
        load,
        clients: args.clients,
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average,
        client_credentials,
        rs256,
        introspect_jwt,
        introspect_reference,
        jwks,
        discovery,
        ceiling,
        raw,
        startup_seconds,
        rss_loaded_kib,
        rss_after_kib,
    };
    sts.terminate()?;
    if args.work_dir.is_none() {
        std::fs::remove_dir_all(&work)?;
    }
    println!("{}", report::render(&results));
    Ok(())
}
