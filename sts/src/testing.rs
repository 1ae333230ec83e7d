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
