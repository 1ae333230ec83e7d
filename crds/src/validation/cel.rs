//! The CRDs' `x-kubernetes-validations` rules, compiled once and run in process with the
//! `cel` crate, plus the Kubernetes CEL library functions the rules call that the crate lacks.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::types::{self, CelBool, CelString};
use cel::common::value::CowVal;
use cel::objects::{Key, Map};
use cel::{Context, Env, ExecutionError, Program, Value};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, ValidationRule,
};

use super::go_url;

/// The functions and operators the rules may call, each exercised by the validation tests. The
/// macros `has`, `all` and `exists` are expanded by the parser and call none of their own.
/// `isURL` is Kubernetes' (k8s.io/apiserver/pkg/cel/library) and `lowerAscii` is CEL's strings
/// extension, which Kubernetes enables; both are added here; the rest come
/// with the crate's standard library. A rule that calls anything else fails the test
/// `every_rule_compiles_and_calls_only_supported_functions`.
pub const SUPPORTED_FUNCTIONS: &[&str] = &[
    // operators, as the parser names them
    "_==_",
    "_!=_",
    "_<_",
    "_<=_",
    "_>_",
    "_>=_",
    "_&&_",
    "_||_",
    "!_",
    "_?_:_",
    "_[_]",
    // `exists_one` counts its matches with it
    "_+_",
    "@in",
    "@not_strictly_false",
    // standard library
    "matches",
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "duration",
    // Kubernetes library
    "isURL",
    "lowerAscii",
];

/// What a rule said about a value.
pub enum Outcome {
    /// The rule holds.
    Pass,
    /// The rule does not hold, or could not be evaluated: the API server refuses both.
    Fail(String),
    /// A transition rule (it reads `oldSelf`): never evaluated on create, so not here either.
    Transition,
}

/// Every rule of a set of schemas, compiled once.
pub struct Rules {
    env: Arc<Env>,
    programs: HashMap<String, Result<Program, String>>,
}

impl Rules {
    /// Compiles every rule (and message expression) found in `schemas`.
    pub fn compile<'a>(schemas: impl IntoIterator<Item = &'a JSONSchemaProps>) -> Self {
        let env = Arc::new(kubernetes_env());
        let mut programs = HashMap::new();
        let mut sources = Vec::new();
        for schema in schemas {
            collect_sources(schema, &mut sources);
        }
        for source in sources {
            programs
                .entry(source.clone())
                .or_insert_with(|| env.compile(&source).map_err(|e| e.to_string()));
        }
        Self { env, programs }
    }

    /// Every compiled program with its source, for the tests that check what the rules call.
    pub fn programs(&self) -> impl Iterator<Item = (&str, &Result<Program, String>)> {
        self.programs.iter().map(|(s, p)| (s.as_str(), p))
    }

    /// `value` (whose schema is `schema`) as the rules at its node see `self`; converted once
    /// per node, however many rules sit there.
    pub fn bind(value: &serde_json::Value, schema: &JSONSchemaProps) -> Value {
        to_cel(value, Some(schema))
    }

    /// Runs `rule` with `self` bound to `bound` (from [`Rules::bind`]).
    pub fn check(&self, rule: &ValidationRule, bound: &Value) -> Outcome {
        let program = match self.program(&rule.rule) {
            Ok(program) => program,
            Err(error) => return Outcome::Fail(format!("rule does not compile: {error}")),
        };
        if program.references().has_variable("oldSelf") {
            return Outcome::Transition;
        }
        let mut context = Context::with_env(self.env.clone());
        context.add_variable_from_value("self", bound.clone());
        match program.execute(&context) {
            Ok(Value::Bool(true)) => Outcome::Pass,
            Ok(Value::Bool(false)) => Outcome::Fail(self.message(rule, &context)),
            Ok(other) => Outcome::Fail(format!(
                "rule evaluated to {:?}, not a bool: {}",
                other.type_of(),
                rule.rule
            )),
            Err(error) => Outcome::Fail(format!("{}: {error}", self.message(rule, &context))),
        }
    }

    fn program(&self, source: &str) -> Result<&Program, &str> {
        match self.programs.get(source) {
            Some(Ok(program)) => Ok(program),
            Some(Err(error)) => Err(error),
            None => Err("the rule was not compiled with its schema"),
        }
    }

    /// The API server's message for a failed rule: `messageExpression` when it yields a
    /// non-empty string, else `message`, else the rule itself.
    fn message(&self, rule: &ValidationRule, context: &Context) -> String {
        if let Some(expression) = &rule.message_expression
            && let Ok(program) = self.program(expression)
            && let Ok(Value::String(text)) = program.execute(context)
            && !text.trim().is_empty()
        {
            return text.to_string();
        }
        match &rule.message {
            Some(message) if !message.is_empty() => message.clone(),
            _ => format!("failed rule: {}", rule.rule),
        }
    }
}

