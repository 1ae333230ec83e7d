use std::sync::LazyLock;

use super::request::*;
use crate::form::Form;
use crate::loaded::Loaded;

static LOADED: LazyLock<Loaded> = LazyLock::new(|| crate::testing::examples("request"));

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn form(pairs: &[(&str, &str)]) -> Form {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    Form::parse(body.as_bytes()).unwrap()
}

fn web(extra: &[(&str, &str)]) -> Form {
    let mut pairs = vec![
        ("client_id", "default.web-app"),
        ("redirect_uri", "https://app.example.com/callback"),
        ("response_type", "code"),
        ("scope", "openid profile"),
        ("state", "s1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        pairs.push((k, v));
    }
    form(&pairs)
}

fn check(form: &Form) -> Result<AuthorizationRequest, Rejected> {
    validate(&LOADED, form, |_| None)
}

fn error_of(result: Result<AuthorizationRequest, Rejected>) -> &'static str {
    match result {
        Err(Rejected::Redirect(e)) => {
            assert_eq!(e.state.as_deref(), Some("s1"), "state echoed");
            e.error
        }
        other => panic!("expected an error redirect, got {other:?}"),
    }
}

#[test]
fn a_good_request_parses_and_unknown_parameters_are_ignored() {
    let request = check(&web(&[
        ("ui_locales", "de"),
        ("acr_values", "x"),
        ("foo", "bar"),
        ("login_hint", "alice"),
    ]))
    .unwrap();
    assert_eq!(request.scopes, ["openid", "profile"]);
    assert_eq!(request.code_challenge.as_deref(), Some(CHALLENGE));
    assert_eq!(request.login_hint.as_deref(), Some("alice"));
}

#[test]
fn untrusted_redirects_get_a_page_never_a_redirect() {
    for uri in [
        "https://evil.example/callback",
        "https://app.example.com/callback/extra",
        "https://app.example.com/callback/",
        "https://APP.example.com/callback",
        "https://app.example.com/Callback",
        "https://app.example.com@evil.example/callback",
        "https://app.example.com%2Fcallback",
        "https://app.example.com/callback?x=1",
        "https://app.example.com/callback#x",
        "https://app.example.com/%63allback",
        "http://127.0.0.1:3001/callback",
    ] {
        assert!(
            matches!(
                check(&web(&[("redirect_uri", uri)])),
                Err(Rejected::Page(_))
            ),
            "{uri}"
        );
    }
    assert!(matches!(
        check(&web(&[("client_id", "default.nobody")])),
        Err(Rejected::Page(_))
    ));
    assert!(matches!(
        check(&web(&[("redirect_uri", "")])),
        Err(Rejected::Page(_))
    ));
}

#[test]
fn native_clients_may_use_any_loopback_port() {
    let cli = &LOADED.clients["default.cli"];
    assert!(redirect_allowed(cli, "http://127.0.0.1:49152/callback"));
    assert!(redirect_allowed(cli, "http://127.0.0.1/callback"));
    assert!(redirect_allowed(cli, "com.example.cli:/callback"));
    for bad in [
        "http://127.0.0.1:49152/callback2",
        "http://127.0.0.1:49152/Callback",
        "http://127.0.0.1.evil.example:80/callback",
        "http://127.0.0.1:/callback",
        "http://localhost:49152/callback",
        "https://127.0.0.1:49152/callback",
        "http://127.0.0.1:4915299/callback",
    ] {
        assert!(!redirect_allowed(cli, bad), "{bad}");
    }
    // Confidential clients get exact matching only.
    let web = &LOADED.clients["default.web-app"];
    assert!(redirect_allowed(web, "http://127.0.0.1:3000/callback"));
    assert!(!redirect_allowed(web, "http://127.0.0.1:3001/callback"));
}

#[test]
fn errors_after_the_redirect_check_go_to_the_client() {
    assert_eq!(
        error_of(check(&web(&[("response_type", "")]))),
        "invalid_request"
    );
    assert_eq!(
        error_of(check(&web(&[("response_type", "token")]))),
        "unsupported_response_type"
    );
    assert_eq!(
        error_of(check(&web(&[("response_type", "code id_token")]))),
        "unsupported_response_type"
    );
    assert_eq!(
        error_of(check(&web(&[("scope", "openid admin")]))),
        "invalid_scope"
    );
    assert_eq!(error_of(check(&web(&[("scope", "")]))), "invalid_scope");
    assert_eq!(
        error_of(check(&web(&[("prompt", "none login")]))),
        "invalid_request"
    );
    assert_eq!(
        error_of(check(&web(&[("max_age", "-1")]))),
        "invalid_request"
    );
    assert_eq!(
        error_of(check(&web(&[("id_token_hint", "garbage")]))),
        "invalid_request"
    );
    assert_eq!(
        error_of(check(&web(&[("response_mode", "fragment")]))),
        "invalid_request"
    );
    assert_eq!(
        error_of(check(&web(&[("request", "eyJ...")]))),
        "request_not_supported"
    );
}

#[test]
fn pkce_is_s256_only() {
    assert_eq!(
        error_of(check(&web(&[("code_challenge_method", "plain")]))),
        "invalid_request"
    );
    assert_eq!(
        error_of(check(&web(&[("code_challenge_method", "")]))),
        "invalid_request",
        "absent method means plain"
    );
    assert_eq!(
        error_of(check(&web(&[("code_challenge", "short")]))),
        "invalid_request"
    );
    let spa = form(&[
        ("client_id", "default.spa"),
        ("redirect_uri", "http://127.0.0.1:5173/callback"),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s1"),
    ]);
    assert_eq!(
        error_of(check(&spa)),
        "invalid_request",
        "public clients need PKCE"
    );
    // The web app requires PKCE by default too.
    assert_eq!(
        error_of(check(&web(&[
            ("code_challenge", ""),
            ("code_challenge_method", "")
        ]))),
        "invalid_request"
    );
}

#[test]
fn the_verifier_of_rfc_7636_appendix_b_matches() {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    assert!(pkce_matches(CHALLENGE, verifier));
    assert!(!pkce_matches(
        CHALLENGE,
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"
    ));
    assert!(!pkce_matches(CHALLENGE, "short"));
    assert!(
        !pkce_matches(CHALLENGE, CHALLENGE),
        "the challenge is not a verifier"
    );
}

#[test]
fn offline_access_is_kept_for_refresh_clients_and_duplicates_dropped() {
    let request = check(&web(&[("scope", "offline_access openid openid")])).unwrap();
    assert_eq!(request.scopes, ["offline_access", "openid"]);
}
