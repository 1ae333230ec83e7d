//! The API reference (docs/reference.md), generated from the CRD schemas so it cannot say
//! anything the API server does not enforce: every field with its type, default, whether it
//! is required, its description, and the CEL rules with their messages.

use std::fmt::Write;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// The whole reference, in Markdown.
pub fn markdown(crds: &[CustomResourceDefinition]) -> String {
    let mut out = String::from(
        "# API reference: signet.dev/v1alpha1\n\n\
         Generated from the CRD schemas by `cargo run -p signet-crds --bin crdgen`; a test fails \
         when it is out of date. `kubectl explain <kind>.spec` shows the same text.\n",
    );
    for crd in crds {
        let version = &crd.spec.versions[0];
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .map(|s| serde_json::to_value(s).unwrap_or_default())
            .unwrap_or_default();
        let names = &crd.spec.names;
        let _ = write!(
            out,
            "\n## {} ({}, {})\n\n",
            names.kind,
            crd.spec.scope,
            names.short_names.as_deref().unwrap_or_default().join(", ")
        );
        for part in ["spec", "status"] {
            let node = &schema["properties"][part];
            if node.is_null() {
                continue;
            }
            let _ = writeln!(out, "### {}.{part}\n", names.kind);
            if let Some(text) = node["description"].as_str() {
                let _ = writeln!(out, "{}\n", one_line(text));
            }
            rules(&mut out, part, node);
            out.push_str("| field | type | description |\n| --- | --- | --- |\n");
            fields(&mut out, part, node);
        }
    }
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn type_of(node: &Value) -> String {
    let base = node["type"]
        .as_str()
        .unwrap_or(if node["x-kubernetes-int-or-string"] == true {
            "int or string"
        } else {
            "object"
        });
    let mut text = match base {
        "array" => format!("[]{}", type_of(&node["items"])),
        other => other.to_owned(),
    };
    if let Some(values) = node["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| v.as_str().map_or(v.to_string(), str::to_owned))
            .collect();
        let _ = write!(text, " ({})", values.join(", "));
    }
    text
}

fn rules(out: &mut String, path: &str, node: &Value) {
    for rule in node["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let message = rule["message"].as_str().unwrap_or("");
        let _ = writeln!(out, "- rule on `{path}`: {}", one_line(message));
    }
    if node["x-kubernetes-validations"].is_array() {
        out.push('\n');
    }
}

fn fields(out: &mut String, path: &str, node: &Value) {
    let required: Vec<&str> = node["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let Some(properties) = node["properties"].as_object() else {
        return;
    };
    for (name, child) in properties {
        let field = format!("{path}.{name}");
        let mut description = one_line(child["description"].as_str().unwrap_or(""));
        if required.contains(&name.as_str()) {
            description.insert_str(0, "**Required.** ");
        }
        if !child["default"].is_null() {
            let _ = write!(description, " Default `{}`.", child["default"]);
        }
        for rule in child["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(message) = rule["message"].as_str() {
                let _ = write!(
                    description,
                    " Rule: {}.",
                    one_line(message).trim_end_matches('.')
                );
            }
        }
        let _ = writeln!(
            out,
            "| `{field}` | {} | {description} |",
            type_of(child).replace('|', "\\|")
        );
        let inner = if child["type"] == "array" {
            &child["items"]
        } else {
            child
        };
        fields(out, &field, inner);
    }
}
