//! `signet-sts`: the token service. Endpoints arrive with the STS issues; today the binary
//! parses its flags.

use std::path::PathBuf;

use clap::Parser;

/// OpenID Connect / OAuth 2.0 security token service.
#[derive(Parser, Debug)]
#[command(name = "signet-sts", version, about)]
struct Args {
    /// Serve the manifests in this folder without a cluster (standalone mode).
    #[arg(long)]
    manifests: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, env = "SIGNET_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
}

fn main() {
    let args = Args::parse();
    eprintln!(
        "signet-sts {}: endpoints are not built yet (manifests {:?}, listen {})",
        env!("CARGO_PKG_VERSION"),
        args.manifests,
        args.listen
    );
}
