//! The OpenAPI v3 keywords of one schema node, checked against one value as the API server's
//! schema validator (kube-openapi) checks them, with its messages.

use std::collections::HashMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use serde_json::Value;

/// Keywords a schema may use; anything else fails `supported_keywords_cover_the_schemas`, so a
/// new keyword in a generated CRD cannot be silently ignored here. Descriptive and structural
/// ones (description, default, properties, ...) are handled by the walk or have no effect on
/// validity.
pub const SUPPORTED: &[&str] = &[
    "type",
    "nullable",
    "enum",
    "pattern",
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-validations",
    "x-kubernetes-preserve-unknown-fields",
    "default",
    "description",
    "title",
    "example",
    // int32/int64 on integers are range checks; string formats (date-time) appear only in
    // status, which the API server drops on create (the status subresource), as does `admit`.
    "format",
    // Only in status, for the same reason never met here.
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
];

/// One failed keyword.
pub struct Failure {
    pub message: String,
    /// kube-openapi failures that stop the API server from running the CEL rules at all:
    /// wrong type, not in the enum, required, too long, too many.
    pub blocking: bool,
}

fn fail(message: String, blocking: bool) -> Failure {
    Failure { message, blocking }
}

/// Compiled `pattern`s, shared by every validation.
pub type Patterns = HashMap<String, Result<regex::Regex, String>>;

/// Whether `value` has the JSON type `type_` names.
pub fn type_matches(type_: &str, value: &Value) -> bool {
    match type_ {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => true,
    }
}

/// The keyword failures of `value` against `schema` itself (not its children). A value of the
/// wrong type gets only the type failure, as in kube-openapi.
pub fn check(schema: &JSONSchemaProps, value: &Value, patterns: &Patterns) -> Vec<Failure> {
    let mut out = Vec::new();
    if let Some(type_) = &schema.type_
        && !type_matches(type_, value)
    {
        out.push(fail(format!("must be of type {type_}"), true));
        return out;
    }
    if let Some(allowed) = &schema.enum_
        && !allowed.iter().any(|a| &a.0 == value)
    {
        let list: Vec<String> = allowed.iter().map(|a| a.0.to_string()).collect();
        out.push(fail(
            format!(
                "Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ),
            true,
        ));
    }
    match value {
        Value::String(text) => string(schema, text, patterns, &mut out),
        Value::Array(items) => count(
            items.len(),
            schema.min_items,
            schema.max_items,
            "items",
            &mut out,
        ),
        Value::Object(fields) => count(
            fields.len(),
            schema.min_properties,
            schema.max_properties,
            "properties",
            &mut out,
        ),
        Value::Number(n) => number(schema, n, &mut out),
        _ => {}
    }
    out
}

fn string(schema: &JSONSchemaProps, text: &str, patterns: &Patterns, out: &mut Vec<Failure>) {
    // Characters, not bytes: kube-openapi counts with utf8.RuneCountInString.
    let chars = text.chars().count() as i64;
    if let Some(max) = schema.max_length
        && chars > max
    {
        out.push(fail(
            format!("Too long: may not be longer than {max} characters"),
            true,
        ));
    }
    if let Some(min) = schema.min_length
        && chars < min
    {
        out.push(fail(format!("should be at least {min} chars long"), false));
    }
    if let Some(pattern) = &schema.pattern {
        match patterns.get(pattern) {
            Some(Ok(regex)) if regex.is_match(text) => {}
            Some(Ok(_)) => out.push(fail(format!("should match '{pattern}'"), false)),
            Some(Err(error)) => out.push(fail(format!("pattern does not compile: {error}"), false)),
            None => out.push(fail(format!("pattern {pattern} was not compiled"), false)),
        }
    }
}

fn count(n: usize, min: Option<i64>, max: Option<i64>, what: &str, out: &mut Vec<Failure>) {
    let n = n as i64;
    if let Some(max) = max
        && n > max
    {
        out.push(fail(
            format!("Too many: {n}: must have at most {max} {what}"),
            true,
        ));
    }
    if let Some(min) = min
        && n < min
    {
        out.push(fail(format!("should have at least {min} {what}"), false));
    }
}

fn number(schema: &JSONSchemaProps, n: &serde_json::Number, out: &mut Vec<Failure>) {
    let fits = match schema.format.as_deref() {
        Some("int32") => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
        Some("int64") => n.as_i64().is_some(),
        _ => true,
    };
    if !fits {
        let format = schema.format.as_deref().unwrap_or_default();
        out.push(fail(format!("must be of type {format}"), true));
    }
    let n = n.as_f64().unwrap_or(f64::NAN);
    if let Some(max) = schema.maximum {
        let exclusive = schema.exclusive_maximum == Some(true);
        if n > max || (exclusive && n == max) {
            let than = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            out.push(fail(format!("should be {than} {max}"), false));
        }
    }
    if let Some(min) = schema.minimum {
        let exclusive = schema.exclusive_minimum == Some(true);
        if n < min || (exclusive && n == min) {
            let than = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            out.push(fail(format!("should be {than} {min}"), false));
        }
    }
}
