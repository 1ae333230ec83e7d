//! Label selectors (metav1.LabelSelector) evaluated against namespace labels.

use std::collections::BTreeMap;

use crate::v1alpha1::LabelSelector;

/// Whether `selector` selects an object with `labels`. An empty selector selects everything
/// (Kubernetes semantics); an unknown operator selects nothing, so a typo never widens access.
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let expressions_match = selector.match_expressions.iter().flatten().all(|expr| {
        let values = expr.values.as_deref().unwrap_or_default();
        let value = labels.get(&expr.key);
        match expr.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_match && expressions_match
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn empty_selector_selects_everything() {
        assert!(matches(&LabelSelector::default(), &labels(&[])));
    }

    #[test]
    fn match_labels_need_every_pair() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("team", "a"), ("env", "prod")])),
            ..Default::default()
        };
        assert!(matches(
            &sel,
            &labels(&[("team", "a"), ("env", "prod"), ("x", "y")])
        ));
        assert!(!matches(&sel, &labels(&[("team", "a")])));
    }

    #[test]
    fn expressions_follow_kubernetes_operators() {
        let ns = labels(&[("tier", "gold")]);
        assert!(matches(&expr("tier", "In", &["gold", "silver"]), &ns));
        assert!(!matches(&expr("tier", "NotIn", &["gold"]), &ns));
        assert!(matches(&expr("zone", "NotIn", &["a"]), &ns));
        assert!(matches(&expr("tier", "Exists", &[]), &ns));
        assert!(!matches(&expr("tier", "DoesNotExist", &[]), &ns));
        assert!(
            !matches(&expr("tier", "Like", &["gold"]), &ns),
            "unknown operators select nothing"
        );
    }
}
