//! `metadata`, which a CRD's schema leaves to the API server: every object needs a name that
//! is a DNS subdomain, a namespace that is a DNS label, and only ObjectMeta's own fields.

use serde_json::Value;

use super::Violation;

/// ObjectMeta's fields (k8s.io/apimachinery meta/v1); strict field validation refuses others.
const OBJECT_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// The violations of `metadata` (the value of the object's `metadata` field, if any).
pub fn check(metadata: Option<&Value>) -> Vec<Violation> {
    let mut out = Vec::new();
    let violation = |field: &str, message: &str| Violation {
        field: format!("metadata.{field}"),
        message: message.to_owned(),
    };
    let Some(Value::Object(fields)) = metadata else {
        out.push(violation("name", "Required value: name is required"));
        return out;
    };
    match fields.get("name") {
        Some(Value::String(name)) if is_dns_subdomain(name) => {}
        Some(Value::String(_)) => out.push(violation(
            "name",
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character (at most 253)",
        )),
        _ => out.push(violation("name", "Required value: name is required")),
    }
    match fields.get("namespace") {
        None | Some(Value::Null) => {}
        Some(Value::String(ns)) if is_dns_label(ns) => {}
        Some(_) => out.push(violation(
            "namespace",
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
             '-', and must start and end with an alphanumeric character (at most 63)",
        )),
    }
    for map in ["labels", "annotations"] {
        match fields.get(map) {
            None | Some(Value::Null) => {}
            Some(Value::Object(entries)) if entries.values().all(Value::is_string) => {}
            Some(_) => out.push(violation(map, "must be a map of strings to strings")),
        }
    }
    for name in fields.keys() {
        if !OBJECT_META.contains(&name.as_str()) {
            out.push(violation(
                name,
                "unknown field (not declared in the schema)",
            ));
        }
    }
    out
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::check;

    fn fields(metadata: serde_json::Value) -> Vec<String> {
        check(Some(&metadata))
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn names_namespaces_and_fields_are_checked() {
        assert!(
            fields(json!({"name": "web-app", "namespace": "team-a", "labels": {"a": "b"}}))
                .is_empty()
        );
        assert!(fields(json!({"name": "a.b-c"})).is_empty());
        assert_eq!(fields(json!({})), ["metadata.name"]);
        assert_eq!(fields(json!({"name": "Web_App"})), ["metadata.name"]);
        assert_eq!(
            fields(json!({"name": "a", "namespace": "a.b"})),
            ["metadata.namespace"]
        );
        assert_eq!(
            fields(json!({"name": "a", "lables": {}})),
            ["metadata.lables"]
        );
        assert_eq!(check(None).len(), 1);
    }
}
