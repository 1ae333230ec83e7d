//! Control planes started by `tests/cluster/controlplane.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::{repo_root, wait_for};

/// Field manager of the fixture's server-side applies.
const FIELD_MANAGER: &str = "signet-tests";

/// Directory of the control-plane binaries (etcd, kube-apiserver, kube-controller-manager,
/// kubectl), built and cached by `tests/cluster/build.sh`.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = repo_root().join("tests/cluster/build.sh");
        let out = Command::new(&script)
            .output()
            .expect("run tests/cluster/build.sh");
        assert!(
            out.status.success(),
            "build.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim())
    })
}

/// The built kubectl, pointed at `kubeconfig`.
pub fn kubectl(kubeconfig: &Path) -> Command {
    let mut cmd = Command::new(bin_dir().join("kubectl"));
    cmd.env("KUBECONFIG", kubeconfig)
        .env_remove("KUBECTL_EXTERNAL_DIFF");
    cmd
}

fn controlplane(args: &[&str]) -> anyhow::Result<String> {
    let script = repo_root().join("tests/cluster/controlplane.sh");
    let out = Command::new(&script)
        .args(args)
        .output()
        .context("run controlplane.sh")?;
    if !out.status.success() {
        bail!(
            "controlplane.sh {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// A client for the cluster behind `kubeconfig`. Made per test: a client belongs to the
/// runtime that created it, and each `#[tokio::test]` has its own.
pub async fn client_for(kubeconfig: &Path) -> anyhow::Result<Client> {
    let config = Kubeconfig::read_from(kubeconfig)?;
    let config = Config::from_custom_kubeconfig(config, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// Applies Signet's CRDs from `charts/signet/crds` and waits until each is established.
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for crd in signet_crds::crd::all() {
        let name = crd.metadata.name.clone().expect("CRDs are named");
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .with_context(|| format!("apply CRD {name}"))?;
        wait_for(
            &format!("CRD {name} established"),
            Duration::from_secs(30),
            || async {
                let crd = api.get(&name).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                Ok(established.then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

/// The control plane shared by every test of a run.
#[derive(Debug, Clone)]
pub struct SharedCluster {
    /// Admin kubeconfig (a `system:masters` client certificate).
    pub kubeconfig: PathBuf,
}

impl SharedCluster {
    /// A new client for this cluster, for the calling test's runtime.
    pub async fn client(&self) -> anyhow::Result<Client> {
        client_for(&self.kubeconfig).await
    }

    /// The built kubectl for this cluster.
    pub fn kubectl(&self) -> Command {
        kubectl(&self.kubeconfig)
    }

    /// The API server's audit log (JSON lines; Secret bodies are never logged).
    pub fn audit_log(&self) -> PathBuf {
        self.kubeconfig
            .parent()
            .expect("the kubeconfig lies in the control plane's folder")
            .join("audit.log")
    }
}

/// The shared control plane, with Signet's CRDs installed (see the crate docs).
pub async fn shared() -> anyhow::Result<SharedCluster> {
    static KUBECONFIG: OnceLock<PathBuf> = OnceLock::new();
    static CRDS: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let kubeconfig = match std::env::var_os("SIGNET_TEST_KUBECONFIG") {
        Some(path) => PathBuf::from(path),
        None => KUBECONFIG
            .get_or_init(|| {
                let dir = std::env::temp_dir().join(format!("signet-cp-{}", std::process::id()));
                let pid = std::process::id().to_string();
                let dir_arg = dir.to_string_lossy().into_owned();
                PathBuf::from(
                    controlplane(&["start", &dir_arg, "--owner-pid", &pid])
                        .expect("start a control plane"),
                )
            })
            .clone(),
    };
    let cluster = SharedCluster { kubeconfig };
    // Installing the CRDs is idempotent; once per test binary is enough.
    let client = cluster.client().await?;
    CRDS.get_or_try_init(|| install_crds(&client)).await?;
    Ok(cluster)
}

/// A control plane of one test's own, stopped (and its folder removed) on drop.
#[derive(Debug)]
pub struct PrivateCluster {
    /// Folder with the certificates, logs, audit log and authentication config.
    pub dir: PathBuf,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
}

impl PrivateCluster {
    /// Starts a control plane and installs the CRDs.
    pub async fn start(name: &str) -> anyhow::Result<Self> {
        Self::start_with(name, &[], None).await
    }

    /// Starts a control plane without Signet's CRDs (for a test that installs them itself).
    pub async fn start_without_crds(name: &str) -> anyhow::Result<Self> {
        Self::control_plane(name, &[], None).await
    }

    /// Starts a control plane whose API server also authenticates JWTs with `authenticator`:
    /// one entry of the `jwt:` list of its AuthenticationConfiguration
    /// (`apiserver.config.k8s.io/v1`), as YAML (`issuer:`, `claimMappings:`, ...). The API
    /// server fetches the issuer's discovery document and keys itself, retrying until they
    /// answer; tokens are refused until then.
    pub async fn start_with_jwt(name: &str, authenticator: &str) -> anyhow::Result<Self> {
        Self::start_with(name, &[authenticator], None).await
    }

    /// Starts a control plane that acts as another cluster: its ServiceAccount tokens say
    /// `iss: issuer` (a cluster's `--service-account-issuer`).
    pub async fn start_as_issuer(name: &str, issuer: &str) -> anyhow::Result<Self> {
        Self::start_with(name, &[], Some(issuer)).await
    }

    async fn start_with(
        name: &str,
        authenticators: &[&str],
        service_account_issuer: Option<&str>,
    ) -> anyhow::Result<Self> {
        let cluster = Self::control_plane(name, authenticators, service_account_issuer).await?;
        install_crds(&cluster.client().await?).await?;
        Ok(cluster)
    }

    async fn control_plane(
        name: &str,
        authenticators: &[&str],
        service_account_issuer: Option<&str>,
    ) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("signet-cp-{}-{name}", std::process::id()));
        let pid = std::process::id().to_string();
        let mut args = vec![
            "start".to_owned(),
            dir.to_string_lossy().into_owned(),
            "--owner-pid".to_owned(),
            pid,
        ];
        std::fs::create_dir_all(&dir)?;
        if let Some(issuer) = service_account_issuer {
            args.push("--service-account-issuer".to_owned());
            args.push(issuer.to_owned());
        }
        for (i, authenticator) in authenticators.iter().enumerate() {
            let file = dir.join(format!("jwt-authenticator-{i}.yaml"));
            std::fs::write(&file, authenticator)?;
            args.push("--jwt-authenticator".to_owned());
            args.push(file.to_string_lossy().into_owned());
        }
        let kubeconfig = PathBuf::from(
            tokio::task::spawn_blocking(move || {
                controlplane(&args.iter().map(String::as_str).collect::<Vec<_>>())
            })
            .await??,
        );
        Ok(Self { dir, kubeconfig })
    }

    /// A new client for this cluster.
    pub async fn client(&self) -> anyhow::Result<Client> {
        client_for(&self.kubeconfig).await
    }

    /// The built kubectl for this cluster.
    pub fn kubectl(&self) -> Command {
        kubectl(&self.kubeconfig)
    }

    /// Stops the API server only (SIGKILL: every connection drops at once), leaving etcd and
    /// the controller manager running, to test behaviour while the API is unreachable.
    /// Returns once the process is gone.
    pub async fn stop_apiserver(&self) -> anyhow::Result<()> {
        self.apiserver("stop-apiserver").await
    }

    /// Starts the API server again after [`stop_apiserver`](Self::stop_apiserver), on the
    /// same port with the same flags. Returns once its `/readyz` is ok.
    pub async fn start_apiserver(&self) -> anyhow::Result<()> {
        self.apiserver("restart-apiserver").await
    }

    async fn apiserver(&self, command: &'static str) -> anyhow::Result<()> {
        let dir = self.dir.to_string_lossy().into_owned();
        tokio::task::spawn_blocking(move || controlplane(&[command, &dir])).await??;
        Ok(())
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let dir = self.dir.to_string_lossy().into_owned();
        if controlplane(&["stop", &dir]).is_ok() && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
