//! The validator covers what the generated CRDs use: every keyword, every rule, every
//! function a rule calls. The behaviour on real cases is the validation table, run in
//! tests/tests/api_validation.rs.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, ValidationRule,
};
use serde_json::{Value, json};

use super::cel::{Outcome, Rules};
use super::{SUPPORTED_FUNCTIONS, SUPPORTED_KEYWORDS, Validator};

fn schemas() -> Vec<Value> {
    crate::crd::all()
        .iter()
        .flat_map(|crd| crd.spec.versions.clone())
        .filter_map(|v| v.schema.and_then(|s| s.open_api_v3_schema))
        .map(|s| serde_json::to_value(s).unwrap())
        .collect()
}

/// Every schema node, with where.
fn nodes<'a>(schema: &'a Value, at: &str) -> Vec<(String, &'a Value)> {
    let mut out = vec![(at.to_owned(), schema)];
    for (name, child) in schema["properties"].as_object().into_iter().flatten() {
        out.extend(nodes(child, &format!("{at}.{name}")));
    }
    for key in ["items", "additionalProperties"] {
        if schema[key].is_object() {
            out.extend(nodes(&schema[key], &format!("{at}[]")));
        }
    }
    out
}

#[test]
fn supported_keywords_cover_the_schemas() {
    let schemas = schemas();
    let unsupported: Vec<(String, &str)> = schemas
        .iter()
        .flat_map(|schema| nodes(schema, ""))
        .flat_map(|(at, node)| {
            let keywords = node.as_object().into_iter().flat_map(|n| n.keys());
            keywords
                .map(move |k| (at.clone(), k.as_str()))
                .collect::<Vec<_>>()
        })
        .filter(|(_, k)| !SUPPORTED_KEYWORDS.contains(k))
        .collect();
    assert!(
        unsupported.is_empty(),
        "not checked in process: {unsupported:?}"
    );
    // The status-only keywords really are only under status, which `admit` drops; outside
    // it, `format` is only an integer's range.
    for schema in &schemas {
        for (at, node) in nodes(schema, "") {
            let status = at.starts_with(".status");
            let format = node.get("format").and_then(Value::as_str);
            assert!(
                status || format.is_none_or(|f| f == "int32" || f == "int64"),
                "format {format:?} at {at} is not checked"
            );
            assert!(
                status || node.get("x-kubernetes-list-type").is_none(),
                "x-kubernetes-list-type at {at} is not checked"
            );
        }
    }
}

#[test]
fn every_rule_compiles_and_calls_only_supported_functions() {
    let validator = Validator::new();
    let rules = validator.rule_functions();
    assert!(rules.len() > 20, "the CRDs carry their rules");
    for (source, functions) in rules {
        let functions = functions.unwrap_or_else(|e| panic!("{source}: {e}"));
        for function in functions {
            assert!(
                SUPPORTED_FUNCTIONS.contains(&function.as_str()),
                "{source} calls {function}, which the in-process validator does not provide"
            );
        }
    }
}

fn run(rule: &str, value: Value) -> Result<(), String> {
    run_rule(
        ValidationRule {
            rule: rule.into(),
            message: Some("failed".into()),
            ..Default::default()
        },
        value,
    )
}

fn run_rule(rule: ValidationRule, value: Value) -> Result<(), String> {
    let schema: JSONSchemaProps = serde_json::from_value(json!({
        "type": "object",
        "x-kubernetes-validations": [rule],
    }))
    .unwrap();
    match Rules::compile([&schema]).check(&rule, &Rules::bind(&value, &schema)) {
        Outcome::Pass => Ok(()),
        Outcome::Fail(message) => Err(message),
        Outcome::Transition => Err("transition".into()),
    }
}

