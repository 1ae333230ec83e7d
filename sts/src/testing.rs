//! Unit-test fixtures: the examples compiled into a serving snapshot.

use crate::loaded::Loaded;

/// The issuer of the fixture.
pub const ISSUER: &str = "http://127.0.0.1:1";

/// `examples/` compiled (keys generated into a temporary state folder named after `test`).
pub fn examples(test: &str) -> Loaded {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let state = std::env::temp_dir().join(format!("signet-unit-{test}-{}", std::process::id()));
    let snapshot = crate::source::standalone::compile_dir(&examples, &state, Some(ISSUER))
        .expect("the examples compile")
        .snapshot;
    Loaded::new(snapshot).expect("the examples load")
}

/// `examples/` with the files of its sub-folders `extra` beside them (as the examples README
/// says to copy them for standalone use), compiled.
pub fn examples_with(test: &str, extra: &[&str]) -> Loaded {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let base = std::env::temp_dir().join(format!("signet-unit-{test}-{}", std::process::id()));
    let (dir, state) = (base.join("manifests"), base.join("state"));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let folders = std::iter::once(examples.clone()).chain(extra.iter().map(|e| examples.join(e)));
    for folder in folders {
        for entry in std::fs::read_dir(&folder).expect("an examples folder") {
            let path = entry.expect("a folder entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&path, dir.join(path.file_name().unwrap())).expect("a copy");
            }
        }
    }
    let snapshot = crate::source::standalone::compile_dir(&dir, &state, Some(ISSUER))
        .expect("the examples compile")
        .snapshot;
    Loaded::new(snapshot).expect("the examples load")
}

/// An upstream OpenID Connect provider at `https://sso.example.com` with these admission
/// rules.
pub fn upstream(domains: &[&str], groups: &[&str]) -> signet_crds::snapshot::OidcUpstream {
    signet_crds::snapshot::OidcUpstream {
        issuer: "https://sso.example.com".into(),
        client_id: "signet".into(),
        client_secret: signet_crds::snapshot::Redacted("s".into()),
        scopes: vec!["openid".into()],
        claim_mappings: Default::default(),
        allowed_email_domains: domains.iter().map(|d| d.to_string()).collect(),
        allowed_groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

/// An unsigned JWT with `claims`: for checks made before any signature is looked at.
pub fn unsigned_jwt(claims: serde_json::Value) -> String {
    use base64::Engine;
    let encode = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    format!(
        "{}.{}.sig",
        encode(&serde_json::json!({"alg": "RS256"})),
        encode(&claims)
    )
}
