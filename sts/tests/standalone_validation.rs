//! Standalone mode refuses what `kubectl apply` refuses. Three objects that the CRDs' CEL rules
//! forbid, tried as a new user would over HTTP against `signet-sts --manifests`: a
//! confidential client with `tokenEndpointAuthMethod: none`, a public client with the
//! client_credentials grant, and a client whose redirect is plain http on a public host. Each
//! is left out (the log names its field) and the valid examples beside them still serve.

mod common;

use signet_tests::browserless::{CHALLENGE, Person};
use signet_tests::http;

use common::{client_secret, memory_manifests, replica, test_dir};

const ALICE: (&str, &str) = ("alice", "correct horse battery staple");
const PLAIN_HTTP_CALLBACK: &str = "http://app.example/callback";

const REFUSED: &str = r#"
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: no-auth}
spec:
  type: confidential
  grantTypes: [client_credentials]
  allowedScopes: [orders.read]
  tokenEndpointAuthMethod: none
---
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: public-machine}
spec:
  type: public
  grantTypes: [client_credentials]
  allowedScopes: [orders.read]
---
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: plain-http}
spec:
  grantTypes: [authorization_code]
  redirectUris: ["http://app.example/callback"]
  allowedScopes: [openid]
  tokenEndpointAuthMethod: client_secret_basic
  trusted: true
"#;

/// A client_credentials request for the example API that carries no credentials, only a
/// client id.
async fn token_without_credentials(addr: &str, client_id: &str) -> anyhow::Result<http::Response> {
    http::post_form(
        addr,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", "orders.read"),
        ],
        &[],
    )
    .await
}

#[tokio::test]
async fn objects_the_api_server_refuses_are_not_served_standalone() -> anyhow::Result<()> {
    let dir = test_dir("standalone-validation");
    let manifests = dir.join("manifests");
    memory_manifests(&manifests, REFUSED);
    let state = dir.join("state");
    let (sts, addr) = replica(&manifests, &state, "standalone-validation").await?;

    for client_id in ["default.no-auth", "default.public-machine"] {
        let response = token_without_credentials(&addr, client_id).await?;
        assert_eq!(
            response.status, 401,
            "{client_id} got a token with no credentials: {}",
            response.body
        );
        assert_eq!(
            response.json()["error"],
            "invalid_client",
            "{}",
            response.body
        );
    }

    // The code flow never reaches the plain-http redirect: the client does not exist.
    let params = [
        ("client_id", "default.plain-http"),
        ("redirect_uri", PLAIN_HTTP_CALLBACK),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let mut alice = Person::default();
    if let Ok(location) = alice.sign_in(&addr, &params, ALICE.0, ALICE.1).await {
        panic!("a code went to a plain-http redirect: {location}");
    }
    let page = alice.authorize(&addr, &params).await?;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("There is no client"), "{}", page.body);

    // Each refusal names the object and the field, as the API server would.
    let log = sts.output();
    for (object, field) in [
        ("default/no-auth", "spec.tokenEndpointAuthMethod"),
        ("default/public-machine", "spec.grantTypes"),
        ("default/plain-http", "spec.redirectUris[0]"),
    ] {
        assert!(
            log.lines().any(|l| l.contains(object) && l.contains(field)),
            "no refusal of {object} naming {field} in:\n{log}"
        );
    }

    // One tenant's bad object breaks no one else: the example machine client still works.
    let worker = client_secret(&state, "default.orders-worker");
    let granted = http::post_form(
        &addr,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "default.orders-worker"),
            ("client_secret", &worker),
        ],
        &[],
    )
    .await?;
    assert_eq!(granted.status, 200, "{}", granted.body);
    Ok(())
}
