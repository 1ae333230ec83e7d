//! `kubectl explain` (the kubectl built with the control plane) reads every kind and a nested
//! field, with the descriptions from the Rust types.

use signet_tests::shared;

#[tokio::test]
async fn kubectl_explain_describes_every_kind_and_nested_fields() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let cases = [
        ("tokenservice.spec.issuer", "issuer URL"),
        (
            "tokenservice.spec.lifetimes.accessToken",
            "Lifetime of access tokens",
        ),
        ("oidcclient.spec.redirectUris", "matched exactly"),
        ("oidcclient.status.conditions", "condition"),
        (
            "apiscope.spec.allowedClientNamespaces",
            "Namespaces whose clients may use this scope",
        ),
        (
            "identityprovider.spec.oidc.claimMappings.email",
            "email address",
        ),
        ("signingkey.spec.propagationTime", "before it signs"),
        ("signingkey.status.keys.phase", "phase"),
    ];
    for (path, expected) in cases {
        let out = cluster.kubectl().args(["explain", path]).output()?;
        let text = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            out.status.success(),
            "kubectl explain {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(expected),
            "kubectl explain {path} lacks {expected:?}:\n{text}"
        );
    }
    // Short names and the category resolve too.
    for resource in ["tsvc", "oidc", "apiscope", "idp", "sigkey", "signet"] {
        let out = cluster.kubectl().args(["get", resource, "-A"]).output()?;
        assert!(
            out.status.success(),
            "kubectl get {resource}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
