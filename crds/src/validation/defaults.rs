//! What the API server does to an object before validating it: nulls in fields that are not
//! nullable and have no default are dropped, then schema defaults fill absent fields
//! (k8s.io/apiextensions-apiserver structural defaulting). The CEL rules rely on it: a rule
//! may read `self.requirePkce` because the field has a default.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

/// Prunes non-nullable nulls and applies defaults, in place, at every depth.
pub fn apply(schema: &JSONSchemaProps, value: &mut Value) {
    match value {
        Value::Object(fields) => {
            let properties = schema.properties.as_ref();
            for (name, child) in properties.into_iter().flatten() {
                let absent_or_null = fields.get(name).is_none_or(|v| v.is_null());
                let keeps_null = child.nullable == Some(true) && fields.contains_key(name);
                match &child.default {
                    Some(default) if absent_or_null && !keeps_null => {
                        fields.insert(name.clone(), default.0.clone());
                    }
                    None if keeps_null => {}
                    None if fields.get(name).is_some_and(Value::is_null) => {
                        fields.remove(name);
                    }
                    _ => {}
                }
            }
            for (name, v) in fields.iter_mut() {
                if let Some(child) = properties.and_then(|p| p.get(name)) {
                    apply(child, v);
                } else if let Some(JSONSchemaPropsOrBool::Schema(extra)) =
                    &schema.additional_properties
                {
                    apply(extra, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
                for v in items {
                    apply(item, v);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::apply;

    fn schema(value: serde_json::Value) -> super::JSONSchemaProps {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn defaults_fill_absent_fields_and_nested_defaults_follow() {
        let s = schema(json!({"type": "object", "properties": {
            "a": {"type": "boolean", "default": true},
            "o": {"type": "object", "default": {}, "properties": {"b": {"type": "string", "default": "x"}}},
            "n": {"type": "string", "nullable": true},
            "m": {"type": "string"},
            "d": {"type": "string", "default": "y"},
        }}));
        let mut v = json!({"n": null, "m": null, "d": null});
        apply(&s, &mut v);
        assert_eq!(v, json!({"a": true, "o": {"b": "x"}, "n": null, "d": "y"}));
    }
}
