//! kstatus (sigs.k8s.io/cli-utils' status rules, as Flux and kpt apply them), built from its Go
//! module by `tests/kstatus/build.sh` and cached outside the clone like helm.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};

use crate::helm::built;

/// The kstatus command (`tests/kstatus`: sigs.k8s.io/cli-utils' status rules, as Flux and kpt
/// apply them): `SIGNET_KSTATUS` when set, else built and cached by `tests/kstatus/build.sh`.
fn kstatus_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| built("SIGNET_KSTATUS", "tests/kstatus/build.sh"))
}

/// kstatus's verdict (`Current`, `InProgress`, `Failed`, ...) on an object's JSON.
pub fn kstatus(object: &serde_json::Value) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = Command::new(kstatus_bin())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("kstatus stdin")?
        .write_all(object.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("kstatus failed on {object}");
    }
    let text = String::from_utf8(out.stdout)?;
    Ok(text
        .split('\t')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned())
}
