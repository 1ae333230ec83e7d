//! The API server refuses bad Signet objects at apply time, naming the field, and accepts
//! the near misses. The cases are data: tests/tests/data/validation-cases.yaml.

use std::collections::BTreeMap;

use kube::api::PostParams;
use serde::Deserialize;
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

#[tokio::test]
async fn api_server_refuses_each_broken_rule_and_accepts_near_misses() -> anyhow::Result<()> {
    let table: Table = serde_norway::from_str(include_str!("data/validation-cases.yaml"))?;
    assert!(table.cases.len() >= 30, "the table keeps at least 30 cases");
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "api-validation").await?;

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
        let api = signet_api(&client, &ns.name, &case.kind);
        let result = api
            .create(
                &PostParams::default(),
                &signet_object(&case.kind, &format!("case-{i}"), spec),
            )
            .await;
        match (result, &case.refuse) {
            (Ok(_), None) => {}
            (Ok(_), Some(field)) => failures.push(format!(
                "{:?}: accepted, but {field} should be refused",
                case.name
            )),
            (Err(error), Some(field)) => match refused_fields(&error) {
                Some((422, fields)) if fields.contains(field) => {}
                _ => failures.push(format!(
                    "{:?}: refused, but not on {field}: {error}",
                    case.name
                )),
            },
            (Err(error), None) => {
                failures.push(format!("{:?}: should be accepted: {error}", case.name))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        table.cases.len(),
        failures.join("\n")
    );
    Ok(())
}
