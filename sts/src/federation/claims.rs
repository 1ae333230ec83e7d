//! An upstream person mapped to Signet's claims: the mapped claim names, a stable subject of
//! our own, and the provider's admission rules (email domains, groups).

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use signet_crds::snapshot::OidcUpstream;

use crate::signin::users::User;

/// Why an upstream person is not admitted (shown to the person).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The upstream ID token lacks the subject claim.
    #[error("the identity provider did not say who you are")]
    NoSubject,
    /// Email domain not allowed.
    #[error("accounts of your email domain may not sign in here")]
    Domain,
    /// Not in an allowed group.
    #[error("your account is not in a group that may sign in here")]
    Group,
}

/// Our subject for an upstream person: the same for the same upstream issuer and subject,
/// whatever the IdentityProvider object is called, and never equal to a subject from another
/// upstream.
pub fn stable_sub(issuer: &str, upstream_sub: &str) -> String {
    let digest = Sha256::digest(format!("{issuer}\u{0}{upstream_sub}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..20])
}

fn string(claims: &Value, name: &str) -> Option<String> {
    match &claims[name] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Maps the upstream ID token's claims (merged with userinfo) to a person.
pub fn map(upstream: &OidcUpstream, claims: &Value) -> Result<User, Refused> {
    let names = &upstream.claim_mappings;
    let upstream_sub =
        string(claims, names.sub.as_deref().unwrap_or("sub")).ok_or(Refused::NoSubject)?;
    let email = string(claims, names.email.as_deref().unwrap_or("email"));
    let email_verified = match &claims[names.email_verified.as_deref().unwrap_or("email_verified")]
    {
        Value::Bool(b) => *b,
        Value::String(s) => s == "true",
        _ => false,
    };
    let groups: Vec<String> = match &claims[names.groups.as_deref().unwrap_or("groups")] {
        Value::Array(items) => items
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    };
    let groups = admit(upstream, email.as_deref(), email_verified, groups)?;
    let username = string(claims, "preferred_username")
        .or_else(|| email.clone())
        .unwrap_or_else(|| upstream_sub.clone());
    Ok(User {
        username,
        password_hash: String::new(),
        sub: stable_sub(&upstream.issuer, &upstream_sub),
        email,
        email_verified,
        name: string(claims, names.name.as_deref().unwrap_or("name")),
        groups,
    })
}

/// The provider's rules on a person: a verified email address in an allowed domain, and
/// membership of an allowed group. Returns the groups the provider lets through.
fn admit(
    upstream: &OidcUpstream,
    email: Option<&str>,
    email_verified: bool,
    groups: Vec<String>,
) -> Result<Vec<String>, Refused> {
    if !upstream.allowed_email_domains.is_empty() {
        // Only a verified address proves the domain.
        let domain = email
            .filter(|_| email_verified)
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, d)| d.to_ascii_lowercase());
        if !domain.is_some_and(|d| {
            upstream
                .allowed_email_domains
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&d))
        }) {
            return Err(Refused::Domain);
        }
    }
    if upstream.allowed_groups.is_empty() {
        return Ok(groups);
    }
    let kept: Vec<String> = groups
        .into_iter()
        .filter(|g| upstream.allowed_groups.contains(g))
        .collect();
    if kept.is_empty() {
        return Err(Refused::Group);
    }
    Ok(kept)
}

/// Whether a person mapped at an earlier sign-in still passes the provider's rules as they
/// are now (the rules may have changed since).
pub fn still_admitted(upstream: &OidcUpstream, person: &User) -> Result<(), Refused> {
    admit(
        upstream,
        person.email.as_deref(),
        person.email_verified,
        person.groups.clone(),
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::upstream;

    #[test]
    fn claims_map_and_the_rules_admit_or_refuse() {
        let claims = json!({"sub": "u1", "email": "bob@Example.com", "email_verified": true, "name": "Bob", "groups": ["dev", "ops"]});
        let bob = map(&upstream(&["example.com"], &[]), &claims).unwrap();
        assert_eq!(bob.sub, stable_sub("https://sso.example.com", "u1"));
        assert_eq!(
            (
                bob.email.as_deref(),
                bob.email_verified,
                bob.name.as_deref()
            ),
            (Some("bob@Example.com"), true, Some("Bob"))
        );
        assert_eq!(bob.groups, ["dev", "ops"]);
        assert_eq!(
            map(&upstream(&["other.com"], &[]), &claims),
            Err(Refused::Domain)
        );
        let unverified = json!({"sub": "u1", "email": "bob@example.com", "email_verified": false});
        assert_eq!(
            map(&upstream(&["example.com"], &[]), &unverified),
            Err(Refused::Domain)
        );
        assert_eq!(
            map(&upstream(&[], &["ops"]), &claims).unwrap().groups,
            ["ops"]
        );
        assert_eq!(
            map(&upstream(&[], &["admins"]), &claims),
            Err(Refused::Group)
        );
        assert_eq!(
            map(&upstream(&[], &[]), &json!({"email": "x"})),
            Err(Refused::NoSubject)
        );
        let mut renamed = upstream(&[], &[]);
        renamed.claim_mappings.sub = Some("oid".into());
        renamed.claim_mappings.groups = Some("roles".into());
        let mapped = map(&renamed, &json!({"oid": "o-7", "roles": "admin"})).unwrap();
        assert_eq!(
            (mapped.sub, mapped.groups),
            (
                stable_sub("https://sso.example.com", "o-7"),
                vec!["admin".to_owned()]
            )
        );
    }

    #[test]
    fn subjects_are_stable_and_distinct_per_upstream() {
        assert_eq!(stable_sub("https://a", "1"), stable_sub("https://a", "1"));
        assert_ne!(stable_sub("https://a", "1"), stable_sub("https://b", "1"));
        assert_ne!(
            stable_sub("https://a1", ""),
            stable_sub("https://a", "1"),
            "no ambiguity"
        );
    }
}
