//! `signet-sts`: the security token service. One code path after loading a snapshot, from
//! either source: a folder of manifests (standalone) or the operator's snapshot Secrets.

use signet_sts::{http, metrics, source, tls};

use std::net::SocketAddr;
use std::path::PathBuf;

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

    /// Address to listen on.
    #[arg(long, env = "SIGNET_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, env = "SIGNET_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "SIGNET_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For is believed when
    /// throttling sign-in attempts by source address.
    #[arg(long, env = "SIGNET_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<signet_sts::signin::source_address::Cidr>,

    /// Address of /metrics.
    #[arg(long, env = "SIGNET_METRICS_ADDR", default_value = "127.0.0.1:9091")]
    metrics_addr: SocketAddr,

    /// Log format.
    #[arg(long, env = "SIGNET_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube=warn".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }

    let app = http::App::with_trusted_proxies(args.trusted_proxies.clone());
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
            tracing::info!(token_service = %ts, namespace = %ns, "watching the snapshot Secrets");
            tokio::spawn(source::cluster::run(
                app.clone(),
                client,
                ns.clone(),
                ts.clone(),
            ));
        }
        _ => anyhow::bail!(
            "give --manifests DIR (standalone) or --token-service NAME --namespace NS (in-cluster)"
        ),
    }

    let metrics_listener = tokio::net::TcpListener::bind(args.metrics_addr).await?;
    tracing::info!(addr = %metrics_listener.local_addr()?, "serving /metrics");
    tokio::spawn(axum::serve(metrics_listener, metrics::router(app.metrics.clone())).into_future());

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let config = tls::config(cert, key)?;
            tracing::info!(addr = %listener.local_addr()?, "serving https");
            tls::serve(listener, http::router(app), config, shutdown()).await;
        }
        _ => {
            tracing::info!(addr = %listener.local_addr()?, "serving");
            let service =
                http::router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown())
                .await?;
        }
    }
    tracing::info!("drained, exiting");
    Ok(())
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
