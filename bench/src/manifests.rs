//! The benchmark's manifests folder: the repository's examples, the store switched to redis
//! (one server, Sentinel or Cluster; or left in memory), many client_credentials clients and
//! one reference-token client.

use std::fmt::Write;
use std::path::Path;

use signet_tests::redis_topologies::{Cluster, Sentinels};

/// client_id of the n-th generated client (standalone mode puts manifests in `default`).
pub fn bench_client(n: usize) -> String {
    format!("default.bench-{n}")
}

/// The reference-token client.
pub const REFERENCE_CLIENT: &str = "default.reporter";

/// The example machine client; it introspects the JWTs (a resource server's view: the tokens
/// are for its API's audience, not issued to it).
pub const INTROSPECTOR: &str = "default.orders-worker";

/// The client that authenticates with private_key_jwt assertions ([`assertion_client`]).
pub const ASSERTION_CLIENT: &str = "default.signer";

/// A redis store: the URL in its Secret and the `spec.store.redis` lines after `urlSecretRef`
/// (a topology, a wait for replicas).
#[derive(Debug, Clone)]
pub struct RedisStore {
    url: String,
    more: String,
}

impl RedisStore {
    /// One redis server at `url`.
    pub fn server(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            more: String::new(),
        }
    }

    /// The primary that `set`'s sentinels name (the URL's host is not used).
    pub fn sentinel(set: &Sentinels) -> Self {
        Self {
            url: "redis://localhost".into(),
            more: format!(
                "      sentinel: {{masterName: {}, addresses: {}}}\n",
                Sentinels::MASTER,
                yaml_list(&set.sentinel_addrs())
            ),
        }
    }

    /// The cluster, learnt from its nodes.
    pub fn cluster(cluster: &Cluster) -> Self {
        Self {
            url: "redis://localhost".into(),
            more: format!(
                "      cluster: {{nodes: {}}}\n",
                yaml_list(&cluster.seeds())
            ),
        }
    }

    /// Every write waits for `replicas` replicas, up to `timeout` (e.g. `250ms`).
    pub fn waiting_for(mut self, replicas: u32, timeout: &str) -> Self {
        let _ = writeln!(
            self.more,
            "      waitForReplicas: {{replicas: {replicas}, timeout: {timeout}}}"
        );
        self
    }
}

fn yaml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Writes the folder: examples/ copied, the TokenService's store on `redis` (else the
/// examples' memory store), and `clients` generated OidcClients in one file (the STS polls the
/// folder's file list).
pub fn write(
    dir: &Path,
    examples: &Path,
    clients: usize,
    redis: Option<&RedisStore>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(examples)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default();
        let is_yaml = path.extension().is_some_and(|e| e == "yaml");
        if is_yaml && name != "token-service.yaml" {
            std::fs::copy(&path, dir.join(name))?;
        }
    }
    let mut ts = std::fs::read_to_string(examples.join("token-service.yaml"))?;
    let mut secret = String::new();
    if let Some(redis) = redis {
        ts = ts.replace(
            "  store:\n    type: memory\n",
            &format!(
                "  store:\n    type: redis\n    redis:\n      urlSecretRef: {{name: redis, key: url}}\n{}",
                redis.more
            ),
        );
        anyhow::ensure!(
            ts.contains("type: redis"),
            "the example TokenService's store section changed; update bench/src/manifests.rs"
        );
        secret = format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: redis}}\nstringData: {{url: \"{}\"}}\n",
            redis.url
        );
    }
    let reference = "---\napiVersion: signet.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: reporter}\nspec: {grantTypes: [client_credentials], allowedScopes: [orders.read], tokenEndpointAuthMethod: client_secret_post, accessTokenFormat: reference}\n";
    std::fs::write(
        dir.join("token-service.yaml"),
        format!("{ts}{secret}{reference}"),
    )?;
    let mut generated = String::new();
    for n in 0..clients {
        write!(
            generated,
            "---\napiVersion: signet.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: bench-{n}}}\nspec: {{grantTypes: [client_credentials], allowedScopes: [orders.read], tokenEndpointAuthMethod: client_secret_post}}\n"
        )?;
    }
    std::fs::write(dir.join("bench-clients.yaml"), generated)?;
    Ok(())
}

/// Adds [`ASSERTION_CLIENT`] to the folder: client_credentials authenticated by private_key_jwt
/// assertions signed with the key whose public JWK is `public_jwk` (each assertion's `jti` is
/// spent once in the store).
pub fn assertion_client(dir: &Path, public_jwk: &str) -> anyhow::Result<()> {
    let name = ASSERTION_CLIENT.trim_start_matches("default.");
    std::fs::write(
        dir.join("assertion-client.yaml"),
        format!(
            "apiVersion: signet.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: {name}}}\nspec:\n  grantTypes: [client_credentials]\n  allowedScopes: [orders.read]\n  tokenEndpointAuthMethod: private_key_jwt\n  jwks: {{keys: [{public_jwk}]}}\n"
        ),
    )?;
    Ok(())
}

/// The generated secret of `client_id`, from the state folder the STS wrote it to.
pub fn client_secret(state: &Path, client_id: &str) -> anyhow::Result<String> {
    let file = state.join("clients").join(format!("{client_id}.json"));
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    value["client_secret"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{} has no client_secret", file.display()))
}
