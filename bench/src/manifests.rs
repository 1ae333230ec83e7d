//! The benchmark's manifests folder: the repository's examples, the store switched to redis
//! (or left in memory), many client_credentials clients and one reference-token client.

use std::fmt::Write;
use std::path::Path;

/// client_id of the n-th generated client (standalone mode puts manifests in `default`).
pub fn bench_client(n: usize) -> String {
    format!("default.bench-{n}")
}

/// The reference-token client.
pub const REFERENCE_CLIENT: &str = "default.reporter";

/// The example machine client; it introspects the JWTs (a resource server's view: the tokens
/// are for its API's audience, not issued to it).
pub const INTROSPECTOR: &str = "default.orders-worker";

/// Writes the folder: examples/ copied, the TokenService's store on `redis_url` (else the
/// examples' memory store), and `clients` generated OidcClients in one file (the STS polls the
/// folder's file list).
pub fn write(
    dir: &Path,
    examples: &Path,
    clients: usize,
    redis_url: Option<&str>,
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
    if let Some(redis_url) = redis_url {
        ts = ts.replace(
            "  store:\n    type: memory\n",
            "  store:\n    type: redis\n    redis:\n      urlSecretRef: {name: redis, key: url}\n",
        );
        anyhow::ensure!(
            ts.contains("type: redis"),
            "the example TokenService's store section changed; update bench/src/manifests.rs"
        );
        secret = format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: redis}}\nstringData: {{url: \"{redis_url}\"}}\n"
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

/// The generated secret of `client_id`, from the state folder the STS wrote it to.
pub fn client_secret(state: &Path, client_id: &str) -> anyhow::Result<String> {
    let file = state.join("clients").join(format!("{client_id}.json"));
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    value["client_secret"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{} has no client_secret", file.display()))
}
