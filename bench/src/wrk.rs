//! One wrk run: keep-alive connections over loopback, a Lua script that cycles through
//! prepared request bodies, and the figures its `done` hook prints.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Lua script, written next to the bodies at run time.
pub const SCRIPT: &str = include_str!("../lua/cycle.lua");

/// The shape of the load.
#[derive(Debug, Clone)]
pub struct Load {
    /// Connections kept open.
    pub connections: u32,
    /// wrk threads.
    pub threads: u32,
    /// Seconds per run.
    pub seconds: u32,
}

/// What to send.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port`.
    pub addr: String,
    /// GET or POST.
    pub method: &'static str,
    /// Request path.
    pub path: &'static str,
    /// One form body per line, for POST.
    pub bodies: Option<PathBuf>,
}

/// The result of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// Completed requests per second.
    pub rate: f64,
    /// Median latency, microseconds.
    pub p50_us: u64,
    /// 99th percentile latency, microseconds.
    pub p99_us: u64,
    /// Responses that were not 2xx/3xx.
    pub non_2xx: u64,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
}

/// Runs wrk against `target`; `script` is where the Lua script was written.
pub fn run(load: &Load, target: &Target, script: &Path) -> anyhow::Result<Figures> {
    let mut args = vec![
        format!("-t{}", load.threads),
        format!("-c{}", load.connections),
        format!("-d{}s", load.seconds),
        "--latency".into(),
        "-s".into(),
        script.display().to_string(),
        format!("http://{}", target.addr),
        "--".into(),
        target.method.into(),
        target.path.into(),
    ];
    if let Some(bodies) = &target.bodies {
        args.push(bodies.display().to_string());
    }
    let output = Command::new("wrk")
        .args(&args)
        .output()
        .map_err(|e| anyhow::anyhow!("wrk: {e} (scripts/bench-sts installs it)"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "wrk {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse(&stdout).ok_or_else(|| anyhow::anyhow!("no figures in wrk's output:\n{stdout}"))
}

/// Reads the line the script's `done` hook prints.
pub fn parse(output: &str) -> Option<Figures> {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("SIGNET-BENCH "))?;
    let field = |name: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?
            .parse()
            .ok()
    };
    let seconds = field("duration_us")? as f64 / 1e6;
    Some(Figures {
        rate: field("requests")? as f64 / seconds,
        p50_us: field("p50_us")?,
        p99_us: field("p99_us")?,
        non_2xx: field("non2xx")?,
        socket_errors: field("socket_errors")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_done_line() {
        let out = "Running 10s test\n  Latency ...\nSIGNET-BENCH requests=150000 duration_us=10000000 p50_us=3500 p99_us=9100 non2xx=2 socket_errors=0\n";
        assert_eq!(
            parse(out),
            Some(Figures {
                rate: 15000.0,
                p50_us: 3500,
                p99_us: 9100,
                non_2xx: 2,
                socket_errors: 0
            })
        );
        assert_eq!(parse("Running 10s test\n"), None);
    }
}
