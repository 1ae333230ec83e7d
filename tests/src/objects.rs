//! Creating Signet objects of any kind from JSON, and reading API errors.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};

/// The API resource of a Signet kind (`OidcClient`, ...).
pub fn signet_resource(kind: &str) -> ApiResource {
    let plural = format!("{}s", kind.to_ascii_lowercase());
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(signet_crds::GROUP, "v1alpha1", kind),
        &plural,
    )
}

/// A namespaced API for a Signet kind.
pub fn signet_api(client: &Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &signet_resource(kind))
}

/// An object of `kind` named `name` with `spec`, as JSON.
pub fn signet_object(kind: &str, name: &str, spec: serde_json::Value) -> DynamicObject {
    let mut object = DynamicObject::new(name, &signet_resource(kind));
    object.data = serde_json::json!({ "spec": spec });
    object
}

/// The fields that the API server names in `details.causes` of a refusal, or `None` when the
/// error is not an API refusal.
pub fn refused_fields(error: &kube::Error) -> Option<(u16, Vec<String>)> {
    match error {
        kube::Error::Api(status) => {
            let fields = status
                .details
                .as_ref()
                .map(|d| d.causes.iter().map(|c| c.field.clone()).collect())
                .unwrap_or_default();
            Some((status.code, fields))
        }
        _ => None,
    }
}

/// RFC 7396 JSON merge patch: `patch` merged into `target`; `null` removes a member.
pub fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(target), serde_json::Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(
                        target.entry(key.clone()).or_insert(serde_json::Value::Null),
                        value,
                    );
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}
