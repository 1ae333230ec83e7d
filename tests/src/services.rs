//! Real services tests start: redis-server, and waiting for an HTTP server to be ready.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{TestPki, http, wait_for};

/// A redis-server on a loopback port, without persistence, stopped on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    /// Its port (its TLS port when it speaks TLS: then it has no plain one).
    pub port: u16,
    tls: bool,
}

impl RedisServer {
    /// Starts redis-server on `port` and waits until it accepts connections. Fails when
    /// redis-server is not installed (the test command installs it).
    pub async fn start_on(port: u16) -> anyhow::Result<Self> {
        Self::start_with(port, &[]).await
    }

    /// [`RedisServer::start_on`] with more of redis-server's arguments (`--name value`).
    pub async fn start_with(port: u16, extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_at(port, None, extra).await
    }

    /// [`RedisServer::start_with`] on a free port, chosen again when another process took
    /// it between the choice and redis-server's bind (an outgoing connection of a busy test
    /// can take any port of the ephemeral range).
    pub async fn start_free(extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_free_at(None, extra).await
    }

    /// Starts redis-server on a free port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_free(&[]).await
    }

    /// [`RedisServer::start_free`] speaking TLS only, with `pki`'s certificate (and over TLS
    /// to its primary when it is a replica).
    pub async fn start_tls(pki: &TestPki, extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_free_at(Some(pki), extra).await
    }

    /// [`RedisServer::start_free`], over TLS only with `tls`'s certificate when given.
    pub async fn start_free_at(tls: Option<&TestPki>, extra: &[&str]) -> anyhow::Result<Self> {
        retry_taken_ports(|port| Self::start_at(port, tls, extra)).await
    }

    /// [`RedisServer::start_with`], over TLS only with `tls`'s certificate when given.
    pub async fn start_at(
        port: u16,
        tls: Option<&TestPki>,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let listen: Vec<String> = match tls {
            None => vec!["--port".into(), port.to_string()],
            Some(pki) => tls_directives(pki, port)
                .into_iter()
                .flat_map(|(name, value)| [format!("--{name}"), value])
                .collect(),
        };
        let child = Command::new("redis-server")
            .args(listen)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("redis-server: {e} (the test command installs it)"))?;
        let mut server = Self {
            child,
            port,
            tls: tls.is_some(),
        };
        listening(&mut server.child, port, "redis-server").await?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://` when it speaks TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

/// The directives that make a redis process (a data node or a sentinel) listen on `port`
/// over TLS only, with `pki`'s certificate, asking no client certificate, and speak TLS to
/// the primaries and replicas it connects to.
pub(crate) fn tls_directives(pki: &TestPki, port: u16) -> Vec<(&'static str, String)> {
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    vec![
        ("port", "0".into()),
        ("tls-port", port.to_string()),
        ("tls-cert-file", path(&pki.cert)),
        ("tls-key-file", path(&pki.key)),
        ("tls-ca-cert-file", path(&pki.ca)),
        ("tls-auth-clients", "no".into()),
        ("tls-replication", "yes".into()),
    ]
}

impl RedisServer {
    /// Kills the server at once (SIGKILL: no shutdown save, no goodbye to replicas).
    pub fn kill(&mut self) {
        // A paused server is resumed first, so the kill is not left pending.
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes the server (SIGSTOP): its connections stay open, it reads and answers nothing.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused server run on (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A process that exited before it listened: its port was most likely taken.
#[derive(Debug)]
pub struct ExitedEarly {
    what: &'static str,
    port: u16,
    status: std::process::ExitStatus,
}

impl std::fmt::Display for ExitedEarly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} on port {} exited before listening ({}): the port was taken?",
            self.what, self.port, self.status
        )
    }
}

impl std::error::Error for ExitedEarly {}

/// Waits until `child` itself listens on `port`; fails with [`ExitedEarly`] when it exits
/// first. A connection that succeeds is not enough: another test's server may hold the port
/// (free ports are chosen by binding and releasing), and ours then exits on its failed bind.
pub async fn listening(child: &mut Child, port: u16, what: &'static str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(ExitedEarly { what, port, status }.into());
        }
        if owns_listener(child.id(), port)? {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{what} not listening on port {port} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether process `pid` holds a listening IPv4 socket on `port`: the socket inodes that
/// /proc/net/tcp lists in state LISTEN (0A) on that port, against the process's open files.
fn owns_listener(pid: u32, port: u16) -> anyhow::Result<bool> {
    let table = std::fs::read_to_string("/proc/net/tcp")?;
    let wanted = format!(":{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let listens = fields.get(1)?.ends_with(&wanted) && *fields.get(3)? == "0A";
            let inode = fields.get(9)?;
            listens.then(|| format!("socket:[{inode}]"))
        })
        .collect();
    if inodes.is_empty() {
        return Ok(false);
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Ok(false); // exited meanwhile: the next try_wait says so
    };
    Ok(fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    }))
}

/// Runs `start` on a free port, again on another (up to five times) while it fails with
/// [`ExitedEarly`].
pub async fn retry_taken_ports<T, F, Fut>(mut start: F) -> anyhow::Result<T>
where
    F: FnMut(u16) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match start(crate::free_port()).await {
            Err(e) if attempt < 5 && e.is::<ExitedEarly>() => continue,
            outcome => return outcome,
        }
    }
}

/// Waits until `addr` answers `/readyz` with 200.
pub async fn wait_ready(addr: &str) -> anyhow::Result<()> {
    wait_for(
        &format!("{addr} ready"),
        Duration::from_secs(60),
        || async {
            Ok(http::get(addr, "/readyz")
                .await
                .ok()
                .filter(|r| r.status == 200)
                .map(|_| ()))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::owns_listener;

    #[test]
    fn a_listener_is_owned_by_the_process_that_bound_it_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(owns_listener(std::process::id(), port).unwrap());

        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let owned = owns_listener(other.id(), port);
        let _ = other.kill();
        let _ = other.wait();
        assert!(
            !owned.unwrap(),
            "another process does not own this listener"
        );

        drop(listener);
        assert!(!owns_listener(std::process::id(), port).unwrap());
    }
}
