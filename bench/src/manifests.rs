//! The benchmark's manifests folder: the repository's examples, the store switched to redis
//! (one server, Sentinel or Cluster; or left in memory), many client_credentials clients and
//! one reference-token client.

use std::fmt::Write;
use std::path::Path;

pub use signet_tests::redis_topologies::SharedStore;

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

/// Writes the folder: examples/ copied, the TokenService's store on `redis` (else the
/// examples' memory store), and `clients` generated OidcClients in one file (the STS polls the
/// folder's file list).
pub fn write(
    dir: &Path,
    examples: &Path,
    clients: usize,
    redis: Option<&SharedStore>,
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
    if let Some(redis) = redis {
        ts = redis.switch(&ts)?;
    }
    let reference = "---\napiVersion: signet.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: reporter}\nspec: {grantTypes: [client_credentials], allowedScopes: [orders.read], tokenEndpointAuthMethod: client_secret_post, accessTokenFormat: reference}\n";
    std::fs::write(dir.join("token-service.yaml"), format!("{ts}{reference}"))?;
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
