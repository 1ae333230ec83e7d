//! A namespace per test.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};

/// Label on every test namespace, naming the test that made it.
pub const TEST_LABEL: &str = "signet.dev/test";

/// A namespace created for one test. Namespaces are left behind on purpose: the control
/// plane of a run is thrown away afterwards, and a failed test's objects stay inspectable.
#[derive(Debug, Clone)]
pub struct TestNamespace {
    /// The namespace's name: the test name, made DNS-safe, plus a unique suffix.
    pub name: String,
}

impl TestNamespace {
    /// Creates a namespace for `test` (a short, descriptive name).
    pub async fn create(client: &Client, test: &str) -> anyhow::Result<Self> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let stem: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        let name = format!(
            "{}-{}-{}",
            stem.trim_matches('-'),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([(
                    TEST_LABEL.to_owned(),
                    stem.trim_matches('-').to_owned(),
                )])),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(Self { name })
    }
}

/// Sets `labels` on namespace `ns` (others stay).
pub async fn label(client: &Client, ns: &str, labels: BTreeMap<&str, &str>) -> anyhow::Result<()> {
    let patch = serde_json::json!({"metadata": {"labels": labels}});
    Api::<Namespace>::all(client.clone())
        .patch(ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}
