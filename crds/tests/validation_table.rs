//! The validation table that tests/tests/api_validation.rs runs against a real API server,
//! run here through the in-process validator, in both directions: every refused case is
//! refused naming exactly the table's field, every accepted case is accepted. Standalone mode
//! uses this validator, so the two modes refuse the same inputs.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use signet_crds::validation::Validator;

#[derive(Deserialize)]
struct Table {
    bases: BTreeMap<String, Value>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    kind: String,
    name: String,
    #[serde(default)]
    patch: Value,
    #[serde(default)]
    accept: bool,
    refuse: Option<String>,
}

/// RFC 7396 JSON merge patch, as the API-server test applies the table's patches.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

#[test]
fn in_process_validation_refuses_and_accepts_what_the_api_server_does() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/tests/data/validation-cases.yaml"
    );
    let table: Table = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(table.cases.len() >= 30, "the table keeps at least 30 cases");
    let validator = Validator::new();

    let mut failures = Vec::new();
    for (i, case) in table.cases.iter().enumerate() {
        assert!(
            case.accept != case.refuse.is_some(),
            "case {:?} must either accept or refuse",
            case.name
        );
        let mut spec = table.bases[&case.kind].clone();
        if !case.patch.is_null() {
            merge(&mut spec, &case.patch);
        }
        let mut object = json!({
            "apiVersion": "signet.dev/v1alpha1",
            "kind": case.kind,
            "metadata": {"name": format!("case-{i}"), "namespace": "validation"},
            "spec": spec,
        });
        let violations = validator.admit(&mut object);
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        match &case.refuse {
            None if violations.is_empty() => {}
            None => failures.push(format!(
                "{:?}: should be accepted: {violations:?}",
                case.name
            )),
            Some(field) if fields.contains(&field.as_str()) => {}
            Some(field) if violations.is_empty() => failures.push(format!(
                "{:?}: accepted, but {field} should be refused",
                case.name
            )),
            Some(field) => failures.push(format!(
                "{:?}: refused, but not on {field}: {violations:?}",
                case.name
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        table.cases.len(),
        failures.join("\n")
    );
}
