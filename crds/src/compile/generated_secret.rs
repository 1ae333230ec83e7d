//! The Secret that delivers a confidential client's credentials to its app: what to write,
//! decided purely from the client, the current Secret (if any) and `now`. The compiler plans
//! it (when its inputs carry a source of new secrets) and compiles as if it were written, so
//! the operator writes it and the snapshot in one pass.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::ResourceExt;

use super::{
    CLIENT_SECRET_KEY, Inputs, ObjectKey, Output, PREVIOUS_SECRET_EXPIRES, PREVIOUS_SECRET_KEY,
    Report, SecretData,
};
use crate::v1alpha1::{OidcClient, TokenService};

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

/// Why a generated Secret is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// It did not exist.
    Created,
    /// It gets a new secret; the previous one works until the overlap ends.
    Rotated,
    /// Other contents changed (the issuer, an expired previous secret dropped).
    Updated,
}

/// A generated client Secret to write, as the compiler planned it.
#[derive(Clone)]
pub struct SecretWrite {
    /// The OidcClient it belongs to (its controller owner).
    pub client: Arc<OidcClient>,
    /// The Secret, in the client's namespace.
    pub secret: ObjectKey,
    /// Why it is written.
    pub change: Change,
    /// Its data and annotations: those it has, with the operator's changes.
    pub contents: Contents,
}

impl std::fmt::Debug for SecretWrite {
    // The contents hold a plaintext secret: only the names of their keys are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretWrite")
            .field("client", &ObjectKey::of(&*self.client))
            .field("secret", &self.secret)
            .field("change", &self.change)
            .field("data_keys", &self.contents.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Plans `client`'s generated Secret `secret_key` when it may be written: the client is
/// otherwise fine (no problem so far keeps it out: never a Secret carrying an id that belongs
/// to someone else), and the Secret is absent, or this client's with a secret in it (someone
/// else's is a `SecretConflict`, never touched). Records the write and the end of a running
/// overlap in `out`; returns what the Secret will hold when that differs from what it holds.
pub(super) fn plan_for_client(
    inputs: &Inputs,
    ts: &TokenService,
    client: &Arc<OidcClient>,
    report: &Report,
    secret_key: &ObjectKey,
    fresh: fn() -> String,
    out: &mut Output,
) -> Option<SecretData> {
    let client_id = report.client_id.as_deref()?;
    if report.problems.iter().any(|p| p.excluded) {
        return None;
    }
    let current = inputs.secrets.get(secret_key);
    let writable = current.is_none_or(|c| {
        c.controller_uid.is_some()
            && c.controller_uid == client.uid()
            && c.data.contains_key(CLIENT_SECRET_KEY)
    });
    if !writable {
        return None;
    }
    let current_contents = current.map(|c| Contents {
        data: c.data.clone(),
        annotations: c.annotations.clone(),
    });
    let overlap = client
        .spec
        .secret
        .as_ref()
        .and_then(|s| s.rotation_overlap.as_ref())
        .map_or(86_400, |d| d.get().as_secs() as i64);
    let want = Want {
        client_id,
        issuer: &ts.spec.issuer,
        rotate_request: client
            .annotations()
            .get(ROTATE_ANNOTATION)
            .map(String::as_str),
        overlap_secs: overlap,
        now: inputs.now,
    };
    let planned = plan(&want, current_contents.as_ref(), fresh);
    if let Some(end) = planned
        .as_ref()
        .or(current_contents.as_ref())
        .and_then(overlap_end)
        .filter(|end| *end > inputs.now)
    {
        out.secret_overlap_ends = Some(out.secret_overlap_ends.map_or(end, |t| t.min(end)));
    }
    let contents = planned?;
    let change = match current {
        None => Change::Created,
        Some(c) if c.data.get(CLIENT_SECRET_KEY) != contents.data.get(CLIENT_SECRET_KEY) => {
            Change::Rotated
        }
        Some(_) => Change::Updated,
    };
    let effective = SecretData {
        data: contents.data.clone(),
        annotations: contents.annotations.clone(),
        controller_uid: client.uid(),
    };
    out.client_secrets.insert(
        ObjectKey::of(&**client),
        SecretWrite {
            client: client.clone(),
            secret: secret_key.clone(),
            change,
            contents,
        },
    );
    Some(effective)
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
