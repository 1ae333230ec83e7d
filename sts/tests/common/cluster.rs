//! The operator and the STS as processes against a test control plane: the examples applied in
//! a namespace, the operator scoped to it, the STS with a ServiceAccount that may read only
//! its snapshot Secrets, by name, and create TokenReviews.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::json;
use signet_tests::{Process, http, namespaced_service_account_kubeconfig, wait_for};

/// The two processes and the STS's address.
pub struct Deployed {
    /// signet-operator.
    pub operator: Process,
    /// signet-sts.
    pub sts: Process,
    /// Where the STS listens.
    pub addr: String,
    /// Where the STS serves /metrics.
    pub metrics_addr: String,
    /// The STS's identity: may read its snapshot Secrets and write its report.
    pub sts_kubeconfig: std::path::PathBuf,
}

/// Applies `examples/` in `ns` with `kubectl`, then starts the operator and the STS (named
/// after `test` in their logs) and waits until the STS is ready.
pub async fn deploy(
    kubectl: Command,
    kubeconfig: &Path,
    client: &kube::Client,
    ns: &str,
    test: &str,
) -> anyhow::Result<Deployed> {
    deploy_with(kubectl, kubeconfig, client, ns, test, &[], &[]).await
}

/// [`deploy`], with extra environment for the operator (its test switches), and tenant
/// namespaces it watches besides `ns`.
pub async fn deploy_with(
    mut kubectl: Command,
    kubeconfig: &Path,
    client: &kube::Client,
    ns: &str,
    test: &str,
    operator_env: &[(&str, &str)],
    tenants: &[&str],
) -> anyhow::Result<Deployed> {
    let out = kubectl
        .args(["apply", "--server-side", "-n", ns, "-f"])
        .arg(signet_tests::repo_root().join("examples"))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let admin = kubeconfig.to_string_lossy().into_owned();
    let operator = Process::spawn(
        &signet_tests::workspace_bin("signet-operator"),
        &format!("operator-{test}"),
        &[
            format!("--namespaces={}", [&[ns], tenants].concat().join(",")),
            format!("--lease-namespace={ns}"),
            "--lease-name=op".into(),
            "--metrics-addr=127.0.0.1:0".into(),
        ],
        &[&[("KUBECONFIG", admin.as_str())], operator_env].concat(),
    )?;

    // The STS's identity may read its snapshot Secrets by name and nothing else.
    let names = signet_sts::source::cluster::secret_names("signet");
    let rules = json!([
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"], "resourceNames": names},
        // Its report of what it serves, as the chart grants it.
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "patch", "delete"]},
    ]);
    let sts_kubeconfig =
        namespaced_service_account_kubeconfig(client, kubeconfig, ns, "sts", rules).await?;
    // And, as the chart grants it, the review of ServiceAccount tokens (workload identity).
    let review = json!([{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}]);
    signet_tests::grant_cluster_rules(client, ns, "sts", review).await?;
    let (sts, addr, metrics_addr) =
        spawn_sts(&sts_kubeconfig, ns, test, &format!("{test}-0"), &[])?;
    signet_tests::wait_ready(&addr).await?;
    Ok(Deployed {
        operator,
        sts,
        addr,
        metrics_addr,
        sts_kubeconfig,
    })
}

/// Starts one more STS replica `replica` of the examples' TokenService in `ns` with the STS's
/// identity (`kubeconfig`) and `extra` flags; the process, its address and its metrics address.
/// It is not waited for.
pub fn spawn_sts(
    kubeconfig: &Path,
    ns: &str,
    test: &str,
    replica: &str,
    extra: &[&str],
) -> anyhow::Result<(Process, String, String)> {
    let addr = format!("127.0.0.1:{}", signet_tests::free_port());
    let metrics_addr = format!("127.0.0.1:{}", signet_tests::free_port());
    let mut args = vec![
        "--token-service=signet".into(),
        format!("--namespace={ns}"),
        format!("--listen={addr}"),
        format!("--metrics-addr={metrics_addr}"),
        format!("--replica={replica}"),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let sts = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_signet-sts")),
        &format!("sts-{test}-{replica}"),
        &args,
        &[("KUBECONFIG", &kubeconfig.to_string_lossy())],
    )?;
    Ok((sts, addr, metrics_addr))
}

/// The examples, the operator and an STS in `ns`; the STS and its issuer.
pub async fn deploy_in(
    cluster: &signet_tests::SharedCluster,
    client: &kube::Client,
    ns: &str,
    test: &str,
) -> anyhow::Result<(Deployed, String)> {
    let deployed = deploy(cluster.kubectl(), &cluster.kubeconfig, client, ns, test).await?;
    let discovery = http::get(&deployed.addr, "/.well-known/openid-configuration").await?;
    let issuer = discovery.json()["issuer"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((deployed, issuer))
}

/// Creates ServiceAccount `name` in `ns` of the cluster `client` talks to.
pub async fn create_service_account(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> anyhow::Result<()> {
    let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &account)
        .await?;
    Ok(())
}

/// `kubectl create token` with `args`, the token it printed.
pub fn create_token(mut kubectl: Command, args: &[&str]) -> anyhow::Result<String> {
    let out = kubectl.arg("create").arg("token").args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl create token {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// A client_credentials token request.
pub async fn token(addr: &str, id: &str, secret: &str) -> anyhow::Result<http::Response> {
    http::post_form(
        addr,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ],
        &[],
    )
    .await
}

/// The client id and secret the operator delivered in Secret `name`, once it exists.
pub async fn credentials(
    secrets: &Api<Secret>,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<(String, String)> {
    let secret = wait_for(&format!("Secret {name}"), timeout, || async {
        Ok(secrets.get_opt(name).await?)
    })
    .await?;
    let data = secret.data.unwrap_or_default();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    Ok((text("client_id"), text("client_secret")))
}
