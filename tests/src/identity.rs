//! Identities other than the admin: a ServiceAccount bound to a ClusterRole, with a kubeconfig
//! carrying its token, so a process under test runs with exactly the rights it will have in a
//! real cluster.

use std::path::{Path, PathBuf};

use anyhow::Context;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use serde_json::json;

/// Applies a ClusterRole from a YAML file (server-side apply).
pub async fn apply_cluster_role(client: &Client, path: &Path) -> anyhow::Result<String> {
    let role: ClusterRole = serde_norway::from_str(&std::fs::read_to_string(path)?)?;
    let name = role
        .metadata
        .name
        .clone()
        .context("ClusterRole without a name")?;
    Api::<ClusterRole>::all(client.clone())
        .patch(
            &name,
            &PatchParams::apply("signet-tests").force(),
            &Patch::Apply(&role),
        )
        .await?;
    Ok(name)
}

/// Creates ServiceAccount `ns/name`, binds it to `cluster_role`, and writes a kubeconfig
/// with a one-hour token for it next to `admin_kubeconfig`'s cluster settings.
pub async fn service_account_kubeconfig(
    client: &Client,
    admin_kubeconfig: &Path,
    ns: &str,
    name: &str,
    cluster_role: &str,
) -> anyhow::Result<PathBuf> {
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("signet-test-{ns}-{name}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
    }))?;
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await?;
    account_kubeconfig(client, admin_kubeconfig, ns, name).await
}

/// Grants the existing ServiceAccount `ns/name` cluster-wide `rules` too (for resources that
/// have no namespace, such as `tokenreviews`), through a ClusterRole of its own.
pub async fn grant_cluster_rules(
    client: &Client,
    ns: &str,
    name: &str,
    rules: serde_json::Value,
) -> anyhow::Result<()> {
    let role_name = format!("signet-test-{ns}-{name}-cluster");
    let role: ClusterRole =
        serde_json::from_value(json!({"metadata": {"name": role_name}, "rules": rules}))?;
    Api::<ClusterRole>::all(client.clone())
        .create(&PostParams::default(), &role)
        .await?;
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": role_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
    }))?;
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await?;
    Ok(())
}

/// Creates ServiceAccount `ns/name` with a Role of exactly `rules` (RBAC PolicyRules as JSON)
/// in `ns`, and writes a kubeconfig for it.
pub async fn namespaced_service_account_kubeconfig(
    client: &Client,
    admin_kubeconfig: &Path,
    ns: &str,
    name: &str,
    rules: serde_json::Value,
) -> anyhow::Result<PathBuf> {
    let role: Role = serde_json::from_value(json!({"metadata": {"name": name}, "rules": rules}))?;
    Api::<Role>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &role)
        .await?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
    }))?;
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await?;
    account_kubeconfig(client, admin_kubeconfig, ns, name).await
}

/// Creates ServiceAccount `ns/name` and writes a kubeconfig with a one-hour token for it.
async fn account_kubeconfig(
    client: &Client,
    admin_kubeconfig: &Path,
    ns: &str,
    name: &str,
) -> anyhow::Result<PathBuf> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    accounts.create(&PostParams::default(), &account).await?;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await?
        .status
        .context("TokenRequest without status")?
        .token
        .context("TokenRequest without a token")?;

    let admin = Kubeconfig::read_from(admin_kubeconfig)?;
    let cluster = admin
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .context("no cluster in kubeconfig")?;
    let server = cluster.server.context("no server")?;
    let ca = cluster
        .certificate_authority
        .context("no certificate-authority file")?;
    let path = std::env::temp_dir().join(format!("signet-{ns}-{name}.kubeconfig"));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: '{server}', certificate-authority: '{ca}'}}\n\
         users:\n- name: {name}\n  user: {{token: '{token}'}}\ncontexts:\n- name: test\n  context: {{cluster: test, user: {name}, namespace: {ns}}}\n\
         current-context: test\n"
    );
    std::fs::write(&path, text)?;
    Ok(path)
}
