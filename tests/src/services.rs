//! Real services tests start: redis-server, and waiting for an HTTP server to be ready.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{http, wait_for};

/// A redis-server on a loopback port, without persistence, stopped on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl RedisServer {
    /// Starts redis-server on `port` and waits until it accepts connections. Fails when
    /// redis-server is not installed (the test command installs it).
    pub async fn start_on(port: u16) -> anyhow::Result<Self> {
        Self::start_with(port, &[]).await
    }

    /// [`RedisServer::start_on`] with more of redis-server's arguments (`--name value`).
    pub async fn start_with(port: u16, extra: &[&str]) -> anyhow::Result<Self> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("redis-server: {e} (the test command installs it)"))?;
        let server = Self { child, port };
        wait_for("redis listening", Duration::from_secs(30), || async {
            Ok(std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ()))
        })
        .await?;
        Ok(server)
    }

    /// Starts redis-server on a free port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(crate::free_port()).await
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
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
