//! CPU time from /proc: on a small machine the load generator and the server share the cores
//! (and on a shared one, other work may too), so a rate means little without the cores each
//! got.

use std::process::Command;

/// Clock ticks per second of /proc's counters.
fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The fields of a /proc/PID/stat line after the name (field 3 onwards; the name in field 2
/// may hold spaces, so split after its closing parenthesis).
fn stat_fields(stat: &str) -> Option<Vec<u64>> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 (the state) is a letter; the numbers start at field 4.
    Some(
        after_name
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// Sum of the stat fields numbered `fields` (1-based, as in proc(5)).
fn stat_sum(path: &str, fields: &[usize]) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path)?;
    let values = stat_fields(&stat).ok_or_else(|| anyhow::anyhow!("unreadable {path}"))?;
    let ticks: u64 = fields
        .iter()
        .map(|n| values.get(n - 4).copied().unwrap_or(0))
        .sum();
    Ok(ticks as f64 / ticks_per_second())
}

/// User plus system CPU seconds of `pid` so far (utime, stime).
pub fn seconds(pid: u32) -> anyhow::Result<f64> {
    stat_sum(&format!("/proc/{pid}/stat"), &[14, 15])
}

/// User plus system CPU seconds so far of each process whose command line holds `marker`
/// (e.g. a private control plane's folder), summed by program name.
pub fn by_program(marker: &str) -> std::collections::BTreeMap<String, f64> {
    programs(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        String::from_utf8_lossy(&cmdline).contains(marker)
    })
}

/// User plus system CPU seconds so far of each running child of `parent`, summed by program
/// name (e.g. the redis servers a benchmark started: they rename their command lines).
pub fn children_by_program(parent: u32) -> std::collections::BTreeMap<String, f64> {
    programs(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat_fields(&stat))
            // Field 4, the parent's pid.
            .is_some_and(|fields| fields.first() == Some(&u64::from(parent)))
    })
}

/// CPU seconds so far of each process `chosen` picks, summed by program name.
fn programs(chosen: impl Fn(u32) -> bool) -> std::collections::BTreeMap<String, f64> {
    let mut programs = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !chosen(pid) {
            continue;
        }
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if let Ok(cpu) = seconds(pid) {
            *programs.entry(name.trim().to_owned()).or_default() += cpu;
        }
    }
    programs
}

/// CPU seconds of this process's children that have been waited for (cutime, cstime): wrk's,
/// once it has exited.
pub fn children_seconds() -> anyhow::Result<f64> {
    stat_sum("/proc/self/stat", &[16, 17])
}

/// CPU seconds of this process (user plus system).
fn own_seconds() -> anyhow::Result<f64> {
    stat_sum("/proc/self/stat", &[14, 15])
}

/// Where the machine's CPU went during a measurement, in cores (CPU seconds per second).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cores {
    /// The server under load.
    pub server: f64,
    /// The load: this process and its children that have exited (wrk, once waited for).
    pub load: f64,
    /// This process's running children whose program name starts with `redis` (the stores a
    /// benchmark started: servers and sentinels).
    pub redis: f64,
    /// The rest of the machine's busy CPU (anything else running).
    pub rest: f64,
}

/// The CPU counters at one moment, to subtract from a later reading.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    server: f64,
    load: f64,
    redis: f64,
    machine: f64,
    at: std::time::Instant,
}

impl Reading {
    /// Reads the counters, `server` being the server under load.
    pub fn take(server: u32) -> anyhow::Result<Self> {
        let redis = children_by_program(std::process::id())
            .into_iter()
            .filter(|(name, _)| name.starts_with("redis"))
            .map(|(_, seconds)| seconds)
            .sum();
        Ok(Self {
            server: seconds(server)?,
            load: own_seconds()? + children_seconds()?,
            redis,
            machine: machine_seconds()?,
            at: std::time::Instant::now(),
        })
    }

    /// The cores used between `before` and this reading.
    pub fn since(&self, before: &Reading) -> Cores {
        let wall = self.at.duration_since(before.at).as_secs_f64();
        let per_second = |now: f64, then: f64| (now - then) / wall;
        let (server, load, redis) = (
            per_second(self.server, before.server),
            per_second(self.load, before.load),
            per_second(self.redis, before.redis),
        );
        Cores {
            server,
            load,
            redis,
            rest: per_second(self.machine, before.machine) - server - load - redis,
        }
    }
}

/// Busy CPU seconds of the whole machine (every state but idle and iowait).
pub fn machine_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let ticks: u64 = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .ok_or_else(|| anyhow::anyhow!("unreadable /proc/stat"))?
        .split_whitespace()
        .enumerate()
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        .filter(|(i, _)| !matches!(i, 3 | 4) && *i < 8)
        .map(|(_, v)| v.parse::<u64>().unwrap_or(0))
        .sum();
    Ok(ticks as f64 / ticks_per_second())
}

/// Waits until the machine has been nearly idle (under a quarter of a core busy) for two
/// seconds, or until `max` passed; says whether it got quiet. On a shared machine this keeps
/// another build from landing in a run.
pub fn wait_quiet(max: std::time::Duration) -> anyhow::Result<bool> {
    let deadline = std::time::Instant::now() + max;
    let window = std::time::Duration::from_secs(2);
    loop {
        let before = machine_seconds()?;
        std::thread::sleep(window);
        if (machine_seconds()? - before) / window.as_secs_f64() < 0.25 {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_numbered_fields() {
        let stat = "4242 (signet sts) S 1 4242 4242 0 -1 4194560 900 0 0 0 1500 250 30 40 20";
        let values = stat_fields(stat).unwrap();
        assert_eq!((values[14 - 4], values[15 - 4]), (1500, 250));
        assert_eq!((values[16 - 4], values[17 - 4]), (30, 40));
        assert!(seconds(std::process::id()).is_ok());
        assert!(children_seconds().is_ok() && machine_seconds().unwrap() > 0.0);
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let children = children_by_program(std::process::id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(children.contains_key("sleep"), "{children:?}");
    }
}
