//! Helm, built from its Go module by `tests/helm/build.sh` and cached outside the clone, for
//! the chart tests: lint, render, and the rendered manifests applied to the test control plane.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use anyhow::{Context, bail};

use crate::repo_root;

/// The helm binary: `SIGNET_HELM` when set (the test command builds it once), else built and
/// cached by `tests/helm/build.sh` (a few minutes the first time, instant afterwards). There is
/// no skip: a missing helm fails the test.
pub fn helm_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| built("SIGNET_HELM", "tests/helm/build.sh"))
}

/// The tool at `$env` if set (it must exist), else the path `script` prints once it has built
/// it. Never a skip: a tool that cannot be had fails the test.
pub(crate) fn built(env: &str, script: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{env}={} is not a file", path.display());
        return path;
    }
    let out = Command::new(repo_root().join(script))
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim())
}

/// A helm command with its own empty configuration, cache and data folders (no user
/// repositories or plugins leak in) and no kubeconfig: rendering and linting never reach a
/// cluster.
pub fn helm() -> Command {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    let home = HOME.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("signet-helm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for helm's state");
        dir
    });
    let mut cmd = Command::new(helm_bin());
    cmd.env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env("KUBECONFIG", "/dev/null")
        .env_remove("HELM_NAMESPACE")
        .env_remove("HELM_KUBECONTEXT");
    cmd
}

/// The chart in the repository.
pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/signet")
}

/// Runs `cmd` and returns its output, failing with its stderr when it does not succeed.
pub fn run_ok(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// `helm template RELEASE charts/signet -n NAMESPACE ARGS...`: the rendered manifests.
pub fn template(release: &str, namespace: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = run_ok(
        helm()
            .args(["template", release])
            .arg(chart_dir())
            .args(["--namespace", namespace])
            .args(args),
    )?;
    Ok(String::from_utf8(out.stdout)?)
}

/// The documents of a multi-document YAML stream, as JSON values (empty documents dropped).
pub fn documents(yaml: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(yaml) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}