#[test]
fn the_functions_the_rules_call_behave_as_in_kubernetes() {
    let v = json!({"u": "https://a.example/x", "rel": "a.example", "d": "1h30m", "l": ["a", "b"], "m": {"k": "v"}, "b": true, "n": 3});
    for rule in [
        "isURL(self.u) && !isURL(self.rel) && isURL('/cb')",
        r"self.u.matches('^https://[^/?#@\\s]+([/?#]|$)') && !self.rel.matches('^https://')",
        "duration(self.d) > duration('1h') && duration(self.d) <= duration('90m')",
        "duration('1.5h') == duration('90m') && duration('0s') < duration('1ns')",
        "has(self.u) && !has(self.missing) && has(self.m.k)",
        "self.l.all(x, x.size() == 1) && self.l.exists(x, x == 'b') && !self.l.exists(x, x == 'c')",
        "self.m.all(k, size(k) <= 128 && !(k in ['iss', 'sub']))",
        "'Email-É'.lowerAscii() == 'email-É' && !('ISS'.lowerAscii() in ['sub'])",
        "size(self.l) == 2 && size(self.u) == 19 && 'a' in self.l",
        "self.u.contains('#') == false && self.u.startsWith('https://') && self.u.endsWith('/x')",
        "self.b && self.n == 3 && self.n > 2 && self.n >= 3 && self.n != 4",
        "(self.b ? self.l[0] : 'x') == 'a' && self.m['k'] == 'v'",
        "self.l.all(c, self.l.exists_one(d, d == c)) && !['a', 'a'].all(c, ['a', 'a'].exists_one(d, d == c))",
    ] {
        assert_eq!(run(rule, v.clone()), Ok(()), "{rule}");
    }
    assert_eq!(run("self.b == false", v.clone()), Err("failed".into()));
    assert_eq!(run("self == oldSelf", v.clone()), Err("transition".into()));
    // An evaluation error (no such field) refuses, as in the API server.
    assert!(run("self.missing == 'x'", v).is_err());
}

#[test]
fn a_message_expression_names_the_problem_and_falls_back_to_the_message() {
    let rule = |expression: &str| ValidationRule {
        rule: "self.n < 3".into(),
        message: Some("too big".into()),
        message_expression: Some(expression.into()),
        ..Default::default()
    };
    let v = json!({"n": 5, "s": "n"});
    assert_eq!(
        run_rule(rule("'got ' + self.s + ' too big'"), v.clone()),
        Err("got n too big".into())
    );
    assert_eq!(
        run_rule(rule("self.nothing"), v.clone()),
        Err("too big".into())
    );
    let bare = ValidationRule {
        rule: "self.n < 3".into(),
        ..Default::default()
    };
    assert_eq!(run_rule(bare, v), Err("failed rule: self.n < 3".into()));
}

#[test]
fn examples_are_admitted() {
    let validator = Validator::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = 0;
    for dir in [root.clone(), root.join("teams")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in serde_norway::Deserializer::from_str(&text) {
                let mut object: Value = serde::Deserialize::deserialize(doc).unwrap();
                let (api_version, kind) = (
                    object["apiVersion"].as_str().unwrap_or_default().to_owned(),
                    object["kind"].as_str().unwrap_or_default().to_owned(),
                );
                if !validator.knows(&api_version, &kind) {
                    continue;
                }
                let violations = validator.admit(&mut object);
                assert!(
                    violations.is_empty(),
                    "{}: {kind}: {violations:?}",
                    path.display()
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 8, "only {seen} example objects");
}

#[test]
fn unknown_fields_and_wrong_types_are_refused_and_stop_the_rules() {
    let validator = Validator::new();
    let mut object = json!({
        "apiVersion": "signet.dev/v1alpha1", "kind": "OidcClient",
        "metadata": {"name": "a"},
        "spec": {"tokenEndpointAuthMethod": "none", "redirectUris": ["https://a.example/cb"], "grantType": ["x"], "requirePkce": "yes"},
    });
    let fields: Vec<String> = validator
        .admit(&mut object)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert!(fields.contains(&"spec.grantType".to_owned()), "{fields:?}");
    assert!(
        fields.contains(&"spec.requirePkce".to_owned()),
        "{fields:?}"
    );
    // The confidential client with `none` is not reported: CEL did not run, as in the API server.
    assert!(
        !fields.contains(&"spec.tokenEndpointAuthMethod".to_owned()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&String::new()),
        "the note that rules were not checked"
    );
}

#[test]
fn status_is_dropped_and_defaults_are_applied() {
    let validator = Validator::new();
    let mut object = json!({
        "apiVersion": "signet.dev/v1alpha1", "kind": "OidcClient",
        "metadata": {"name": "a"},
        "spec": {"redirectUris": ["https://a.example/cb"]},
        "status": {"anything": true},
    });
    assert_eq!(validator.admit(&mut object), []);
    assert!(object.get("status").is_none());
    assert_eq!(object["spec"]["requirePkce"], true);
    assert_eq!(object["spec"]["type"], "confidential");
    assert_eq!(object["metadata"]["name"], "a");
}
