//! Standalone mode: compile a folder of manifests with the operator's own `compile`, with the
//! material a cluster would hold (key versions, generated client secrets) kept in a state
//! folder instead.
//!
//! Every Signet object is first admitted as the API server would admit it (the CRDs' own
//! schemas and CEL rules, run in process by `signet_crds::validation`): an object that
//! `kubectl apply` would refuse is logged and left out, and never stops the others. An
//! invalid TokenService refuses the whole folder: nothing could be served without it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use signet_crds::compile::{
    self, CLIENT_SECRET_KEY, Inputs, KEY_PRIVATE_PEM, KEY_PUBLIC_JWK, ObjectKey, SecretData,
};
use signet_crds::keygen;
use signet_crds::snapshot::Snapshot;
use signet_crds::validation::{Validator, Violation};

/// Namespace of manifests that name none.
const DEFAULT_NAMESPACE: &str = "default";

/// Why the manifests could not be served.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a file or folder failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A manifest is not valid YAML or not a valid object of its kind.
    #[error("{path}: {message}")]
    Manifest { path: PathBuf, message: String },
    /// Key generation failed.
    #[error("{0}")]
    Key(String),
    /// The manifests hold no TokenService.
    #[error("no TokenService in {0}")]
    NoTokenService(PathBuf),
    /// A TokenService that the API server would refuse: there is nothing to serve.
    #[error("{}: TokenService {} is invalid: {}", .0.file.display(), .0.object, .0.reasons())]
    InvalidTokenService(Box<Refused>),
}

/// An object left out because the API server would refuse it.
#[derive(Clone, Debug)]
pub struct Refused {
    /// Its kind.
    pub kind: String,
    /// `namespace/name`.
    pub object: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// Each field and what is wrong with it.
    pub violations: Vec<Violation>,
}

impl Refused {
    fn reasons(&self) -> String {
        let reasons: Vec<String> = self.violations.iter().map(ToString::to_string).collect();
        reasons.join("; ")
    }
}

/// The compile inputs of a folder, and the objects left out of them.
pub struct Manifests {
    /// Every object that was admitted, and the Secrets and Namespaces beside them.
    pub inputs: Inputs,
    /// Objects the API server would refuse.
    pub refused: Vec<Refused>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// The default state folder: `$XDG_DATA_HOME/signet` or `~/.local/share/signet`.
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir)
        .join("signet")
}

/// The compiled snapshot and where each generated client's credentials were written.
pub struct Compiled {
    /// The snapshot of the (first) TokenService.
    pub snapshot: Snapshot,
    /// Credential files written, by client id.
    pub credential_files: BTreeMap<String, PathBuf>,
    /// Objects left out because the API server would refuse them.
    pub refused: Vec<Refused>,
}

/// Compiles the manifests in `dir`, generating what a cluster would hold into `state`.
/// `issuer` overrides the TokenService's issuer (and is validated like one written there).
pub fn compile_dir(dir: &Path, state: &Path, issuer: Option<&str>) -> Result<Compiled, Error> {
    compile_manifests(read_manifests(dir, issuer)?, dir, state)
}

