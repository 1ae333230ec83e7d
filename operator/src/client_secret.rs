//! The Secret that delivers a confidential client's credentials to its app: what to write,
//! decided purely from the client, the current Secret (if any) and `now`.

use std::collections::BTreeMap;

use signet_crds::compile::{CLIENT_SECRET_KEY, PREVIOUS_SECRET_EXPIRES, PREVIOUS_SECRET_KEY};

/// Annotation on an OidcClient that asks for a new secret; any new value rotates once.
pub const ROTATE_ANNOTATION: &str = "signet.dev/rotate-secret";
/// Annotation on the client Secret: the rotate request it already honoured.
pub const ROTATED_FOR: &str = "signet.dev/rotated-for";

/// What the Secret should hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contents {
    /// Data keys and values.
    pub data: BTreeMap<String, Vec<u8>>,
    /// Annotations the operator manages.
    pub annotations: BTreeMap<String, String>,
}

/// The facts the plan needs.
pub struct Want<'a> {
    /// The client id in effect.
    pub client_id: &'a str,
    /// The issuer URL.
    pub issuer: &'a str,
    /// The value of the client's rotate annotation, if set.
    pub rotate_request: Option<&'a str>,
    /// How long a rotated-out secret keeps working.
    pub overlap_secs: i64,
    /// Unix seconds.
    pub now: i64,
}

/// The contents to write, or `None` when `current` is already right. `fresh` supplies new
/// secrets (random in production, fixed in tests). A secret is never regenerated except on
/// a new rotate request.
pub fn plan(
    want: &Want<'_>,
    current: Option<&Contents>,
    fresh: impl FnOnce() -> String,
) -> Option<Contents> {
    let mut next = current.cloned().unwrap_or_default();
    let mut set = |key: &str, value: &[u8]| next.data.insert(key.to_owned(), value.to_vec());
    set("client_id", want.client_id.as_bytes());
    set("issuer", want.issuer.as_bytes());

    let honoured = current
        .and_then(|c| c.annotations.get(ROTATED_FOR))
        .map(String::as_str);
    match current.and_then(|c| c.data.get(CLIENT_SECRET_KEY)) {
        None => {
            next.data
                .insert(CLIENT_SECRET_KEY.to_owned(), fresh().into_bytes());
            // A rotate annotation present at creation is already satisfied by the new secret.
            if let Some(request) = want.rotate_request {
                next.annotations
                    .insert(ROTATED_FOR.to_owned(), request.to_owned());
            }
        }
        Some(old) if want.rotate_request.is_some() && want.rotate_request != honoured => {
            let old = old.clone();
            next.data.insert(PREVIOUS_SECRET_KEY.to_owned(), old);
            next.data
                .insert(CLIENT_SECRET_KEY.to_owned(), fresh().into_bytes());
            next.annotations.insert(
                PREVIOUS_SECRET_EXPIRES.to_owned(),
                (want.now + want.overlap_secs).to_string(),
            );
            next.annotations.insert(
                ROTATED_FOR.to_owned(),
                want.rotate_request.unwrap_or_default().to_owned(),
            );
        }
        Some(_) => {}
    }

    // Drop a previous secret whose overlap has ended.
    let expired = next
        .annotations
        .get(PREVIOUS_SECRET_EXPIRES)
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|t| t <= want.now);
    if expired {
        next.data.remove(PREVIOUS_SECRET_KEY);
        next.annotations.remove(PREVIOUS_SECRET_EXPIRES);
    }
    (Some(&next) != current).then_some(next)
}

/// When the current previous secret stops working, if one does.
pub fn overlap_end(current: &Contents) -> Option<i64> {
    current
        .annotations
        .get(PREVIOUS_SECRET_EXPIRES)
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(rotate: Option<&str>, now: i64) -> Want<'_> {
        Want {
            client_id: "team-a.app",
            issuer: "https://id.example.com",
            rotate_request: rotate,
            overlap_secs: 100,
            now,
        }
    }

    #[test]
    fn a_new_secret_holds_id_secret_and_issuer() {
        let c = plan(&want(None, 0), None, || "s1".into()).unwrap();
        assert_eq!(c.data["client_id"], b"team-a.app");
        assert_eq!(c.data["client_secret"], b"s1");
        assert_eq!(c.data["issuer"], b"https://id.example.com");
    }

    #[test]
    fn an_existing_secret_is_never_regenerated() {
        let c = plan(&want(None, 0), None, || "s1".into()).unwrap();
        assert_eq!(
            plan(&want(None, 50), Some(&c), || unreachable!("no new secret")),
            None
        );
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_the_overlap_then_drops_it() {
        let c = plan(&want(None, 0), None, || "s1".into()).unwrap();
        let rotated = plan(&want(Some("r1"), 10), Some(&c), || "s2".into()).unwrap();
        assert_eq!(rotated.data["client_secret"], b"s2");
        assert_eq!(rotated.data[PREVIOUS_SECRET_KEY], b"s1");
        assert_eq!(overlap_end(&rotated), Some(110));
        // The same request again does nothing.
        assert_eq!(
            plan(&want(Some("r1"), 20), Some(&rotated), || unreachable!()),
            None
        );
        // After the overlap the previous secret goes.
        let cleaned = plan(&want(Some("r1"), 110), Some(&rotated), || unreachable!()).unwrap();
        assert!(!cleaned.data.contains_key(PREVIOUS_SECRET_KEY));
        assert_eq!(cleaned.data["client_secret"], b"s2");
    }

    #[test]
    fn a_changed_issuer_is_written_without_touching_the_secret() {
        let c = plan(&want(None, 0), None, || "s1".into()).unwrap();
        let mut w = want(None, 0);
        w.issuer = "https://new.example.com";
        let next = plan(&w, Some(&c), || unreachable!()).unwrap();
        assert_eq!(next.data["issuer"], b"https://new.example.com");
        assert_eq!(next.data["client_secret"], b"s1");
    }
}
