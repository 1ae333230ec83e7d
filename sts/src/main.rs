//! `signet-sts`: the security token service. Today it serves standalone (`--manifests DIR`):
//! discovery, JWKS, the token endpoint for machines, introspection and revocation.

mod client_auth;
mod compile_scope;
mod grants;
mod http;
mod jose;
mod loaded;
mod standalone;
mod store;
mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

/// OpenID Connect / OAuth 2.0 security token service.
#[derive(Parser, Debug)]
#[command(name = "signet-sts", version, about)]
struct Args {
    /// Serve the manifests in this folder without a cluster (standalone mode).
    #[arg(long, env = "SIGNET_MANIFESTS")]
    manifests: PathBuf,

    /// Where standalone mode keeps generated keys and client credentials.
    #[arg(long, env = "SIGNET_STATE_DIR")]
    state_dir: Option<PathBuf>,

    /// Override the TokenService's issuer (e.g. to serve the examples on another port).
    #[arg(long, env = "SIGNET_ISSUER")]
    issuer: Option<String>,

    /// Address to listen on.
    #[arg(long, env = "SIGNET_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

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
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
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

    let app = http::App::new();
    let state = args
        .state_dir
        .clone()
        .unwrap_or_else(standalone::default_state_dir);
    let compiled = standalone::compile_dir(&args.manifests, &state, args.issuer.as_deref())?;
    for (client_id, file) in &compiled.credential_files {
        // The path, never the secret.
        tracing::info!(%client_id, file = %file.display(), "client credentials");
    }
    let issuer = compiled.snapshot.issuer.clone();
    let loaded = loaded::Loaded::new(compiled.snapshot)?;
    app.loaded.store(Some(Arc::new(loaded)));
    tracing::warn!("memory store: valid for one STS replica only");

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, %issuer, "serving");
    axum::serve(listener, http::router(app))
        .with_graceful_shutdown(shutdown())
        .await?;
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
