//! The listeners at their edges (issue 19, items 2 and 3): an HTTPS listener forgets each
//! connection once it closes, and neither listener keeps a client that sends half a request
//! (slowloris) past the header-read timeout, while other clients are served meanwhile.

use std::path::Path;
use std::time::Duration;

use signet_tests::tls::TlsConnector;
use signet_tests::{Process, http, repo_root, tls, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(60);

struct Sts {
    process: Process,
    port: u16,
    metrics: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A standalone STS on the examples; `extra` are more flags.
async fn start(test: &str, extra: &[String]) -> anyhow::Result<Sts> {
    let dir = std::env::temp_dir().join(format!("signet-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (port, metrics_port) = (free_port(), free_port());
    let scheme = if extra.iter().any(|a| a.starts_with("--tls-cert")) {
        "https"
    } else {
        "http"
    };
    let mut args = vec![
        format!("--manifests={}", repo_root().join("examples").display()),
        format!("--state-dir={}", dir.join("state").display()),
        format!("--issuer={scheme}://127.0.0.1:{port}"),
        format!("--listen=127.0.0.1:{port}"),
        format!("--metrics-addr=127.0.0.1:{metrics_port}"),
    ];
    args.extend_from_slice(extra);
    let process = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_signet-sts")),
        test,
        &args,
        &[],
    )?;
    let metrics = format!("127.0.0.1:{metrics_port}");
    wait_for("the metrics endpoint", TIMEOUT, || async {
        Ok(http::get(&metrics, "/metrics").await.ok().map(|_| ()))
    })
    .await?;
    Ok(Sts {
        process,
        port,
        metrics,
    })
}

impl Sts {
    /// The value of the gauge `name` on /metrics.
    async fn gauge(&self, name: &str) -> anyhow::Result<Option<f64>> {
        let body = http::get(&self.metrics, "/metrics").await?.body;
        Ok(body.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(' ')?;
            value.trim().parse().ok()
        }))
    }
}

fn tls_connector(ca: &Path) -> TlsConnector {
    tls::connector(ca).expect("the test CA")
}

async fn one_tls_request(connector: &TlsConnector, port: u16) -> anyhow::Result<String> {
    tls::get_once(connector, port, "/healthz").await
}

#[tokio::test]
async fn an_https_listener_forgets_every_closed_connection() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("signet-tls-conns-{}", std::process::id()));
    let pki = signet_tests::TestPki::create(&dir);
    let sts = start(
        "tls-conns",
        &[
            format!("--tls-cert={}", pki.cert.display()),
            format!("--tls-key={}", pki.key.display()),
        ],
    )
    .await?;
    let connector = tls_connector(&pki.ca);
    wait_for("https", TIMEOUT, || async {
        Ok(one_tls_request(&connector, sts.port).await.ok())
    })
    .await?;
    // The gauge counts what the listener holds: one open connection shows.
    let held_open = tls::connect(&connector, sts.port).await?;
    wait_for("one connection held", TIMEOUT, || async {
        Ok((sts.gauge("signet_sts_connections").await? == Some(1.0)).then_some(()))
    })
    .await?;
    drop(held_open);
    for _ in 0..2_000 {
        let status = one_tls_request(&connector, sts.port).await?;
        assert_eq!(status, "HTTP/1.1 200 OK");
    }
    // Every connection is closed: the listener holds none of them any more.
    wait_for("no connection held", TIMEOUT, || async {
        Ok((sts.gauge("signet_sts_connections").await? == Some(0.0)).then_some(()))
    })
    .await?;
    drop(sts.process);
    Ok(())
}

/// Sends half a request line on a fresh connection (through TLS when `tls` is given) and
/// resolves once the server closes it.
async fn half_a_request_is_dropped(port: u16, tls: Option<&TlsConnector>) -> anyhow::Result<()> {
    let mut buffer = [0u8; 256];
    // Closed: end of stream, or an error once the server has gone.
    match tls {
        Some(connector) => {
            let mut stream = tls::connect(connector, port).await?;
            stream.write_all(b"GET /healthz HT").await?;
            while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {}
        }
        None => {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
            stream.write_all(b"GET /healthz HT").await?;
            while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {}
        }
    }
    Ok(())
}

async fn slow_client_is_dropped_while_others_are_served(
    sts: &Sts,
    tls: Option<&TlsConnector>,
) -> anyhow::Result<()> {
    let slow = tokio::spawn({
        let (port, tls) = (sts.port, tls.cloned());
        async move { half_a_request_is_dropped(port, tls.as_ref()).await }
    });
    // Meanwhile others are answered.
    for _ in 0..5 {
        let status = match tls {
            Some(connector) => one_tls_request(connector, sts.port).await?,
            None => {
                let r = http::get(&format!("127.0.0.1:{}", sts.port), "/healthz").await?;
                format!("HTTP/1.1 {}", r.status)
            }
        };
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }
    // The timeout is 1 s; the half request is dropped within a deadline shorter than the
    // default of 10 s, so the flag is what dropped it; without a timeout it would be held
    // for as long as the client likes.
    tokio::time::timeout(Duration::from_secs(7), slow)
        .await
        .map_err(|_| anyhow::anyhow!("a half-sent request was still held after 7 s"))???;
    Ok(())
}

#[tokio::test]
async fn neither_listener_keeps_a_client_that_sends_half_a_request() -> anyhow::Result<()> {
    let plain = start("slowloris-http", &["--header-read-timeout=1".into()]).await?;
    slow_client_is_dropped_while_others_are_served(&plain, None).await?;

    let dir = std::env::temp_dir().join(format!("signet-slowloris-{}", std::process::id()));
    let pki = signet_tests::TestPki::create(&dir);
    let tls = start(
        "slowloris-https",
        &[
            format!("--tls-cert={}", pki.cert.display()),
            format!("--tls-key={}", pki.key.display()),
            "--header-read-timeout=1".into(),
        ],
    )
    .await?;
    let connector = tls_connector(&pki.ca);
    wait_for("https", TIMEOUT, || async {
        Ok(one_tls_request(&connector, tls.port).await.ok())
    })
    .await?;
    slow_client_is_dropped_while_others_are_served(&tls, Some(&connector)).await?;
    Ok(())
}
