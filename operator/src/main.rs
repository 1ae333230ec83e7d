//! `signet-operator`: watches Signet's custom resources and compiles them for the STS.
//! The reconcilers arrive with the operator issue; today the binary parses its flags.

use clap::Parser;

/// Kubernetes operator for Signet.
#[derive(Parser, Debug)]
#[command(name = "signet-operator", version, about)]
struct Args {
    /// Namespaces to watch (comma-separated); all when empty.
    #[arg(long, env = "SIGNET_WATCH_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,

    /// Address of the metrics and health endpoints.
    #[arg(long, env = "SIGNET_METRICS_ADDR", default_value = "127.0.0.1:9090")]
    metrics_addr: std::net::SocketAddr,

    /// Name of the coordination.k8s.io Lease used for leader election.
    #[arg(long, env = "SIGNET_LEASE_NAME", default_value = "signet-operator")]
    lease_name: String,
}

fn main() {
    let args = Args::parse();
    eprintln!(
        "signet-operator {}: reconcilers are not built yet (watching {:?}, lease {}, metrics {})",
        env!("CARGO_PKG_VERSION"),
        args.namespaces,
        args.lease_name,
        args.metrics_addr
    );
}
