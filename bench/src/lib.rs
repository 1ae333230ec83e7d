//! The STS load benchmark (`scripts/bench-sts`): the pieces the `bench-sts` driver and the
//! `ceiling` server share. Not a test: it prints figures.

pub mod bodies;
pub mod cpu;
pub mod crypto;
pub mod manifests;
pub mod report;
pub mod wrk;

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
