//! examples/teams/: the orders team's scope, shared with the shop namespace through
//! `allowedClientNamespaces`, is granted to the shop's client and to no one else. Served
//! standalone from the example files themselves (Namespace labels included).

mod common;

use signet_tests::{http, repo_root};

use common::{client_secret, copy_examples, replica, test_dir};

#[tokio::test]
async fn a_shared_scope_reaches_the_shop_and_no_one_else() -> anyhow::Result<()> {
    let dir = test_dir("examples-teams");
    let manifests = dir.join("manifests");
    copy_examples(&manifests);
    for entry in std::fs::read_dir(repo_root().join("examples/teams"))? {
        let path = entry?.path();
        std::fs::copy(
            &path,
            manifests.join(format!(
                "teams-{}",
                path.file_name().unwrap().to_string_lossy()
            )),
        )?;
    }
    // A third team that lists the scope without being allowed it.
    std::fs::write(
        manifests.join("billing.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: billing, labels: {signet.dev/tenant: \"true\"}}\n---\napiVersion: signet.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: invoicer, namespace: billing}\nspec: {grantTypes: [client_credentials], allowedScopes: [orders.write], tokenEndpointAuthMethod: client_secret_post}\n",
    )?;
    let state = dir.join("state");
    let (_sts, addr) = replica(&manifests, &state, "examples-teams").await?;

    let shop = client_secret(&state, "shop.orders-sync");
    let granted = http::post_form(
        &addr,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "shop.orders-sync"),
            ("client_secret", &shop),
            ("scope", "orders.write"),
        ],
        &[],
    )
    .await?;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(granted.json()["scope"], "orders.write");

    // The default namespace's machine client lists no orders.write; even asking is refused.
    let worker = client_secret(&state, "default.orders-worker");
    let refused = http::post_form(
        &addr,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "default.orders-worker"),
            ("client_secret", &worker),
            ("scope", "orders.write"),
        ],
        &[],
    )
    .await?;
    assert_eq!(refused.json()["error"], "invalid_scope", "{}", refused.body);
    Ok(())
}
