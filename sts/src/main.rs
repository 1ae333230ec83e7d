//! `signet-sts`: the security token service. One code path after loading a snapshot, from
//! either source: a folder of manifests (standalone) or the operator's snapshot Secrets.

use signet_sts::{http, listener, metrics, source, tls};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// OpenID Connect / OAuth 2.0 security token service.
#[derive(Parser, Debug)]
#[command(name = "signet-sts", version, about)]
struct Args {
    /// Serve the manifests in this folder without a cluster (standalone mode); reloaded when
    /// a file changes.
    #[arg(long, env = "SIGNET_MANIFESTS", conflicts_with = "token_service")]
    manifests: Option<PathBuf>,

    /// Where standalone mode keeps generated keys and client credentials.
    #[arg(long, env = "SIGNET_STATE_DIR")]
    state_dir: Option<PathBuf>,

    /// Override the TokenService's issuer (standalone; e.g. to serve on another port).
    #[arg(long, env = "SIGNET_ISSUER")]
    issuer: Option<String>,

    /// In-cluster mode: the TokenService whose snapshot Secrets to watch.
    #[arg(long, env = "SIGNET_TOKEN_SERVICE", requires = "namespace")]
    token_service: Option<String>,

    /// In-cluster mode: the TokenService's namespace.
    #[arg(long, env = "SIGNET_NAMESPACE")]
    namespace: Option<String>,

    /// This replica's name in its report of what it serves (in-cluster): the pod name
    /// (POD_NAME, from the downward API in the chart), else the host name.
    #[arg(long, env = "POD_NAME")]
    replica: Option<String>,

    /// The uid of this replica's Pod (POD_UID, from the downward API): the Pod then owns the
    /// report, which goes when the Pod does.
    #[arg(long, env = "POD_UID")]
    pod_uid: Option<String>,

    /// Seconds between renewals of the replica's report; it expires after three.
    #[arg(long, env = "SIGNET_REPORT_INTERVAL", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    report_interval: u64,

    /// Testing only: the snapshot schema major this replica reads, lowered to make it refuse
    /// what the operator writes (and report the refusal).
    #[arg(long, env = "SIGNET_TESTING_SCHEMA_MAJOR", hide = true)]
    testing_schema_major: Option<String>,

    /// Address to listen on.
    #[arg(long, env = "SIGNET_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, env = "SIGNET_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "SIGNET_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Seconds a client has to send a request's headers; also how long an idle keep-alive
    /// connection is kept. A client that sends half a request is dropped after it.
    #[arg(long, env = "SIGNET_HEADER_READ_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    header_read_timeout: u64,

    /// Sign-ins (login, consent, device and logout pages) one source address may start per
    /// minute on this replica; past it the source gets a 429 page. Behind a proxy, set
    /// --trusted-proxies, or every request counts against the proxy's address.
    #[arg(long, env = "SIGNET_INTERACTIONS_PER_MINUTE", default_value_t = signet_sts::app::DEFAULT_INTERACTIONS_PER_MINUTE, value_parser = clap::value_parser!(u32).range(1..))]
    interactions_per_minute: u32,

    /// Seconds a client has to finish the TLS handshake.
    #[arg(long, env = "SIGNET_TLS_HANDSHAKE_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    tls_handshake_timeout: u64,

    /// Proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For is believed when
    /// throttling sign-in attempts by source address.
    #[arg(long, env = "SIGNET_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<signet_sts::signin::source_address::Cidr>,

    /// Failed sign-ins one source address may make for one username per
    /// --login-failure-window; past it that address gets a 429 page for that username.
    #[arg(long, env = "SIGNET_LOGIN_FAILURES_PER_USER_ADDRESS", default_value_t = signet_sts::signin::throttle::Limits::default().per_user_address, value_parser = clap::value_parser!(u32).range(1..))]
    login_failures_per_user_address: u32,

    /// Failed sign-ins one source address may make in all per --login-failure-window (many
    /// people may share one address); past it the address gets a 429 page.
    #[arg(long, env = "SIGNET_LOGIN_FAILURES_PER_ADDRESS", default_value_t = signet_sts::signin::throttle::Limits::default().per_address, value_parser = clap::value_parser!(u32).range(1..))]
    login_failures_per_address: u32,