fn collect_sources(schema: &JSONSchemaProps, out: &mut Vec<String>) {
    for rule in schema.x_kubernetes_validations.iter().flatten() {
        out.push(rule.rule.clone());
        out.extend(rule.message_expression.clone());
    }
    for child in schema.properties.iter().flat_map(|p| p.values()) {
        collect_sources(child, out);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
        collect_sources(items, out);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = &schema.additional_properties {
        collect_sources(extra, out);
    }
}

/// The crate's standard library plus the Kubernetes functions the rules use.
fn kubernetes_env() -> Env {
    let mut env = Env::stdlib();
    env.add_overload(
        "isURL",
        "k8s_is_url_string",
        vec![types::STRING_TYPE],
        |args| {
            let text = args
                .first()
                .and_then(|a| a.downcast_ref::<CelString>())
                .ok_or_else(|| ExecutionError::function_error("isURL", "needs a string"))?;
            Ok(CowVal::owned(CelBool::from(go_url::is_request_uri(
                text.inner(),
            ))))
        },
    )
    .expect("isURL is declared once");
    // `s.lowerAscii()`: ASCII letters lowered, every other character kept (cel-go ext/strings).
    env.add_member_overload(
        "lowerAscii",
        "string_lower_ascii",
        types::STRING_TYPE,
        vec![],
        |args| {
            let text = args
                .first()
                .and_then(|a| a.downcast_ref::<CelString>())
                .ok_or_else(|| ExecutionError::function_error("lowerAscii", "needs a string"))?;
            Ok(CowVal::owned(CelString::from(
                text.inner().to_ascii_lowercase(),
            )))
        },
    )
    .expect("lowerAscii is declared once");
    env
}

/// A JSON value as CEL sees it under Kubernetes' mapping: integers are `int`, a `number`
/// field is `double` even when written without a fraction, objects and maps are maps.
fn to_cel(value: &serde_json::Value, schema: Option<&JSONSchemaProps>) -> Value {
    use serde_json::Value as Json;
    let is_number = schema.and_then(|s| s.type_.as_deref()) == Some("number");
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) if is_number => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Array(items) => {
            let item_schema = match schema.and_then(|s| s.items.as_ref()) {
                Some(JSONSchemaPropsOrArray::Schema(item)) => Some(item.as_ref()),
                _ => None,
            };
            Value::List(Arc::new(
                items.iter().map(|i| to_cel(i, item_schema)).collect(),
            ))
        }
        Json::Object(fields) => {
            let map = fields
                .iter()
                .map(|(k, v)| {
                    let field_schema = schema.and_then(|s| {
                        s.properties.as_ref().and_then(|p| p.get(k)).or(
                            match &s.additional_properties {
                                Some(JSONSchemaPropsOrBool::Schema(extra)) => Some(extra.as_ref()),
                                _ => None,
                            },
                        )
                    });
                    (Key::String(Arc::new(k.clone())), to_cel(v, field_schema))
                })
                .collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}
