//! Store benchmark (`scripts/bench-store`, issue 24). Not a test: it prints markdown tables.
//!
//! In one run, for each store (one redis server, Sentinel, Cluster, and Sentinel and Cluster
//! with every write waiting for all replicas), in turn: the topology is started, the release
//! `signet-sts` serves the examples on it, then it measures reference-token introspection
//! and issuance with wrk, the authorization code flow with an in-process driver (each request
//! needs the answer of the one before), and the latency of a single-use write under a light
//! load (private_key_jwt assertions: each `jti` is set once in the store). Rates are given as
//! ratios to the single server's, measured in the same run.

use std::any::Any;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use serde_json::json;
use signet_bench::bodies::{self, assertion_body};
use signet_bench::latency::{Latencies, measure_for};
use signet_bench::manifests::{self, ASSERTION_CLIENT, SharedStore};
use signet_bench::{Progress, codeflow, cpu, serve, wrk};
use signet_crds::keygen::{self, Generated};
use signet_crds::v1alpha1::Algorithm;
use signet_sts::jose::Signer;
use signet_tests::redis_topologies::{Cluster, Sentinels};
use signet_tests::{RedisServer, http, repo_root};

/// Store benchmark: one redis server, Sentinel and Cluster compared in one run.
#[derive(Parser, Debug)]
struct Args {
    /// Stores measured, in this order (the first is the one the ratios divide by).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Kind::ALL)]
    stores: Vec<Kind>,
    /// OidcClients generated besides the examples'.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Reference tokens issued ahead for the introspection run.
    #[arg(long, default_value_t = 5_000)]
    tokens: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 6)]
    seconds: u32,
    /// wrk connections for the rates (keep-alive).
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// wrk threads for the rates.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Code flows in flight at once.
    #[arg(long, default_value_t = 16)]
    flows: usize,
    /// wrk connections (one thread) for the single-use write latency: a light load.
    #[arg(long, default_value_t = 2)]
    latency_connections: u32,
    /// Assertions signed ahead for the latency run (each is spent once; the run must not
    /// send more).
    #[arg(long, default_value_t = 60_000)]
    assertions: usize,
    /// `waitForReplicas.timeout` of the stores that wait.
    #[arg(long, default_value = "250ms")]
    wait_timeout: String,
    /// Longest wait, in seconds, for a quiet machine before each measurement (0: do not wait).
    #[arg(long, default_value_t = 30)]
    quiet_wait: u64,
}

/// A store the STS runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// One redis-server.
    Single,
    /// One primary, two replicas, three sentinels.
    Sentinel,
    /// Three primaries with one replica each.
    Cluster,
    /// Sentinel, every write waiting for both replicas.
    SentinelWait,
    /// Cluster, every write waiting for the primary's replica.
    ClusterWait,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Single,
        Kind::Sentinel,
        Kind::Cluster,
        Kind::SentinelWait,
        Kind::ClusterWait,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Single => "single redis-server",
            Kind::Sentinel => "Sentinel (1 primary, 2 replicas, 3 sentinels)",
            Kind::Cluster => "Cluster (3 primaries, 3 replicas)",
            Kind::SentinelWait => "Sentinel, waitForReplicas 2",
            Kind::ClusterWait => "Cluster, waitForReplicas 1",
        }
    }

    /// The same topology without the wait, whose latency the wait's cost is measured against.
    fn without_wait(self) -> Option<Kind> {
        match self {
            Kind::SentinelWait => Some(Kind::Sentinel),
            Kind::ClusterWait => Some(Kind::Cluster),
            _ => None,
        }
    }

    /// Starts the topology; returns how the STS reaches it and what keeps it running.
    async fn start(self, wait_timeout: &str) -> anyhow::Result<(SharedStore, Box<dyn Any>)> {
        Ok(match self {
            Kind::Single => {
                let server = RedisServer::start().await?;
                (SharedStore::server(&server.url()), Box::new(server))
            }
            Kind::Sentinel | Kind::SentinelWait => {
                let set = Sentinels::start().await?;
                let mut store = SharedStore::sentinel(&set);
                if self == Kind::SentinelWait {
                    store = store.waiting_for(set.replicas.len() as u32, wait_timeout);
                }
                (store, Box::new(set))
            }
            Kind::Cluster | Kind::ClusterWait => {
                let cluster = Cluster::start().await?;
                let mut store = SharedStore::cluster(&cluster);
                if self == Kind::ClusterWait {
                    store = store.waiting_for(1, wait_timeout);
                }
                (store, Box::new(cluster))
            }
        })
    }
}

