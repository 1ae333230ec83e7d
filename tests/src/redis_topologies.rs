//! Real redis topologies for tests, from Debian's redis-server and redis-cli: a Sentinel set
//! (one primary, two replicas, three sentinels) and a Redis Cluster (three primaries with one
//! replica each). Each is started, then waited for until it is whole (replicas linked,
//! sentinels agreeing, every slot served), and stopped on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{RedisServer, TestPki, free_port, wait_for};

/// How long a topology may take to form.
const FORMING: Duration = Duration::from_secs(60);

/// What `redis-cli -p PORT ARGS...` prints, or an error naming the command. It is stopped
/// after a minute: `--cluster create` waits for ever for a cluster whose nodes cannot meet.
pub fn redis_cli(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("timeout")
        .args(["60", "redis-cli", "-p", &port.to_string()])
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

/// [`redis_cli`] over TLS, trusting `ca`, when given.
fn tls_cli(ca: Option<&std::path::Path>, port: u16, args: &[&str]) -> anyhow::Result<String> {
    let Some(ca) = ca else {
        return redis_cli(port, args);
    };
    let ca = ca.to_string_lossy();
    let mut all = vec!["--tls", "--cacert", &ca];
    all.extend(args);
    redis_cli(port, &all)
}

/// The value of `field` in an `INFO` answer.
fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// A fresh folder for a topology's files, removed when dropped.
#[derive(Debug)]
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "signet-redis-{name}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A sentinel process, killed on drop.
#[derive(Debug)]
pub struct Sentinel {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl Sentinel {
    /// Starts a sentinel on `port` monitoring the primary on `primary` (with the data
    /// nodes' password; requiring its own), over TLS with `access.tls`, and waits until it
    /// listens.
    async fn start(
        dir: &std::path::Path,
        port: u16,
        primary: u16,
        access: &Access<'_>,
    ) -> anyhow::Result<Self> {
        // A sentinel rewrites its own file, so each gets one it may write. Its log (the
        // failovers it ran) stays beside the tests' other logs, after the set is gone.
        let conf = dir.join(format!("sentinel-{port}.conf"));
        let log = std::env::temp_dir().join(format!("signet-sentinel-{port}.log"));
        let listen = match access.tls {
            None => format!("port {port}\n"),
            Some(pki) => crate::services::tls_directives(pki, port)
                .into_iter()
                .map(|(name, value)| format!("{name} {value}\n"))
                .collect(),
        };
        let mut text = format!(
            "{listen}bind 127.0.0.1\nsentinel monitor {m} 127.0.0.1 {primary} 2\n\
             sentinel down-after-milliseconds {m} 1000\nsentinel failover-timeout {m} 5000\n\
             logfile {log}\n",
            m = Sentinels::MASTER,
            log = log.display()
        );
        if let Some(pw) = access.data {
            text += &format!("sentinel auth-pass {} {pw}\n", Sentinels::MASTER);
        }
        if let Some(pw) = access.sentinel {
            // Sentinels talk to each other with the same password.
            text += &format!("requirepass {pw}\nsentinel sentinel-pass {pw}\n");
        }
        std::fs::write(&conf, text)?;
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("redis-server --sentinel: {e}"))?;
        let mut sentinel = Self { child, port };
        crate::listening(&mut sentinel.child, port, "redis-server --sentinel").await?;
        Ok(sentinel)
    }
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
    /// The data nodes' password (`requirepass`), if any.
    pub data_password: Option<String>,
    /// The sentinels' password, if any.
    pub sentinel_password: Option<String>,
    /// The CA that signs every process's certificate, when the set speaks TLS only.
    pub tls_ca: Option<PathBuf>,
    /// The primary when started (after a failover, ask the sentinels).
    pub primary: RedisServer,
    /// Its replicas.
    pub replicas: Vec<RedisServer>,
    /// The sentinels.
    pub sentinels: Vec<Sentinel>,
    _dir: Folder,
}

impl Sentinels {
    /// The name the sentinels monitor the primary under.
    pub const MASTER: &str = "signet";

    /// Starts the set and waits until both replicas are linked and every sentinel knows the
    /// primary, both replicas and the two other sentinels.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_passwords(None, None).await
    }

    /// [`Sentinels::start`] with the data nodes requiring `data` and the sentinels
    /// requiring `sentinel` (each as `requirepass`).
    pub async fn start_with_passwords(
        data: Option<&str>,
        sentinel: Option<&str>,
    ) -> anyhow::Result<Self> {
        Self::start_with(Access {
            data,
            sentinel,
            tls: None,
        })
        .await
    }

    /// [`Sentinels::start`] with the passwords and TLS of `access`.
    pub async fn start_with(access: Access<'_>) -> anyhow::Result<Self> {
        let Access {
            data,
            sentinel,
            tls,
        } = access;
        // Every data node, the primary too (it may be demoted), authenticates to its primary.
        let auth: Vec<&str> = data
            .map(|pw| vec!["--requirepass", pw, "--masterauth", pw])
            .unwrap_or_default();
        let primary = RedisServer::start_free_at(tls, &auth).await?;
        let folder = Folder::new("sentinel")?;
        let dir = folder.0.clone();
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
            let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
            args.extend(&auth);
            replicas.push(RedisServer::start_free_at(tls, &args).await?);
        }
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let start = |port| Sentinel::start(&dir, port, primary.port, &access);
            sentinels.push(crate::retry_taken_ports(start).await?);
        }
        let set = Self {
            data_password: data.map(str::to_owned),
            sentinel_password: sentinel.map(str::to_owned),
            tls_ca: tls.map(|pki| pki.ca.clone()),
            primary,
            replicas,
            sentinels,
            _dir: folder,
        };
        wait_for("the Sentinel set to form", FORMING, || async {
            Ok(set.formed().then_some(()))
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}; {}", set.state()))?;
        Ok(set)
    }

    /// What each replica and sentinel says, for a set that did not form.
    fn state(&self) -> String {
        let replicas = self.replicas.iter().map(|r| {
            let link = self.data_cli(r.port, &["INFO", "replication"]).ok();
            let link = link.and_then(|i| info_field(&i, "master_link_status"));
            format!("replica {}: link {link:?}", r.port)
        });
        let sentinels = self.sentinels.iter().map(|s| {
            let seen = self.sentinel_cli(s.port, &["INFO", "sentinel"]).ok();
            let seen = seen.and_then(|i| info_field(&i, "master0"));
            format!("sentinel {}: {seen:?}", s.port)
        });
        replicas.chain(sentinels).collect::<Vec<_>>().join("; ")
    }

    fn formed(&self) -> bool {
        let linked = self.replicas.iter().all(|r| {
            self.data_cli(r.port, &["INFO", "replication"])
                .is_ok_and(|i| info_field(&i, "master_link_status").as_deref() == Some("up"))
        });
        let agreed = self.sentinels.iter().all(|s| {
            self.sentinel_cli(s.port, &["INFO", "sentinel"])
                .is_ok_and(|i| {
                    info_field(&i, "master0").is_some_and(|m| {
                        m.contains("status=ok")
                            && m.contains("slaves=2")
                            && m.contains("sentinels=3")
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
        let answer = self.sentinel_cli(
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

impl Sentinels {
    /// Waits until the sentinels name a primary other than `old` and it answers as one.
    pub async fn new_primary(&self, old: u16) -> anyhow::Result<u16> {
        wait_for("the sentinels to promote a replica", FORMING, || async {
            Ok(self.current_primary().ok().filter(|port| {
                *port != old
                    && self
                        .data_cli(*port, &["ROLE"])
                        .is_ok_and(|role| role.starts_with("master"))
            }))
        })
        .await
    }

    /// [`redis_cli`] at the data node on `port`, with its password.
    pub fn data_cli(&self, port: u16, args: &[&str]) -> anyhow::Result<String> {
        self.cli(port, self.data_password.as_deref(), args)
    }

    /// [`redis_cli`] at the sentinel on `port`, with its password.
    pub fn sentinel_cli(&self, port: u16, args: &[&str]) -> anyhow::Result<String> {
        self.cli(port, self.sentinel_password.as_deref(), args)
    }

    fn cli(&self, port: u16, password: Option<&str>, args: &[&str]) -> anyhow::Result<String> {
        let mut all = Vec::new();
        if let Some(pw) = password {
            all.extend(["-a", pw, "--no-auth-warning"]);
        }
        all.extend(args);
        tls_cli(self.tls_ca.as_deref(), port, &all)
    }
}

/// How a Sentinel set is reached, by clients and by its own processes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Access<'a> {
    /// The data nodes' password (`requirepass`).
    pub data: Option<&'a str>,
    /// The sentinels' password (`requirepass`).
    pub sentinel: Option<&'a str>,
    /// Every process speaks TLS only, with this PKI's certificate.
    pub tls: Option<&'a TestPki>,
}

/// Three primaries with one replica each, every slot assigned.
#[derive(Debug)]
pub struct Cluster {
    /// Its six nodes.
    pub nodes: Vec<RedisServer>,
    /// The CA that signs every node's certificate, when the cluster speaks TLS only.
    pub tls_ca: Option<PathBuf>,
    _dir: Folder,
}

impl Cluster {
    /// Starts six nodes, makes them a cluster with `redis-cli --cluster create` and waits
    /// until every node says `cluster_state:ok` and knows all six.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(None).await
    }

    /// [`Cluster::start`] with every node speaking TLS only (clients, replication and the
    /// cluster bus), with `pki`'s certificate.
    pub async fn start_tls(pki: &TestPki) -> anyhow::Result<Self> {
        Self::start_with(Some(pki)).await
    }

    async fn start_with(tls: Option<&TestPki>) -> anyhow::Result<Self> {
        let folder = Folder::new("cluster")?;
        let dir_text = folder.0.to_string_lossy().into_owned();
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let start = |port: u16| {
                let dir = dir_text.clone();
                async move {
                    let conf = format!("nodes-{port}.conf");
                    let args = [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &conf,
                        "--cluster-node-timeout",
                        "2000",
                        "--dir",
                        &dir,
                        "--tls-cluster",
                        if tls.is_some() { "yes" } else { "no" },
                    ];
                    RedisServer::start_at(port, tls, &args).await
                }
            };
            nodes.push(crate::retry_taken_ports(start).await?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addrs.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        let cluster = Self {
            nodes,
            tls_ca: tls.map(|pki| pki.ca.clone()),
            _dir: folder,
        };
        cluster.cli(cluster.nodes[0].port, &create)?;
        wait_for("the cluster to form", FORMING, || async {
            Ok(cluster.formed().then_some(()))
        })
        .await?;
        Ok(cluster)
    }

    /// Whole: every node serves all slots, sees three primaries and three replicas (right
    /// after `--cluster create`, gossip may still show a replica as a primary), and every
    /// replica is linked to its primary.
    fn formed(&self) -> bool {
        self.nodes.iter().all(|n| {
            let state_ok = self.cli(n.port, &["CLUSTER", "INFO"]).is_ok_and(|i| {
                info_field(&i, "cluster_state").as_deref() == Some("ok")
                    && info_field(&i, "cluster_known_nodes").as_deref() == Some("6")
                    && info_field(&i, "cluster_slots_ok").as_deref() == Some("16384")
            });
            // A replica counts once its link is up: before its first sync, a WAIT at its
            // primary would count no replica.
            let linked = self.cli(n.port, &["INFO", "replication"]).is_ok_and(|i| {
                info_field(&i, "role").as_deref() == Some("master")
                    || info_field(&i, "master_link_status").as_deref() == Some("up")
            });
            state_ok
                && linked
                && self
                    .cli(n.port, &["CLUSTER", "NODES"])
                    .is_ok_and(|nodes| roles(&nodes) == (3, 3))
        })
    }

    /// [`redis_cli`] at the node on `port`, over TLS when the cluster speaks it.
    pub fn cli(&self, port: u16, args: &[&str]) -> anyhow::Result<String> {
        tls_cli(self.tls_ca.as_deref(), port, args)
    }

    /// `host:port` of each node, to seed a client with.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect()
    }
}

/// A shared store as the manifests name it: the URL in its Secret and the `spec.store.redis`
/// lines after `urlSecretRef` (a topology, a wait for replicas). Tests and benchmarks write
/// the example TokenService with it.
#[derive(Clone, Debug)]
pub struct SharedStore {
    url: String,
    more: String,
}

impl SharedStore {
    /// One redis server at `url`.
    pub fn server(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            more: String::new(),
        }
    }

    /// The primary that `set`'s sentinels name (the URL's host is not used).
    pub fn sentinel(set: &Sentinels) -> Self {
        Self {
            url: "redis://localhost".into(),
            more: format!(
                "      sentinel: {{masterName: {}, addresses: {}}}\n",
                Sentinels::MASTER,
                yaml_list(&set.sentinel_addrs())
            ),
        }
    }

    /// The cluster, learnt from its nodes.
    pub fn cluster(cluster: &Cluster) -> Self {
        Self {
            url: "redis://localhost".into(),
            more: format!(
                "      cluster: {{nodes: {}}}\n",
                yaml_list(&cluster.seeds())
            ),
        }
    }

    /// Every write waits for `replicas` replicas, up to `timeout` (e.g. `300ms`).
    pub fn waiting_for(mut self, replicas: u32, timeout: &str) -> Self {
        self.more +=
            &format!("      waitForReplicas: {{replicas: {replicas}, timeout: {timeout}}}\n");
        self
    }

    /// `token_service` (YAML whose store is `type: memory`) with the store switched to this
    /// one, followed by the Secret holding the URL.
    pub fn switch(&self, token_service: &str) -> anyhow::Result<String> {
        let memory = "  store:\n    type: memory\n";
        anyhow::ensure!(
            token_service.contains(memory),
            "the example TokenService's store section changed"
        );
        let redis = format!(
            "  store:\n    type: redis\n    redis:\n      urlSecretRef: {{name: redis, key: url}}\n{}",
            self.more
        );
        Ok(format!(
            "{}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: redis}}\nstringData: {{url: \"{}\"}}\n",
            token_service.replace(memory, &redis),
            self.url
        ))
    }
}

fn yaml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Primaries and replicas in a `CLUSTER NODES` answer (the flags are its third field).
pub fn roles(nodes: &str) -> (usize, usize) {
    let flags: Vec<&str> = nodes
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let has = |f: &&str, role: &str| f.split(',').any(|x| x == role);
    (
        flags.iter().filter(|f| has(f, "master")).count(),
        flags.iter().filter(|f| has(f, "slave")).count(),
    )
}

#[cfg(test)]
mod tests {
    use super::{info_field, roles};

    #[test]
    fn counts_the_roles_of_cluster_nodes() {
        let nodes = "a 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-5460\n\
                     b 127.0.0.1:3@4 slave a 0 0 1 connected\n\
                     c 127.0.0.1:5@6 master - 0 0 2 connected 5461-10922\n";
        assert_eq!(roles(nodes), (2, 1));
    }

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
