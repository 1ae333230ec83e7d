//! Bad Signet objects are refused at apply time, naming the field, and the near misses are
//! accepted: by the real API server, and by the in-process validator that standalone mode
//! uses, from one table of cases (tests/tests/data/validation-cases.yaml), so the two modes
//! refuse the same inputs.

use std::collections::BTreeMap;

use kube::api::PostParams;
use serde::Deserialize;
use serde_json::json;
use signet_crds::validation::Validator;
use signet_tests::{TestNamespace, merge, refused_fields, shared, signet_api, signet_object};

#[derive(Deserialize)]
struct Table {
    bases: BTreeMap<String, serde_json::Value>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    kind: String,
    name: String,
    #[serde(default)]
    patch: serde_json::Value,
    #[serde(default)]
    accept: bool,
    refuse: Option<String>,
}

/// What a validator said about one case.
enum Outcome {
    Accepted,
    /// Refused, naming these fields; `detail` is the whole answer, for the failure message.
    Refused {
        fields: Vec<String>,
        detail: String,
    },
}

impl Table {
    fn load() -> Self {
        let table: Table = serde_norway::from_str(include_str!("data/validation-cases.yaml"))
            .expect("the table parses");
        assert!(table.cases.len() >= 30, "the table keeps at least 30 cases");
        for case in &table.cases {
            assert!(
                case.accept != case.refuse.is_some(),
                "case {:?} must either accept or refuse",
                case.name
            );
        }
        table
    }

    /// The spec of `case`: its kind's base with the case's merge patch.
    fn spec(&self, case: &Case) -> serde_json::Value {
        let mut spec = self.bases[&case.kind].clone();
        if !case.patch.is_null() {
            merge(&mut spec, &case.patch);
        }
        spec
    }

    /// Fails with every case whose outcome is not what the table says.
    fn judge(&self, outcomes: impl IntoIterator<Item = Outcome>) {
        let failures: Vec<String> = self
            .cases
            .iter()
            .zip(outcomes)
            .filter_map(|(case, outcome)| match (outcome, &case.refuse) {
                (Outcome::Accepted, None) => None,
                (Outcome::Accepted, Some(field)) => Some(format!(
                    "{:?}: accepted, but {field} should be refused",
                    case.name
                )),
                (Outcome::Refused { fields, .. }, Some(field)) if fields.contains(field) => None,
                (Outcome::Refused { detail, .. }, Some(field)) => Some(format!(
                    "{:?}: refused, but not on {field}: {detail}",
                    case.name
                )),
                (Outcome::Refused { detail, .. }, None) => {
                    Some(format!("{:?}: should be accepted: {detail}", case.name))
                }
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} cases failed:\n{}",
            failures.len(),
            self.cases.len(),
            failures.join("\n")
        );
    }
}

#[tokio::test]
async fn api_server_refuses_each_broken_rule_and_accepts_near_misses() -> anyhow::Result<()> {
    let table = Table::load();
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "api-validation").await?;

    let mut outcomes = Vec::new();
    for (i, case) in table.cases.iter().enumerate() {
        let object = signet_object(&case.kind, &format!("case-{i}"), table.spec(case));
        let result = signet_api(&client, &ns.name, &case.kind)
            .create(&PostParams::default(), &object)
            .await;
        outcomes.push(match result {
            Ok(_) => Outcome::Accepted,
            Err(error) => Outcome::Refused {
                fields: match refused_fields(&error) {
                    Some((422, fields)) => fields,
                    _ => Vec::new(),
                },
                detail: error.to_string(),
            },
        });
    }
    table.judge(outcomes);
    Ok(())
}

#[test]
fn in_process_validation_refuses_and_accepts_what_the_api_server_does() {
    let table = Table::load();
    let validator = Validator::new();
    let outcomes = table.cases.iter().enumerate().map(|(i, case)| {
        let mut object = json!({
            "apiVersion": "signet.dev/v1alpha1",
            "kind": case.kind,
            "metadata": {"name": format!("case-{i}"), "namespace": "validation"},
            "spec": table.spec(case),
        });
        let violations = validator.admit(&mut object);
        if violations.is_empty() {
            Outcome::Accepted
        } else {
            Outcome::Refused {
                fields: violations.iter().map(|v| v.field.clone()).collect(),
                detail: format!("{violations:?}"),
            }
        }
    });
    table.judge(outcomes.collect::<Vec<_>>());
}
