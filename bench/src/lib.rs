//! The STS load benchmark (`scripts/bench-sts`): the pieces the `bench-sts` driver and the
//! `ceiling` server share. Not a test: it prints figures.

pub mod bodies;
pub mod codeflow;
pub mod cpu;
pub mod crypto;
pub mod latency;
pub mod manifests;
pub mod report;
pub mod wrk;

use std::path::Path;
use std::time::Instant;

use signet_tests::{Process, free_port, wait_ready};

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for pid {pid}"))
}

/// A binary built next to the running benchmark (`cargo build --release -p signet-sts
/// -p signet-bench` puts them in one folder).
pub fn sibling(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no folder", exe.display()))?
        .join(name);
    anyhow::ensure!(bin.exists(), "{} is not built", bin.display());
    Ok(bin)
}

/// Starts `bin` on a free loopback port and waits for /readyz; on failure, the error ends with
/// the last lines the program logged.
pub async fn serve(
    bin: &Path,
    name: &str,
    mut args: Vec<String>,
) -> anyhow::Result<(Process, String)> {
    let addr = format!("127.0.0.1:{}", free_port());
    args.push(format!("--listen={addr}"));
    let process = Process::spawn(bin, name, &args, &[])?;
    if let Err(error) = wait_ready(&addr).await {
        let log = process.output();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        anyhow::bail!(
            "{name}: {error}\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok((process, addr))
}

/// Progress lines on stderr, each with the seconds since the benchmark started.
pub struct Progress {
    name: &'static str,
    started: Instant,
}

impl Progress {
    /// Starts the clock of benchmark `name`.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            started: Instant::now(),
        }
    }

    /// Prints `what`.
    pub fn say(&self, what: &str) {
        eprintln!(
            "[{} {:5.1}s] {what}",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Waits up to `max_seconds` (0: not at all) for a quiet machine before measuring `what`;
    /// says so when it stayed busy, and returns whether it got quiet.
    pub fn quiet(&self, max_seconds: u64, what: &str) -> anyhow::Result<bool> {
        if max_seconds == 0 || cpu::wait_quiet(std::time::Duration::from_secs(max_seconds))? {
            return Ok(true);
        }
        self.say(&format!(
            "the machine stayed busy for {max_seconds} s; measuring {what} anyway"
        ));
        Ok(false)
    }
}