/// Compiles manifests read from `dir` (see [`read_manifests`]), generating what a cluster
/// would hold into `state`. Apart from [`compile_dir`] so a benchmark can time each half.
pub fn compile_manifests(
    manifests: Manifests,
    dir: &Path,
    state: &Path,
) -> Result<Compiled, Error> {
    let Manifests {
        mut inputs,
        refused,
    } = manifests;
    for object in &refused {
        for violation in &object.violations {
            tracing::warn!(
                kind = %object.kind,
                object = %object.object,
                file = %object.file.display(),
                field = %violation.field,
                problem = %violation.message,
                "object refused as the API server would refuse it; left out"
            );
        }
    }
    if let Some(ts) = refused.iter().find(|r| r.kind == "TokenService") {
        return Err(Error::InvalidTokenService(Box::new(ts.clone())));
    }
    let Some(ts) = inputs.token_services.first() else {
        return Err(Error::NoTokenService(dir.to_owned()));
    };
    let issuer = ts.spec.issuer.clone();
    std::fs::create_dir_all(state.join("keys")).map_err(io(state))?;
    std::fs::create_dir_all(state.join("clients")).map_err(io(state))?;

    // One key version per SigningKey, generated once and kept.
    for key in inputs.signing_keys.iter_mut() {
        let k = Arc::make_mut(key);
        let name = k.metadata.name.clone().unwrap_or_default();
        let file = state.join("keys").join(format!("{name}.json"));
        let stored: Value = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Manifest {
                path: file.clone(),
                message: e.to_string(),
            })?,
            Err(_) => {
                let generated = keygen::generate(k.spec.algorithm, k.spec.rsa_key_size)
                    .map_err(|e| Error::Key(e.to_string()))?;
                let value = json!({"kid": generated.kid, "private_pem": generated.private_pem, "public_jwk": generated.public_jwk});
                write_private(&file, value.to_string().as_bytes())?;
                value
            }
        };
        let kid = stored["kid"].as_str().unwrap_or_default().to_owned();
        let ns = k.metadata.namespace.clone().unwrap_or_default();
        let secret_name = format!("{name}-standalone");
        let data = BTreeMap::from([
            (
                KEY_PRIVATE_PEM.to_owned(),
                stored["private_pem"]
                    .as_str()
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec(),
            ),
            (
                KEY_PUBLIC_JWK.to_owned(),
                stored["public_jwk"].to_string().into_bytes(),
            ),
        ]);
        inputs.secrets.insert(
            ObjectKey::new(&ns, &secret_name),
            SecretData {
                data,
                ..Default::default()
            },
        );
        let created = k.metadata.creation_timestamp.clone().unwrap_or(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
        );
        k.status = Some(signet_crds::v1alpha1::SigningKeyStatus {
            keys: vec![signet_crds::v1alpha1::KeyVersion {
                kid,
                phase: signet_crds::v1alpha1::KeyPhase::Active,
                created: created.clone(),
                activates: created,
                retires: None,
                expires: None,
                secret_name,
            }],
            ..Default::default()
        });
    }

    // Generated client secrets, kept in files the user reads (mode 0600).
    let mut credential_files = BTreeMap::new();
    for client in &inputs.clients {
        if !compile::generates_secret(client) {
            continue;
        }
        let ns = client.metadata.namespace.clone().unwrap_or_default();
        let client_id = compile::default_client_id(client);
        let file = state.join("clients").join(format!("{client_id}.json"));
        let secret = match std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        {
            Some(v) => v["client_secret"].as_str().unwrap_or_default().to_owned(),
            None => {
                let secret = keygen::client_secret();
                let body =
                    json!({"client_id": client_id, "client_secret": secret, "issuer": issuer});
                write_private(
                    &file,
                    serde_json::to_string_pretty(&body)
                        .expect("JSON")
                        .as_bytes(),
                )?;
                secret
            }
        };
        let data = BTreeMap::from([(CLIENT_SECRET_KEY.to_owned(), secret.into_bytes())]);
        inputs.secrets.insert(
            ObjectKey::new(&ns, &compile::client_secret_name(client)),
            SecretData {
                data,
                controller_uid: client.metadata.uid.clone(),
                ..Default::default()
            },
        );
        credential_files.insert(client_id, file);
    }

    let out = compile::compile(&inputs);
    for ((kind, key), report) in &out.reports {
        for problem in &report.problems {
            tracing::warn!(?kind, object = %key, reason = problem.reason, message = %problem.message, "manifest problem");
        }
    }
    let ts_key = ObjectKey::new(
        &inputs.token_services[0]
            .metadata
            .namespace
            .clone()
            .unwrap_or_default(),
        inputs.token_services[0]
            .metadata
            .name
            .as_deref()
            .unwrap_or_default(),
    );
    let snapshot = out
        .snapshots
        .get(&ts_key)
        .cloned()
        .ok_or_else(|| Error::NoTokenService(dir.to_owned()))?;
    Ok(Compiled {
        snapshot,
        credential_files,
        refused,
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    path: &Path,
    kind: &str,
    name: &str,
    value: Value,
) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| Error::Manifest {
        path: path.to_owned(),
        message: format!("{kind} {name}: {e}"),
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))
}

