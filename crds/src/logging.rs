//! Logging as both binaries set it up: `--log-format` (`SIGNET_LOG_FORMAT`) text or JSON, the
//! filter from `RUST_LOG` (default `info,kube=warn`), colour only on a terminal. One
//! definition, so the two binaries read the same flag and environment the same way.

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The filter when `RUST_LOG` is not set: our events at info, kube-rs's only when they warn.
pub const DEFAULT_FILTER: &str = "info,kube=warn";

/// Installs the global tracing subscriber. Call once, first thing in `main`.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| DEFAULT_FILTER.into());
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
}