    /// Seconds a count of failed sign-ins lives from its first failure.
    #[arg(long, env = "SIGNET_LOGIN_FAILURE_WINDOW", default_value_t = signet_sts::signin::throttle::Limits::default().window_secs, value_parser = clap::value_parser!(i64).range(1..=86_400))]
    login_failure_window: i64,

    /// Address of /metrics.
    #[arg(long, env = "SIGNET_METRICS_ADDR", default_value = "127.0.0.1:9091")]
    metrics_addr: SocketAddr,

    /// Log format.
    #[arg(long, env = "SIGNET_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: signet_crds::logging::LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    signet_crds::logging::init(args.log_format);

    let app = http::App::configured(signet_sts::app::Edges {
        trusted_proxies: args.trusted_proxies.clone(),
        interactions_per_minute: args.interactions_per_minute,
        login: signet_sts::signin::throttle::Limits {
            per_user_address: args.login_failures_per_user_address,
            per_address: args.login_failures_per_address,
            window_secs: args.login_failure_window,
        },
    });
    if let Some(major) = &args.testing_schema_major {
        tracing::warn!(%major, "testing: reading only this snapshot schema major");
        let _ = app.schema_major.set(major.clone());
    }
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let mut reporter = None;
    match (&args.manifests, &args.token_service, &args.namespace) {
        (Some(dir), _, _) => {
            let state = args
                .state_dir
                .clone()
                .unwrap_or_else(source::standalone::default_state_dir);
            let compiled = source::standalone::compile_dir(dir, &state, args.issuer.as_deref())?;
            for (client_id, file) in &compiled.credential_files {
                // The path, never the secret.
                tracing::info!(%client_id, file = %file.display(), "client credentials");
            }
            source::install_compiled(&app, compiled.snapshot).await;
            tokio::spawn(source::standalone::watch(
                app.clone(),
                dir.clone(),
                state,
                args.issuer.clone(),
            ));
        }
        (None, Some(ts), Some(ns)) => {
            let client = kube::Client::try_default().await?;
            let _ = app.kube.set(client.clone());
            tracing::info!(token_service = %ts, namespace = %ns, "watching the snapshot Secrets");
            tokio::spawn(source::cluster::run(
                app.clone(),
                client.clone(),
                ns.clone(),
                ts.clone(),
            ));
            let replica = match &args.replica {
                Some(name) => name.clone(),
                None => hostname()?,
            };
            let reporting = source::report::Reporting {
                replica,
                pod_uid: args.pod_uid.clone(),
                interval: Duration::from_secs(args.report_interval),
            };
            let mut stop = stop.clone();
            reporter = Some(tokio::spawn(source::report::run(
                app.clone(),
                client,
                ns.clone(),
                ts.clone(),
                reporting,
                async move {
                    let _ = stop.wait_for(|stopping| *stopping).await;
                },
            )));
        }
        _ => anyhow::bail!(
            "give --manifests DIR (standalone) or --token-service NAME --namespace NS (in-cluster)"
        ),
    }

    let metrics_listener = tokio::net::TcpListener::bind(args.metrics_addr).await?;
    tracing::info!(addr = %metrics_listener.local_addr()?, "serving /metrics");
    tokio::spawn(axum::serve(metrics_listener, metrics::router(app.metrics.clone())).into_future());

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            tracing::info!(addr = %listener.local_addr()?, "serving https");
            Some(tls::config(cert, key)?)
        }
        _ => {
            tracing::info!(addr = %listener.local_addr()?, "serving");
            None
        }
    };
    let limits = listener::Limits {
        header_read: Duration::from_secs(args.header_read_timeout),
        tls_handshake: Duration::from_secs(args.tls_handshake_timeout),
    };
    let held = app.metrics.connections.clone();
    let stopped = async move {
        shutdown().await;
        let _ = stopping.send(true);
    };
    listener::serve(listener, http::router(app), tls, limits, held, stopped).await;
    if let Some(reporter) = reporter {
        // Its report withdrawn, the replica drops out at once instead of at the Lease's end.
        let _ = tokio::time::timeout(Duration::from_secs(3), reporter).await;
    }
    tracing::info!("drained, exiting");
    Ok(())
}

/// The host name (a pod's is its name), for a replica started without `--replica`.
fn hostname() -> anyhow::Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    Ok(name.trim().to_owned())
}

/// SIGTERM or Ctrl-C: stop accepting; in-flight requests finish.
async fn shutdown() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
