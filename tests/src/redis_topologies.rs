//! Real redis topologies for tests, from Debian's redis-server and redis-cli: a Sentinel set
//! (one primary, two replicas, three sentinels) and a Redis Cluster (three primaries with one
//! replica each). Each is started, then waited for until it is whole (replicas linked,
//! sentinels agreeing, every slot served), and stopped on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{RedisServer, free_port, wait_for};

/// How long a topology may take to form.
const FORMING: Duration = Duration::from_secs(60);

/// What `redis-cli -p PORT ARGS...` prints, or an error naming the command.
pub fn redis_cli(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("redis-cli: {e} (the test command installs redis-server)"))?;
    anyhow::ensure!(
        out.status.success(),
        "redis-cli -p {port} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The value of `field` in an `INFO` answer.
fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// A fresh folder for a topology's files.
fn folder(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "signet-redis-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A sentinel process, killed on drop.
#[derive(Debug)]
pub struct Sentinel {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One primary, two replicas and three sentinels monitoring them as [`Sentinels::MASTER`].
#[derive(Debug)]
pub struct Sentinels {
    /// The primary when started (after a failover, ask the sentinels).
    pub primary: RedisServer,
    /// Its replicas.
    pub replicas: Vec<RedisServer>,
    /// The sentinels.
    pub sentinels: Vec<Sentinel>,
    dir: PathBuf,
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Sentinels {
    /// The name the sentinels monitor the primary under.
    pub const MASTER: &str = "signet";

    /// Starts the set and waits until both replicas are linked and every sentinel knows the
    /// primary, both replicas and the two other sentinels.
    pub async fn start() -> anyhow::Result<Self> {
        let primary = RedisServer::start().await?;
        let dir = folder("sentinel")?;
        let mut replicas = Vec::new();
        for _ in 0..2 {
            // A replica keeps the primary's RDB on disk: in a folder of its own, not the
            // test's working folder.
            let own = dir.join(format!("replica-{}", replicas.len()));
            std::fs::create_dir_all(&own)?;
            let args = [
                "--replicaof".to_owned(),
                "127.0.0.1".into(),
                primary.port.to_string(),
                "--dir".into(),
                own.to_string_lossy().into_owned(),
            ];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            replicas.push(RedisServer::start_with(free_port(), &args).await?);
        }
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            // A sentinel rewrites its own file, so each gets one it may write.
            let conf = dir.join(format!("sentinel-{port}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\nsentinel monitor {m} 127.0.0.1 {p} 2\n\
                     sentinel down-after-milliseconds {m} 1000\nsentinel failover-timeout {m} 5000\n",
                    m = Self::MASTER,
                    p = primary.port
                ),
            )?;
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| anyhow::anyhow!("redis-server --sentinel: {e}"))?;
            sentinels.push(Sentinel { child, port });
        }
        let set = Self {
            primary,
            replicas,
            sentinels,
            dir,
        };
        wait_for("the Sentinel set to form", FORMING, || async {
            Ok(set.formed().then_some(()))
        })
        .await?;
        Ok(set)
    }

    fn formed(&self) -> bool {
        let linked = self.replicas.iter().all(|r| {
            redis_cli(r.port, &["INFO", "replication"])
                .is_ok_and(|i| info_field(&i, "master_link_status").as_deref() == Some("up"))
        });
        let agreed = self.sentinels.iter().all(|s| {
            redis_cli(s.port, &["INFO", "sentinel"]).is_ok_and(|i| {
                info_field(&i, "master0").is_some_and(|m| {
                    m.contains("status=ok") && m.contains("slaves=2") && m.contains("sentinels=3")
                })
            })
        });
        linked && agreed
    }

    /// `host:port` of each sentinel.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// The port the sentinels now name as the primary.
    pub fn current_primary(&self) -> anyhow::Result<u16> {
        let answer = redis_cli(
            self.sentinels[0].port,
            &["SENTINEL", "get-master-addr-by-name", Self::MASTER],
        )?;
        answer
            .lines()
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no primary named: {answer}"))
    }
}

/// Three primaries with one replica each, every slot assigned.
#[derive(Debug)]
pub struct Cluster {
    /// Its six nodes.
    pub nodes: Vec<RedisServer>,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Cluster {
    /// Starts six nodes, makes them a cluster with `redis-cli --cluster create` and waits
    /// until every node says `cluster_state:ok` and knows all six.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = folder("cluster")?;
        let dir_text = dir.to_string_lossy().into_owned();
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_port();
            let conf = format!("nodes-{port}.conf");
            let args = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &conf,
                "--cluster-node-timeout",
                "2000",
                "--dir",
                &dir_text,
            ];
            nodes.push(RedisServer::start_with(port, &args).await?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addrs.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        redis_cli(nodes[0].port, &create)?;
        let cluster = Self { nodes, dir };
        wait_for("the cluster to form", FORMING, || async {
            Ok(cluster.formed().then_some(()))
        })
        .await?;
        Ok(cluster)
    }

    fn formed(&self) -> bool {
        self.nodes.iter().all(|n| {
            redis_cli(n.port, &["CLUSTER", "INFO"]).is_ok_and(|i| {
                info_field(&i, "cluster_state").as_deref() == Some("ok")
                    && info_field(&i, "cluster_known_nodes").as_deref() == Some("6")
                    && info_field(&i, "cluster_slots_ok").as_deref() == Some("16384")
            })
        })
    }

    /// `host:port` of each node, to seed a client with.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::info_field;

    #[test]
    fn reads_a_field_of_an_info_answer() {
        let info = "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n";
        assert_eq!(
            info_field(info, "master_link_status").as_deref(),
            Some("up")
        );
        assert_eq!(info_field(info, "role").as_deref(), Some("slave"));
        assert_eq!(info_field(info, "master"), None);
    }
}
