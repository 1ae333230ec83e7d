//! In-memory mirrors of the watched objects, fed by kube-runtime watchers.
//!
//! Every mirror nudges one shared trigger when an object changes in a way that can change the
//! compiled result. Changes the operator makes itself to status only (generation unchanged)
//! are filtered out by each kind's fingerprint, so status writes cause no work.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use futures::{StreamExt, stream};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use signet_crds::compile::ObjectKey;
use tokio::sync::Notify;

/// The objects of one kind, by namespace and name.
pub struct Mirror<K> {
    objects: RwLock<BTreeMap<ObjectKey, Arc<K>>>,
    /// Watch streams that have not finished their first list yet.
    pending: AtomicUsize,
}

impl<K> Mirror<K> {
    fn new(streams: usize) -> Arc<Self> {
        Arc::new(Self {
            objects: RwLock::default(),
            pending: AtomicUsize::new(streams),
        })
    }

    /// Whether every watch stream has listed once.
    pub fn is_synced(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// The objects now, in key order.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.objects
            .read()
            .expect("mirror lock")
            .values()
            .cloned()
            .collect()
    }

    /// One object.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.objects.read().expect("mirror lock").get(key).cloned()
    }
}

fn key_of<K: Resource>(object: &K) -> ObjectKey {
    ObjectKey::new(
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default(),
    )
}

/// What decides whether a change is worth a pass.
pub type Fingerprint<K> = fn(&K) -> String;

/// Spec-level fingerprint of a custom resource: generation, labels, annotations, deletion.
pub fn spec_fingerprint<K: Resource>(object: &K) -> String {
    let meta = object.meta();
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        meta.generation, meta.labels, meta.annotations, meta.deletion_timestamp, meta.uid
    )
}

/// Starts mirroring the objects that `apis` list (one watch stream each) and returns the
/// mirror. For Secrets and Namespaces, `K` is `PartialObjectMeta<_>`: metadata only, never
/// Secret data. A change whose fingerprint differs from the last one seen notifies `trigger`.
pub fn spawn<K>(
    apis: Vec<(Option<String>, Api<K>)>,
    fingerprint: Fingerprint<K>,
    trigger: Arc<Notify>,
) -> Arc<Mirror<K>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    spawn_selected(apis, watcher::Config::default(), fingerprint, trigger)
}

/// Like [`spawn`], for the objects that `config` (a label selector) selects.
pub fn spawn_selected<K>(
    apis: Vec<(Option<String>, Api<K>)>,
    config: watcher::Config,
    fingerprint: Fingerprint<K>,
    trigger: Arc<Notify>,
) -> Arc<Mirror<K>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let streams = apis.into_iter().map(|(scope, api)| {
        watcher::watcher(api, config.clone())
            .backoff(retry_backoff())
            .map(move |e| (scope.clone(), e))
            .boxed()
    });
    run(streams.collect(), fingerprint, trigger)
}

/// Delay before watching again after an error: 250 ms doubling to 5 s, jittered, reset by the
/// next event. Without it a watcher retries at once, thousands of times a second while the API
/// server is down; with kube's default (up to 30 s plus jitter) a recovered API server is
/// noticed up to a minute late.
fn retry_backoff() -> watcher::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(250))
        .with_max_delay(std::time::Duration::from_secs(5))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .into()
}

type Scoped<T> = futures::stream::BoxStream<'static, (Option<String>, watcher::Result<Event<T>>)>;

fn run<T>(
    streams: Vec<Scoped<T>>,
    fingerprint: Fingerprint<T>,
    trigger: Arc<Notify>,
) -> Arc<Mirror<T>>
where
    T: Resource + Send + Sync + 'static,
{
    let mirror = Mirror::new(streams.len());
    let m = mirror.clone();
    tokio::spawn(async move {
        let mut events = stream::select_all(streams);
        // Objects listed since the last Init of each stream (a stream's scope is its namespace,
        // or None for all namespaces).
        let mut buffers: BTreeMap<Option<String>, BTreeMap<ObjectKey, Arc<T>>> = BTreeMap::new();
        let mut prints: BTreeMap<ObjectKey, String> = BTreeMap::new();
        let mut synced: BTreeSet<Option<String>> = BTreeSet::new();
        while let Some((scope, event)) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    // The stream waits (`retry_backoff`) before the watcher tries again.
                    tracing::warn!(%error, "watch error, retrying");
                    continue;
                }
            };
            let changed = match event {
                Event::Init => {
                    buffers.insert(scope, BTreeMap::new());
                    false
                }
                Event::InitApply(mut object) => {
                    slim(&mut object);
                    buffers
                        .entry(scope)
                        .or_default()
                        .insert(key_of(&object), Arc::new(object));
                    false
                }
                Event::InitDone => {
                    let fresh = buffers.remove(&scope).unwrap_or_default();
                    let mut objects = m.objects.write().expect("mirror lock");
                    let before = objects.len();
                    objects.retain(|k, _| scope.as_ref().is_some_and(|ns| ns != &k.namespace));
                    let mut changed = objects.len() + fresh.len() != before;
                    for (k, object) in fresh {
                        let print = fingerprint(&object);
                        changed |= prints.insert(k.clone(), print.clone()).as_ref() != Some(&print);
                        objects.insert(k, object);
                    }
                    prints.retain(|k, _| objects.contains_key(k));
                    if synced.insert(scope) {
                        m.pending.fetch_sub(1, Ordering::AcqRel);
                        changed = true;
                    }
                    changed
                }
                Event::Apply(mut object) => {
                    slim(&mut object);
                    let k = key_of(&object);
                    let print = fingerprint(&object);
                    m.objects
                        .write()
                        .expect("mirror lock")
                        .insert(k.clone(), Arc::new(object));
                    prints.insert(k, print.clone()).as_ref() != Some(&print)
                }
                Event::Delete(object) => {
                    let k = key_of(&object);
                    m.objects.write().expect("mirror lock").remove(&k);
                    prints.remove(&k);
                    true
                }
            };
            if changed {
                trigger.notify_one();
            }
        }
    });
    mirror
}

/// The namespace and name of a mirrored object.
pub fn key<K: ResourceExt>(object: &K) -> ObjectKey {
    ObjectKey::new(&object.namespace().unwrap_or_default(), &object.name_any())
}

/// Drops what the operator never reads and what is large on every object: managedFields
/// (one entry per field manager, on every object) and kubectl's last-applied annotation.
fn slim<T: Resource>(object: &mut T) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}