/// Reads every `.yaml`/`.yml` file of `dir` (not recursive) into compile inputs. Objects get
/// a namespace (`default` when unset), a uid and a creation time, as the API server would give,
/// and Signet objects are admitted as the API server would admit them (defaults applied) or
/// left out. `issuer` replaces every TokenService's issuer before it is validated.
pub fn read_manifests(dir: &Path, issuer: Option<&str>) -> Result<Manifests, Error> {
    let validator = Validator::new();
    let mut refused = Vec::new();
    let mut inputs = Inputs {
        now: k8s_openapi::jiff::Timestamp::now().as_second(),
        ..Default::default()
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        for doc in serde_norway::Deserializer::from_str(&text) {
            let bad = |message: String| Error::Manifest {
                path: path.clone(),
                message,
            };
            let mut value =
                <Value as serde::Deserialize>::deserialize(doc).map_err(|e| bad(e.to_string()))?;
            if value.is_null() {
                continue;
            }
            let name = value["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if value["metadata"]["namespace"].is_null() {
                value["metadata"]["namespace"] = json!(DEFAULT_NAMESPACE);
            }
            let ns = value["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            value["metadata"]["uid"] = json!(format!("standalone:{ns}/{name}"));
            if value["metadata"]["creationTimestamp"].is_null() {
                value["metadata"]["creationTimestamp"] = json!("1970-01-01T00:00:00Z");
            }
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            let api_version = value["apiVersion"].as_str().unwrap_or_default().to_owned();
            if validator.knows(&api_version, &kind) {
                if let (Some(issuer), "TokenService") = (issuer, kind.as_str())
                    && value["spec"].is_object()
                {
                    value["spec"]["issuer"] = json!(issuer);
                }
                let violations = validator.admit(&mut value);
                if !violations.is_empty() {
                    refused.push(Refused {
                        kind,
                        object: format!("{ns}/{name}"),
                        file: path.clone(),
                        violations,
                    });
                    continue;
                }
            }
            match (api_version.as_str(), kind.as_str()) {
                ("signet.dev/v1alpha1", "TokenService") => inputs
                    .token_services
                    .push(Arc::new(parse(&path, &kind, &name, value)?)),
                ("signet.dev/v1alpha1", "OidcClient") => inputs
                    .clients
                    .push(Arc::new(parse(&path, &kind, &name, value)?)),
                ("signet.dev/v1alpha1", "ApiScope") => inputs
                    .scopes
                    .push(Arc::new(parse(&path, &kind, &name, value)?)),
                ("signet.dev/v1alpha1", "IdentityProvider") => inputs
                    .identity_providers
                    .push(Arc::new(parse(&path, &kind, &name, value)?)),
                ("signet.dev/v1alpha1", "SigningKey") => inputs
                    .signing_keys
                    .push(Arc::new(parse(&path, &kind, &name, value)?)),
                ("v1", "Secret") => {
                    let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
                    for (k, v) in value["stringData"].as_object().into_iter().flatten() {
                        data.insert(
                            k.clone(),
                            v.as_str().unwrap_or_default().as_bytes().to_vec(),
                        );
                    }
                    for (k, v) in value["data"].as_object().into_iter().flatten() {
                        use base64::Engine;
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(v.as_str().unwrap_or_default())
                            .map_err(|e| bad(format!("Secret {name} key {k}: {e}")))?;
                        data.insert(k.clone(), bytes);
                    }
                    inputs.secrets.insert(
                        ObjectKey::new(&ns, &name),
                        SecretData {
                            data,
                            ..Default::default()
                        },
                    );
                }
                // Namespace labels feed clientNamespaceSelector and allowedClientNamespaces,
                // as the API server's Namespaces do in a cluster.
                ("v1", "Namespace") => {
                    let mut labels: BTreeMap<String, String> = value["metadata"]["labels"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect();
                    labels.insert("kubernetes.io/metadata.name".into(), name.clone());
                    inputs.namespaces.insert(name.clone(), labels);
                }
                _ => tracing::debug!(%kind, %name, "ignoring a manifest of another kind"),
            }
        }
    }
    Ok(Manifests { inputs, refused })
}

/// Names, sizes and modification times of the manifests in `dir`.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path(), meta.len(), meta.modified().ok()))
        })
        .collect();
    entries.sort();
    entries
}

/// Recompiles and installs the manifests whenever a file in `dir` changes. Polls once a
/// second: that works on every filesystem, mounted ConfigMaps included.
pub async fn watch(
    app: Arc<crate::app::App>,
    dir: PathBuf,
    state: PathBuf,
    issuer: Option<String>,
) {
    let mut last = fingerprint(&dir);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = fingerprint(&dir);
        if now == last {
            continue;
        }
        last = now;
        match compile_dir(&dir, &state, issuer.as_deref()) {
            Ok(compiled) => super::install_compiled(&app, compiled.snapshot).await,
            Err(error) => {
                app.metrics.snapshots_refused.inc();
                tracing::warn!(%error, "manifests refused; the last good snapshot keeps serving");
                *app.refused.lock().expect("refused lock") = Some(crate::app::Refusal {
                    hash: None,
                    reason: error.to_string(),
                });
            }
        }
    }
}
