//! One walk of an object against its schema: the keywords at every node, unknown fields
//! (`kubectl apply` asks for strict field validation), then the CEL rules at every node with
//! `self` bound to that node's value.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

use super::Violation;
use super::cel::{Outcome, Rules};
use super::keywords::{self, Patterns};
use super::path::FieldPath;

/// What one walk found.
#[derive(Default)]
pub struct Found {
    /// Keyword and unknown-field violations.
    pub schema: Vec<Violation>,
    /// Whether one of them stops the API server from running the CEL rules.
    pub blocking: bool,
    /// CEL rule violations.
    pub rules: Vec<Violation>,
}

/// The schema and rules a walk checks against.
pub struct Walker<'a> {
    pub patterns: &'a Patterns,
    pub rules: &'a Rules,
}

impl Walker<'_> {
    /// Checks `value` at `path` against `schema` and everything below it.
    pub fn walk(
        &self,
        schema: &JSONSchemaProps,
        value: &Value,
        path: &FieldPath,
        found: &mut Found,
    ) {
        if value.is_null() {
            if schema.nullable != Some(true) {
                let type_ = schema.type_.as_deref().unwrap_or("a value");
                push(&mut found.schema, path, format!("must be of type {type_}"));
                found.blocking = true;
            }
            // A null is neither checked further nor given to CEL, as in the API server.
            return;
        }
        let failures = keywords::check(schema, value, self.patterns);
        let wrong_type = schema
            .type_
            .as_deref()
            .is_some_and(|t| !keywords::type_matches(t, value));
        for failure in failures {
            found.blocking |= failure.blocking;
            push(&mut found.schema, path, failure.message);
        }
        if wrong_type {
            return;
        }
        match value {
            Value::Object(fields) => self.object(schema, fields, path, found),
            Value::Array(items) => {
                if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
                    for (i, v) in items.iter().enumerate() {
                        self.walk(item, v, &path.index(i), found);
                    }
                }
            }
            _ => {}
        }
        let rules = schema
            .x_kubernetes_validations
            .as_deref()
            .unwrap_or_default();
        if rules.is_empty() {
            return;
        }
        let bound = Rules::bind(value, schema);
        for rule in rules {
            if let Outcome::Fail(message) = self.rules.check(rule, &bound) {
                // The API server names the rule's node plus its fieldPath.
                let field = rule
                    .field_path
                    .as_deref()
                    .and_then(|fp| path.join_field_path(fp))
                    .unwrap_or_else(|| path.clone());
                push(&mut found.rules, &field, message);
            }
        }
    }

    fn object(
        &self,
        schema: &JSONSchemaProps,
        fields: &serde_json::Map<String, Value>,
        path: &FieldPath,
        found: &mut Found,
    ) {
        for name in schema.required.iter().flatten() {
            if !fields.contains_key(name) {
                push(
                    &mut found.schema,
                    &path.child(name),
                    "Required value".into(),
                );
                found.blocking = true;
            }
        }
        let properties = schema.properties.as_ref();
        let open = schema.x_kubernetes_preserve_unknown_fields == Some(true);
        for (name, v) in fields {
            if let Some(child) = properties.and_then(|p| p.get(name)) {
                self.walk(child, v, &path.child(name), found);
                continue;
            }
            match &schema.additional_properties {
                Some(JSONSchemaPropsOrBool::Schema(extra)) => {
                    self.walk(extra, v, &path.key(name), found)
                }
                Some(JSONSchemaPropsOrBool::Bool(true)) => {}
                _ if open => {}
                _ => {
                    // What strict field validation says; it refuses the request.
                    push(
                        &mut found.schema,
                        &path.child(name),
                        "unknown field (not declared in the schema)".into(),
                    );
                    found.blocking = true;
                }
            }
        }
    }
}

fn push(out: &mut Vec<Violation>, path: &FieldPath, message: String) {
    out.push(Violation {
        field: path.to_string(),
        message,
    });
}
