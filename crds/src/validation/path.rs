//! Field paths in the API server's form (`spec.redirectUris[0]`, `spec.claims[team]`), and
//! the relative `fieldPath` of a CEL rule appended to one.

use std::fmt;

/// Where a value sits in an object, written as the API server writes `details.causes[].field`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    /// The path of a property of the value at `self`.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    /// The path of list item `index`.
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// The path of map entry `key` (a property of an object with `additionalProperties`).
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    /// `self` followed by a rule's `fieldPath` (`.a.b`, `.m['k']`, `.l[0]`), as the API
    /// server names the field of a failed rule. `None` when `field_path` is not one of those
    /// forms; the API server refuses such a CRD, so the rule's own node is named instead.
    pub fn join_field_path(&self, field_path: &str) -> Option<Self> {
        let mut path = self.clone();
        let mut rest = field_path;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let (name, tail) = after.split_at(end);
                if name.is_empty() {
                    return None;
                }
                path = path.child(name);
                rest = tail;
            } else if let Some(after) = rest.strip_prefix("['") {
                let end = after.find("']")?;
                path = path.key(&after[..end]);
                rest = &after[end + 2..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']')?;
                path = path.index(after[..end].parse().ok()?);
                rest = &after[end + 1..];
            } else {
                return None;
            }
        }
        Some(path)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::FieldPath;

    #[test]
    fn paths_read_as_the_api_server_writes_them() {
        let spec = FieldPath::default().child("spec");
        assert_eq!(
            spec.child("redirectUris").index(0).to_string(),
            "spec.redirectUris[0]"
        );
        assert_eq!(
            spec.child("claims").key("team").to_string(),
            "spec.claims[team]"
        );
        let join = |fp: &str| spec.join_field_path(fp).map(|p| p.to_string());
        assert_eq!(
            join(".tokenEndpointAuthMethod").as_deref(),
            Some("spec.tokenEndpointAuthMethod")
        );
        assert_eq!(join(".a.b").as_deref(), Some("spec.a.b"));
        assert_eq!(join(".claims['x.y']").as_deref(), Some("spec.claims[x.y]"));
        assert_eq!(join(".list[2]").as_deref(), Some("spec.list[2]"));
        assert_eq!(join("").as_deref(), Some("spec"));
        assert_eq!(join("a"), None);
        assert_eq!(join(".."), None);
    }
}
