//! Replicas of the STS for tests: standalone on a copy of `examples/` switched to the redis
//! store, several processes sharing one state folder as pods share one snapshot.

#![allow(dead_code)] // each test binary uses a part

pub mod cluster;
pub mod load;

use std::path::{Path, PathBuf};

pub use signet_tests::redis_topologies::SharedStore;
use signet_tests::{Process, free_port, repo_root};

/// Writes `examples/` into `dir` with the store switched to redis on `redis_port`, plus
/// `extra` (more YAML documents).
pub fn redis_manifests(dir: &Path, redis_port: u16, extra: &str) {
    let url = format!("redis://127.0.0.1:{redis_port}");
    store_manifests(dir, &SharedStore::server(&url), extra);
}

/// Writes `examples/` into `dir` with the store switched to `store`, plus `extra`.
pub fn store_manifests(dir: &Path, store: &SharedStore, extra: &str) {
    copy_examples(dir);
    let ts = std::fs::read_to_string(repo_root().join("examples/token-service.yaml")).unwrap();
    let ts = store.switch(&ts).unwrap();
    std::fs::write(dir.join("token-service.yaml"), format!("{ts}{extra}")).unwrap();
}

/// Writes `examples/` into `dir` as they are (memory store), plus `extra`.
pub fn memory_manifests(dir: &Path, extra: &str) {
    copy_examples(dir);
    std::fs::write(dir.join("extra.yaml"), extra).unwrap();
}

/// The example YAML files, into `dir`.
pub fn copy_examples(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// One STS process on `manifests`, with its state in `state`; returns it and its address
/// once it is ready.
pub async fn replica(
    manifests: &Path,
    state: &Path,
    name: &str,
) -> anyhow::Result<(Process, String)> {
    replica_with(manifests, state, name, &[]).await
}

/// [`replica`] with more command-line arguments.
pub async fn replica_with(
    manifests: &Path,
    state: &Path,
    name: &str,
    extra_args: &[&str],
) -> anyhow::Result<(Process, String)> {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec![
        format!("--manifests={}", manifests.display()),
        format!("--state-dir={}", state.display()),
        format!("--listen={addr}"),
        "--metrics-addr=127.0.0.1:0".into(),
    ];
    args.extend(extra_args.iter().map(|a| a.to_string()));
    let process = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_signet-sts")),
        name,
        &args,
        &[],
    )?;
    signet_tests::wait_ready(&addr).await?;
    Ok((process, addr))
}

/// A fresh folder for one test.
pub fn test_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("signet-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The generated secret of standalone client `client_id`.
pub fn client_secret(state: &Path, client_id: &str) -> String {
    let file = state.join(format!("clients/{client_id}.json"));
    let creds: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    creds["client_secret"].as_str().unwrap().to_owned()
}

/// One standalone STS on a copy of `examples/` plus extra manifests (memory store).
pub struct Standalone {
    /// The process; it stops when this is dropped.
    pub process: Process,
    /// Where it listens.
    pub addr: String,
    /// Its state folder (generated client credentials).
    pub state: PathBuf,
    /// The manifests it serves (and reloads when they change).
    pub manifests: PathBuf,
}

impl Standalone {
    /// Starts on `examples/` plus `extra`.
    pub async fn start(test: &str, extra: &str) -> anyhow::Result<Self> {
        Self::start_edited(test, extra, |_| {}).await
    }

    /// Starts on `examples/` plus `extra`, after `edit` changed the manifests folder.
    pub async fn start_edited(
        test: &str,
        extra: &str,
        edit: impl FnOnce(&Path),
    ) -> anyhow::Result<Self> {
        let dir = test_dir(test);
        let manifests = dir.join("manifests");
        memory_manifests(&manifests, extra);
        edit(&manifests);
        let state = dir.join("state");
        let (process, addr) = replica(&manifests, &state, test).await?;
        Ok(Self {
            process,
            addr,
            state,
            manifests,
        })
    }

    /// The generated secret of `client_id`.
    pub fn secret(&self, client_id: &str) -> String {
        client_secret(&self.state, client_id)
    }

    /// HTTP Basic authentication of `client_id` with its generated secret.
    pub fn basic(&self, client_id: &str) -> String {
        signet_tests::http::basic_auth(client_id, &self.secret(client_id))
    }
}

/// The parameters of an authorization request for a code with PKCE S256, state and nonce.
pub fn code_params<'a>(
    client: &'a str,
    redirect: &'a str,
    scope: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client),
        ("redirect_uri", redirect),
        ("response_type", "code"),
        ("scope", scope),
        ("state", "st"),
        ("nonce", "n-0"),
        ("code_challenge", signet_tests::browserless::CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}
