//! Validation as the API server does it on create, in process: so that standalone mode
//! refuses exactly what `kubectl apply` refuses.
//!
//! There is one source of truth: the generated CRDs ([`crate::crd::all`], the same ones
//! crdgen writes). [`Validator`] reads each kind's `openAPIV3Schema` and applies it the way
//! the API server would: status dropped (status subresource), nulls pruned and defaults
//! applied, then every OpenAPI keyword the schemas use, unknown fields refused (`kubectl
//! apply` asks for strict field validation), and every `x-kubernetes-validations` rule run
//! with the `cel` crate at the node it sits on, named by that node plus its `fieldPath`.
//! Transition rules (those reading `oldSelf`) are skipped, as the API server skips them on
//! create.

mod cel;
mod defaults;
mod go_url;
mod keywords;
mod metadata;
mod path;
mod walk;

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

pub use self::cel::SUPPORTED_FUNCTIONS;
pub use self::keywords::SUPPORTED as SUPPORTED_KEYWORDS;
use self::path::FieldPath;

/// One reason the API server would refuse an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The field as the API server names it in `details.causes[].field`, e.g.
    /// `spec.redirectUris[0]`; empty for the object as a whole.
    pub field: String,
    /// What is wrong, with the rule's own message where a CEL rule failed.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// The API server's note when keyword failures kept it from running the CEL rules.
const RULES_NOT_CHECKED: &str = "some validation rules were not checked because the object was \
                                 invalid; correct the existing errors to complete validation";

struct Kind {
    /// The root schema without `metadata`, which [`metadata::check`] covers.
    schema: JSONSchemaProps,
    status_subresource: bool,
}

/// The schemas and compiled rules of a set of CRDs.
pub struct Validator {
    kinds: BTreeMap<(String, String), Kind>,
    patterns: keywords::Patterns,
    rules: cel::Rules,
}

impl Validator {
    /// A validator for Signet's own CRDs.
    pub fn new() -> Self {
        Self::from_crds(&crate::crd::all())
    }

    /// A validator for `crds`: every served version of each.
    pub fn from_crds(crds: &[CustomResourceDefinition]) -> Self {
        let mut kinds = BTreeMap::new();
        for crd in crds {
            for version in crd.spec.versions.iter().filter(|v| v.served) {
                let Some(mut schema) = version
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.clone())
                else {
                    continue;
                };
                if let Some(properties) = &mut schema.properties {
                    properties.remove("metadata");
                }
                let status_subresource = version
                    .subresources
                    .as_ref()
                    .is_some_and(|s| s.status.is_some());
                kinds.insert(
                    (
                        format!("{}/{}", crd.spec.group, version.name),
                        crd.spec.names.kind.clone(),
                    ),
                    Kind {
                        schema,
                        status_subresource,
                    },
                );
            }
        }
        let mut patterns = keywords::Patterns::new();
        for kind in kinds.values() {
            collect_patterns(&kind.schema, &mut patterns);
        }
        let rules = cel::Rules::compile(kinds.values().map(|k| &k.schema));
        Self {
            kinds,
            patterns,
            rules,
        }
    }

    /// Whether `apiVersion`/`kind` is one of the validator's kinds.
    pub fn knows(&self, api_version: &str, kind: &str) -> bool {
        self.kinds
            .contains_key(&(api_version.to_owned(), kind.to_owned()))
    }

    /// Prepares `object` as the API server does on create (status dropped, nulls pruned,
    /// defaults applied) and returns every violation; an empty list means the API server
    /// would store it. `object` is left prepared either way.
    pub fn admit(&self, object: &mut Value) -> Vec<Violation> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind_name = object["kind"].as_str().unwrap_or_default().to_owned();
        let Some(kind) = self.kinds.get(&(api_version.clone(), kind_name.clone())) else {
            return vec![Violation {
                field: "kind".into(),
                message: format!("no kind {kind_name} in {api_version}"),
            }];
        };
        let Some(fields) = object.as_object_mut() else {
            return vec![Violation {
                field: String::new(),
                message: "an object must be a map".into(),
            }];
        };
        if kind.status_subresource {
            fields.remove("status");
        }
        // The type fields and metadata are the API server's own, not in the CRD's schema.
        let envelope: Vec<(&str, Value)> = ["apiVersion", "kind", "metadata"]
            .into_iter()
            .filter_map(|k| fields.remove(k).map(|v| (k, v)))
            .collect();
        let metadata = envelope
            .iter()
            .find(|(k, _)| *k == "metadata")
            .map(|(_, v)| v);
        defaults::apply(&kind.schema, object);

        let mut violations = metadata::check(metadata);
        let mut found = walk::Found::default();
        walk::Walker {
            patterns: &self.patterns,
            rules: &self.rules,
        }
        .walk(&kind.schema, object, &FieldPath::default(), &mut found);
        violations.extend(found.schema);
        if found.blocking {
            // As the API server: wrong types, enums, required fields and sizes stop CEL.
            violations.push(Violation {
                field: String::new(),
                message: RULES_NOT_CHECKED.into(),
            });
        } else {
            violations.extend(found.rules);
        }
        if let Some(fields) = object.as_object_mut() {
            for (k, v) in envelope {
                fields.insert(k.into(), v);
            }
        }
        violations
    }

    /// The functions each rule calls, by rule source (or why it does not compile): the tests
    /// check that the validator provides every one.
    pub fn rule_functions(&self) -> Vec<(String, Result<Vec<String>, String>)> {
        self.rules
            .programs()
            .map(|(source, program)| {
                let functions = program.as_ref().map_err(Clone::clone).map(|p| {
                    p.references()
                        .functions()
                        .into_iter()
                        .map(str::to_owned)
                        .collect()
                });
                (source.to_owned(), functions)
            })
            .collect()
    }
}

impl Default for Validator {
    fn default() -> Self {
        Self::new()
    }
}

fn collect_patterns(schema: &JSONSchemaProps, out: &mut keywords::Patterns) {
    if let Some(pattern) = &schema.pattern {
        out.entry(pattern.clone())
            .or_insert_with(|| regex::Regex::new(pattern).map_err(|e| e.to_string()));
    }
    for child in schema.properties.iter().flat_map(|p| p.values()) {
        collect_patterns(child, out);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
        collect_patterns(items, out);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = &schema.additional_properties {
        collect_patterns(extra, out);
    }
}

#[cfg(test)]
mod tests;
