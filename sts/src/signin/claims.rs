//! A person's claims, released by scope (OIDC Core §5.4; `groups` is Signet's own scope).

use serde_json::{Map, Value, json};

use super::users::User;

/// The claims of `user` named in ApiScopes' `userClaims` (`names`), for their access tokens.
pub fn for_apis<'a>(
    user: &User,
    names: impl IntoIterator<Item = &'a String>,
) -> Map<String, Value> {
    let all = by_scope(user, &["profile".into(), "email".into(), "groups".into()]);
    names
        .into_iter()
        .filter_map(|name| Some((name.clone(), all.get(name)?.clone())))
        .collect()
}

/// The claims of `user` that `scopes` release, without `sub`.
pub fn by_scope(user: &User, scopes: &[String]) -> Map<String, Value> {
    let mut claims = Map::new();
    let has = |s: &str| scopes.iter().any(|x| x == s);
    if has("profile") {
        claims.insert("preferred_username".into(), json!(user.username));
        if let Some(name) = &user.name {
            claims.insert("name".into(), json!(name));
        }
    }
    if has("email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), json!(email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
    if has("groups") {
        claims.insert("groups".into(), json!(user.groups));
    }
    claims
}

/// Every claim name this STS can release.
pub const SUPPORTED: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "azp",
    "name",
    "preferred_username",
    "email",
    "email_verified",
    "groups",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_follow_the_scopes() {
        let user = User {
            username: "alice".into(),
            password_hash: String::new(),
            sub: "s".into(),
            email: Some("a@example.com".into()),
            email_verified: true,
            name: Some("Alice".into()),
            groups: vec!["dev".into()],
        };
        assert!(by_scope(&user, &["openid".into()]).is_empty());
        let all = by_scope(&user, &["profile".into(), "email".into(), "groups".into()]);
        assert_eq!(
            Value::Object(all),
            json!({"preferred_username": "alice", "name": "Alice", "email": "a@example.com", "email_verified": true, "groups": ["dev"]})
        );
    }
}
