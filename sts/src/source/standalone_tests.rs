//! Standalone admits objects as the API server would: a refused object is left out and named
//! with its field, the others still compile; a refused TokenService refuses the folder.

use std::path::{Path, PathBuf};

use super::standalone::{Error, compile_dir};

/// A fresh folder holding the example manifests plus `extra`, and a state folder beside it.
fn manifests(test: &str, extra: &str) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("signet-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(dir.join("extra.yaml"), extra).unwrap();
    (dir, root.join("state"))
}

#[test]
fn a_refused_client_is_left_out_and_named_while_the_others_compile() {
    let (dir, state) = manifests(
        "standalone-refused-client",
        "apiVersion: signet.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: no-auth, namespace: team-a}\n\
         spec: {grantTypes: [client_credentials], tokenEndpointAuthMethod: none, typo: 1}\n",
    );
    let compiled = compile_dir(&dir, &state, None).unwrap();
    let ids: Vec<&str> = compiled
        .snapshot
        .clients
        .iter()
        .map(|c| c.client_id.as_str())
        .collect();
    assert!(!ids.contains(&"team-a.no-auth"), "{ids:?}");
    assert!(ids.contains(&"default.orders-worker"), "{ids:?}");
    let [refused] = compiled.refused.as_slice() else {
        panic!("{:?}", compiled.refused)
    };
    assert_eq!(
        (refused.kind.as_str(), refused.object.as_str()),
        ("OidcClient", "team-a/no-auth")
    );
    assert!(refused.file.ends_with("extra.yaml"));
    let fields: Vec<&str> = refused
        .violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    // Strict field validation: the unknown field is refused, and (as in the API server) the
    // CEL rules wait until it is fixed.
    assert!(fields.contains(&"spec.typo"), "{fields:?}");

    let (dir, state) = manifests(
        "standalone-refused-client-rule",
        "apiVersion: signet.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: no-auth}\n\
         spec: {grantTypes: [client_credentials], tokenEndpointAuthMethod: none}\n",
    );
    let compiled = compile_dir(&dir, &state, None).unwrap();
    let fields: Vec<&str> = compiled.refused[0]
        .violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["spec.tokenEndpointAuthMethod"]);
}

#[test]
fn a_refused_token_service_refuses_the_folder() {
    let (dir, state) = manifests("standalone-refused-ts", "");
    let ts = dir.join("token-service.yaml");
    let text = std::fs::read_to_string(&ts).unwrap();
    let issuer = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("issuer: "))
        .expect("the example names an issuer")
        .to_owned();
    std::fs::write(&ts, text.replace(&issuer, "http://id.example.com")).unwrap();
    match compile_dir(&dir, &state, None) {
        Err(error @ Error::InvalidTokenService(_)) => {
            assert!(error.to_string().contains("spec.issuer"), "{error}")
        }
        other => panic!("{:?}", other.map(|c| c.snapshot.issuer)),
    }
}

#[test]
fn the_issuer_flag_is_validated_like_the_field() {
    let (dir, state) = manifests("standalone-issuer-flag", "");
    assert!(compile_dir(&dir, &state, Some("http://127.0.0.1:8080")).is_ok());
    let error = compile_dir(&dir, &state, Some("http://id.example.com"))
        .err()
        .expect("a plain-http issuer on a public host is refused");
    assert!(error.to_string().contains("spec.issuer"), "{error}");
}