/// One measurement: a rate, its latencies, its failures and the CPU each side used.
#[derive(Debug, Clone)]
struct Measured {
    rate: f64,
    p50_us: u64,
    p99_us: u64,
    /// Failed requests (wrk: non-2xx and socket errors).
    failed: u64,
    cores: cpu::Cores,
    /// Whether the machine was quiet before the measurement started.
    quiet: bool,
}

impl Measured {
    /// One line for the progress log.
    fn summary(&self) -> String {
        let c = &self.cores;
        format!(
            "{:.0}/s, p50 {} us, p99 {} us, failed {}; cores: STS {:.2}, load {:.2}, redis {:.2}, rest {:.2}",
            self.rate, self.p50_us, self.p99_us, self.failed, c.server, c.load, c.redis, c.rest
        )
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

/// What one store gave.
struct StoreResults {
    kind: Kind,
    introspection: Measured,
    issuance: Measured,
    flows: Measured,
    /// The redemption half of each code flow.
    redemption: Latencies,
    assertions: Measured,
}

/// `count` client assertions for `issuer`, each with its own `jti`, signed with `key`.
fn sign_assertions(key: &Generated, issuer: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let signer = Signer::from_pem(&key.kid, Algorithm::ES256, &key.private_pem)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    Ok((0..count)
        .map(|_| {
            let claims = json!({
                "iss": ASSERTION_CLIENT, "sub": ASSERTION_CLIENT, "aud": issuer,
                "iat": now, "exp": now + 300, "jti": keygen::client_secret(),
            });
            assertion_body(ASSERTION_CLIENT, &signer.sign("JWT", &claims))
        })
        .collect())
}

struct Bench {
    args: Args,
    progress: Progress,
    key: Generated,
    sts_bin: std::path::PathBuf,
    work: std::path::PathBuf,
    /// Measurements that started on a busy machine.
    busy: Mutex<Vec<String>>,
}

impl Bench {
    fn quiet(&self, what: &str) -> anyhow::Result<bool> {
        let quiet = self.progress.quiet(self.args.quiet_wait, what)?;
        if !quiet {
            self.busy
                .lock()
                .expect("not poisoned")
                .push(what.to_owned());
        }
        Ok(quiet)
    }

    fn wrk(
        &self,
        what: &str,
        load: &wrk::Load,
        target: &wrk::Target,
        server: u32,
    ) -> anyhow::Result<Measured> {
        let quiet = self.quiet(what)?;
        self.progress.say(&format!("wrk: {what}"));
        let before = cpu::Reading::take(server)?;
        let figures = wrk::run(load, target, &self.work.join("cycle.lua"))?;
        let measured = Measured {
            rate: figures.rate,
            p50_us: figures.p50_us,
            p99_us: figures.p99_us,
            failed: figures.non_2xx + figures.socket_errors,
            cores: cpu::Reading::take(server)?.since(&before),
            quiet,
        };
        self.progress.say(&format!("  {}", measured.summary()));
        Ok(measured)
    }

    async fn store(&self, kind: Kind) -> anyhow::Result<StoreResults> {
        let args = &self.args;
        let label = format!("{kind:?}").to_lowercase();
        self.progress.say(&format!("starting {}", kind.name()));
        let (store, topology) = kind.start(&args.wait_timeout).await?;
        let dir = self.work.join(&label);
        let (manifests_dir, state) = (dir.join("manifests"), dir.join("state"));
        manifests::write(
            &manifests_dir,
            &repo_root().join("examples"),
            args.clients,
            Some(&store),
        )?;
        manifests::assertion_client(&manifests_dir, &self.key.public_jwk.to_string())?;
        let (mut sts, addr) = serve(
            &self.sts_bin,
            &format!("bench-store-{label}"),
            vec![
                format!("--manifests={}", manifests_dir.display()),
                format!("--state-dir={}", state.display()),
                "--metrics-addr=127.0.0.1:0".into(),
                // Every request comes from loopback: the per-source budget is not measured.
                "--interactions-per-minute=100000000".into(),
            ],
        )
        .await?;
        let sts_pid = sts.pid();
        self.progress
            .say(&format!("signet-sts ready at {addr} on {}", kind.name()));

        let references = bodies::references(&addr, &state, args.tokens).await?;
        let answer = bodies::post(&addr, "/introspect", &references.introspections[0]).await?;
        anyhow::ensure!(answer["active"] == true, "introspection: {answer}");
        let files = [
            ("introspect.txt", references.introspections),
            ("issue.txt", vec![references.request]),
        ];
        for (name, lines) in &files {
            bodies::write_lines(&dir.join(name), lines)?;
        }
        let target = |path, file: &str| wrk::Target {
            addr: addr.clone(),
            method: "POST",
            path,
            bodies: Some(dir.join(file)),
        };
        let load = wrk::Load {
            connections: args.connections,
            threads: args.threads,
            seconds: args.seconds,
        };
        let what = |m: &str| format!("{m}, {}", kind.name());
        let introspection = self.wrk(
            &what("reference-token introspection"),
            &load,
            &target("/introspect", "introspect.txt"),
            sts_pid,
        )?;
        let issuance = self.wrk(
            &what("reference-token issuance"),
            &load,
            &target("/token", "issue.txt"),
            sts_pid,
        )?;

        let person = codeflow::signed_in(&addr).await?;
        let basic = http::basic_auth(
            codeflow::WEB,
            &manifests::client_secret(&state, codeflow::WEB)?,
        );
        let quiet = self.quiet(&what("code flow"))?;
        self.progress.say(&format!(
            "code flows, {} in flight: {}",
            args.flows,
            kind.name()
        ));
        let redemptions = Mutex::new(Vec::new());
        let before = cpu::Reading::take(sts_pid)?;
        let outcome = measure_for(
            Duration::from_secs(args.seconds.into()),
            args.flows,
            |_| async {
                let code = codeflow::code(&addr, &person).await?;
                let at = Instant::now();
                codeflow::redeem(&addr, &basic, &code).await?;
                redemptions.lock().expect("not poisoned").push(at.elapsed());
                Ok(())
            },
        )
        .await;
        let cores = cpu::Reading::take(sts_pid)?.since(&before);
        if let Some(failure) = &outcome.first_failure {
            self.progress.say(&format!(
                "  {} flows failed, the first: {failure}",
                outcome.failures
            ));
        }
        let flows = Measured {
            rate: outcome.rate(),
            p50_us: micros(outcome.latencies.quantile(0.5)),
            p99_us: micros(outcome.latencies.quantile(0.99)),
            failed: outcome.failures as u64,
            cores,
            quiet,
        };
        let redemption = Latencies::new(redemptions.into_inner().expect("not poisoned"));
        self.progress.say(&format!(
            "  flows {}; redemption p50 {} us, p99 {} us",
            flows.summary(),
            micros(redemption.quantile(0.5)),
            micros(redemption.quantile(0.99)),
        ));

        let discovery = http::get(&addr, "/.well-known/openid-configuration").await?;
        let issuer = discovery.json()["issuer"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let signed = sign_assertions(&self.key, &issuer, args.assertions)?;
        bodies::post(&addr, "/token", &signed[0]).await?;
        bodies::write_lines(&dir.join("assertions.txt"), &signed[1..])?;
        let light = wrk::Load {
            connections: args.latency_connections,
            threads: 1,
            seconds: args.seconds,
        };
        let assertions = self.wrk(
            &what("private_key_jwt client_credentials (jti set once)"),
            &light,
            &target("/token", "assertions.txt"),
            sts_pid,
        )?;
        let sent = assertions.rate * f64::from(args.seconds);
        anyhow::ensure!(
            sent < (args.assertions - 1) as f64,
            "about {sent:.0} assertions sent, only {} signed: raise --assertions",
            args.assertions - 1
        );

        sts.terminate()?;
        drop(topology);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(StoreResults {
            kind,
            introspection,
            issuance,
            flows,
            redemption,
            assertions,
        })
    }
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn ratio(value: f64, base: f64) -> String {
    format!("{:.2}x", value / base)
}

/// The model name /proc/cpuinfo gives.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn render(args: &Args, results: &[StoreResults], busy: &[String], load_average: &str) -> String {
    let mut out = String::new();
    let base = &results[0];
    let _ = writeln!(
        out,
        "{} CPUs ({}), load average {load_average} at the start; {} OidcClients besides the examples'; {} s per measurement. Ratios are to the {}, measured in the same run.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        args.clients,
        args.seconds,
        base.kind.name()
    );
    let _ = writeln!(
        out,
        "| store | reference-token introspection | ratio | reference-token issuance | ratio | code flows | ratio |"
    );
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for r in results {
        let _ = writeln!(
            out,
            "| {} | {:.0}/s | {} | {:.0}/s | {} | {:.0}/s | {} |",
            r.kind.name(),
            r.introspection.rate,
            ratio(r.introspection.rate, base.introspection.rate),
            r.issuance.rate,
            ratio(r.issuance.rate, base.issuance.rate),
            r.flows.rate,
            ratio(r.flows.rate, base.flows.rate),
        );
    }
    let _ = writeln!(
        out,
        "\nIntrospection and issuance: wrk, {} keep-alive connections, {} threads; a reference token is read (introspection) or written (issuance) in the store per request. Code flows: {} in flight, each a `GET /authorize` with alice's session (the code written) then its redemption at `/token` (the code taken once, an RS256 ID token and an ES256 access token signed), one new TCP connection per request.\n",
        args.connections, args.threads, args.flows
    );
    let _ = writeln!(
        out,
        "| store | private_key_jwt token, jti set once: p50 | p99 | rate | code redemption (in the flows above): p50 | p99 |"
    );
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: |\n");
    for r in results {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0}/s | {} | {} |",
            r.kind.name(),
            ms(r.assertions.p50_us),
            ms(r.assertions.p99_us),
            r.assertions.rate,
            ms(micros(r.redemption.quantile(0.5))),
            ms(micros(r.redemption.quantile(0.99))),
        );
    }
    let _ = writeln!(
        out,
        "\nprivate_key_jwt: wrk, {} connections on one thread (a light load), each request a new assertion whose `jti` the STS sets once in the store (SET NX), then an ES256 access token.",
        args.latency_connections
    );
    for r in results {
        let Some(plain) = r
            .kind
            .without_wait()
            .and_then(|k| results.iter().find(|p| p.kind == k))
        else {
            continue;
        };
        let delta = |with: u64, without: u64| (with as f64 - without as f64) / 1000.0;
        let _ = writeln!(
            out,
            "- {} against {}: private_key_jwt p50 {:+.2} ms ({}), p99 {:+.2} ms; code redemption p50 {:+.2} ms ({}); code flows {}; reference-token issuance {}.",
            r.kind.name(),
            plain.kind.name(),
            delta(r.assertions.p50_us, plain.assertions.p50_us),
            ratio(r.assertions.p50_us as f64, plain.assertions.p50_us as f64),
            delta(r.assertions.p99_us, plain.assertions.p99_us),
            delta(
                micros(r.redemption.quantile(0.5)),
                micros(plain.redemption.quantile(0.5))
            ),
            ratio(
                r.redemption.quantile(0.5).as_secs_f64(),
                plain.redemption.quantile(0.5).as_secs_f64()
            ),
            ratio(r.flows.rate, plain.flows.rate),
            ratio(r.issuance.rate, plain.issuance.rate),
        );
    }
    out.push_str("\nEvery measurement:\n\n");
    out.push_str(
        "| store | measurement | rate | p50 | p99 | failed | CPU cores: STS / load / redis / rest of the machine |\n",
    );
    out.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    for r in results {
        let rows = [
            ("reference-token introspection", &r.introspection),
            ("reference-token issuance", &r.issuance),
            ("code flow (authorize + redeem)", &r.flows),
            ("private_key_jwt token", &r.assertions),
        ];
        for (what, m) in rows {
            let c = &m.cores;
            let _ = writeln!(
                out,
                "| {} | {what}{} | {:.0}/s | {} | {} | {} | {:.2} / {:.2} / {:.2} / {:.2} |",
                r.kind.name(),
                if m.quiet { "" } else { " (machine busy)" },
                m.rate,
                ms(m.p50_us),
                ms(m.p99_us),
                m.failed,
                c.server,
                c.load,
                c.redis,
                c.rest
            );
        }
    }
    if !busy.is_empty() {
        let _ = writeln!(
            out,
            "\nThe machine stayed busy (over a quarter of a core) for {} s before: {}.",
            args.quiet_wait,
            busy.join("; ")
        );
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(!args.stores.is_empty(), "no store to measure");
    let load_average = std::fs::read_to_string("/proc/loadavg")?
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let work = std::env::temp_dir().join(format!("signet-bench-store-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    std::fs::write(work.join("cycle.lua"), wrk::SCRIPT)?;
    let bench = Bench {
        progress: Progress::new("bench-store"),
        key: keygen::generate(Algorithm::ES256, None)?,
        sts_bin: signet_bench::sibling("signet-sts")?,
        work: work.clone(),
        busy: Mutex::new(Vec::new()),
        args,
    };
    let mut results = Vec::new();
    for kind in bench.args.stores.clone() {
        results.push(bench.store(kind).await?);
    }
    let busy = bench.busy.lock().expect("not poisoned").clone();
    println!("{}", render(&bench.args, &results, &busy, &load_average));
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
