//! Test support for Signet: a real Kubernetes control plane and a namespace per test.
//!
//! Three modes:
//! - [`shared`]: one control plane for the whole test run. The test command starts it and
//!   names its kubeconfig in `SIGNET_TEST_KUBECONFIG`; without that variable, the first test of
//!   a test binary starts one that stops when the binary exits. (`KUBECONFIG` is deliberately
//!   not read: tests must never run against a real cluster by accident.)
//! - [`PrivateCluster`]: a control plane of one test's own, for tests that stop or reconfigure
//!   it; stopped on drop.
//! - [`TestNamespace`]: a fresh namespace per test, labelled with the test's name, so that an
//!   operator under test can be scoped to it and to its own Lease.
//!
//! Signet's CRDs are installed (server-side apply) and established before a cluster is handed
//! out.

pub mod browserless;
mod cluster;
pub mod helm;
pub mod http;
mod identity;
pub mod kstatus;
mod local;
mod namespace;
mod objects;
mod process;
pub mod race;
pub mod redis_topologies;
mod services;
pub mod tls;

pub use cluster::{PrivateCluster, SharedCluster, bin_dir, client_for, kubectl, shared};
pub use identity::{
    apply_cluster_role, grant_cluster_rules, namespaced_service_account_kubeconfig,
    service_account_kubeconfig,
};
pub use local::{TestPki, free_port, workspace_bin};
pub use namespace::{TestNamespace, label};
pub use objects::{merge, refused_fields, signet_api, signet_object, signet_resource};
pub use process::Process;
pub use services::{RedisServer, listening, retry_taken_ports, wait_ready};

/// Root of the repository.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Waits until `check` returns `Some`, polling every 100 ms, or fails after `timeout` with
/// `what` in the message. Tests wait for conditions with this, never with a bare sleep.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: std::time::Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "timed out after {timeout:?} waiting for {what} (last error: {last_error:?})"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
