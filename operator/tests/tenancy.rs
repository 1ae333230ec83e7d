//! Multi-tenancy: global names go to the older object, a team cannot use another team's API
//! scope unless allowed, a TokenService serves only the namespaces it selects, and an object
//! two TokenServices select must name one. Each case shows its condition and stays out of the
//! snapshot.

mod common;

use std::collections::BTreeMap;

use common::*;
use kube::Client;
use kube::api::PostParams;
use serde_json::json;
use signet_tests::{TestNamespace, label, shared, signet_api, signet_object, wait_for};

/// Labels `namespaces` `signet.dev/tenant-of: <value>` and returns the value: unique to the
/// first namespace, so this test's selectors never match other tests' namespaces.
async fn tenants(client: &Client, namespaces: &[&str]) -> anyhow::Result<String> {
    let tenant = format!("tenant-{}", namespaces[0]);
    for ns in namespaces {
        label(
            client,
            ns,
            BTreeMap::from([("signet.dev/tenant-of", tenant.as_str())]),
        )
        .await?;
    }
    Ok(tenant)
}

async fn create(
    client: &Client,
    ns: &str,
    kind: &str,
    name: &str,
    spec: serde_json::Value,
) -> anyhow::Result<()> {
    signet_api(client, ns, kind)
        .create(&PostParams::default(), &signet_object(kind, name, spec))
        .await?;
    Ok(())
}

#[tokio::test]
async fn tenants_are_kept_apart_with_a_condition_for_each_refusal() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let platform = TestNamespace::create(&client, "tenancy-platform")
        .await?
        .name;
    let team_a = TestNamespace::create(&client, "tenancy-a").await?.name;
    let team_b = TestNamespace::create(&client, "tenancy-b").await?.name;
    let outsider = TestNamespace::create(&client, "tenancy-outsider")
        .await?
        .name;
    let tenant = tenants(&client, &[&team_a, &team_b]).await?;
    let selector = json!({"matchLabels": {"signet.dev/tenant-of": tenant}});
    create(
        &client,
        &platform,
        "TokenService",
        "signet",
        json!({
            "issuer": "https://id.example.com",
            "clientNamespaceSelector": selector,
            "customClientIdNamespaces": selector,
        }),
    )
    .await?;

    // Client id: the older object keeps it.
    let m2m = |id: &str| json!({"clientId": id, "grantTypes": ["client_credentials"], "tokenEndpointAuthMethod": "private_key_jwt", "jwksUri": "https://keys.example/jwks"});
    create(&client, &team_a, "OidcClient", "first", m2m("shared-id")).await?;
    create(&client, &team_b, "OidcClient", "second", m2m("shared-id")).await?;
    // Scopes: team-b's private scope, and one it shares with tenants.
    create(&client, &team_b, "ApiScope", "private", json!({"name": format!("{team_b}.private"), "audience": format!("https://{team_b}/private")})).await?;
    create(&client, &team_b, "ApiScope", "shared", json!({
        "name": format!("{team_b}.shared"), "audience": format!("https://{team_b}/shared"), "allowedClientNamespaces": selector,
    }))
    .await?;
    // creationTimestamp has one-second resolution: let a second pass so "older" is unambiguous
    // (equal timestamps fall back to namespace/name order).
    let shared_created = signet_api(&client, &team_b, "ApiScope")
        .get("shared")
        .await?
        .metadata
        .creation_timestamp
        .unwrap();
    wait_for("the next second", TIMEOUT, || async {
        Ok(
            (k8s_openapi::jiff::Timestamp::now().as_second() > shared_created.0.as_second())
                .then_some(()),
        )
    })
    .await?;
    create(
        &client,
        &team_a,
        "ApiScope",
        "copy",
        json!({"name": format!("{team_b}.shared"), "audience": format!("https://{team_a}/copy")}),
    )
    .await?;
    let mut wants_scopes = m2m(&format!("{team_a}.caller"));
    wants_scopes["allowedScopes"] =
        json!([format!("{team_b}.private"), format!("{team_b}.shared")]);
    create(&client, &team_a, "OidcClient", "caller", wants_scopes).await?;
    // Not selected at all.
    create(
        &client,
        &outsider,
        "OidcClient",
        "app",
        m2m(&format!("{outsider}.app")),
    )
    .await?;

    let _operator = start_operator(
        &cluster.kubeconfig,
        &[&platform, &team_a, &team_b, &outsider],
        &platform,
    )?;

    wait_for_condition(
        &client,
        &team_b,
        "OidcClient",
        "second",
        "Conflict",
        "True",
        Some("ClientIdConflict"),
    )
    .await?;
    wait_for_condition(
        &client,
        &team_b,
        "OidcClient",
        "second",
        "Ready",
        "False",
        Some("ClientIdConflict"),
    )
    .await?;
    wait_for_condition(
        &client,
        &team_a,
        "OidcClient",
        "first",
        "Compiled",
        "True",
        None,
    )
    .await?;
    // The scope created later (team-a's copy) gets the conflict.
    wait_for_condition(
        &client,
        &team_a,
        "ApiScope",
        "copy",
        "Conflict",
        "True",
        Some("ScopeNameConflict"),
    )
    .await?;
    let denied = wait_for_condition(
        &client,
        &team_a,
        "OidcClient",
        "caller",
        "ScopesResolved",
        "False",
        None,
    )
    .await?;
    assert!(
        denied.message.contains(&format!("{team_b}.private")),
        "{}",
        denied.message
    );
    assert!(
        !denied.message.contains(&format!("{team_b}.shared ")),
        "{}",
        denied.message
    );
    wait_for_condition(
        &client,
        &outsider,
        "OidcClient",
        "app",
        "Ready",
        "False",
        Some("NoTokenService"),
    )
    .await?;

    let snap = wait_for("the tenancy snapshot", TIMEOUT, || async {
        Ok(snapshot(&client, &platform, "signet")
            .await?
            .filter(|s| s.clients.len() == 2))
    })
    .await?;
    let mut ids: Vec<_> = snap
        .clients
        .iter()
        .map(|c| (c.namespace.clone(), c.name.clone()))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            (team_a.clone(), "caller".to_owned()),
            (team_a.clone(), "first".to_owned())
        ]
    );
    let caller = snap.clients.iter().find(|c| c.name == "caller").unwrap();
    assert_eq!(caller.allowed_scopes, vec![format!("{team_b}.shared")]);
    let scope_names: Vec<_> = snap.scopes.iter().map(|s| s.name.clone()).collect();
    assert_eq!(
        scope_names,
        vec![format!("{team_b}.private"), format!("{team_b}.shared")]
    );

    // A second TokenService selecting the same namespaces makes unnamed objects ambiguous.
    create(
        &client,
        &platform,
        "TokenService",
        "other",
        json!({"issuer": "https://other.example.com", "clientNamespaceSelector": selector}),
    )
    .await?;
    wait_for_condition(
        &client,
        &team_a,
        "OidcClient",
        "first",
        "Ambiguous",
        "True",
        Some("Ambiguous"),
    )
    .await?;
    wait_for(
        "the ambiguous client out of both snapshots",
        TIMEOUT,
        || async {
            let one = snapshot(&client, &platform, "signet").await?;
            let two = snapshot(&client, &platform, "other").await?;
            let gone = |s: &Option<signet_crds::snapshot::Snapshot>| {
                s.as_ref()
                    .is_some_and(|s| s.clients.iter().all(|c| c.name != "first"))
            };
            Ok((gone(&one) && gone(&two)).then_some(()))
        },
    )
    .await?;
    Ok(())
}

/// A squatter cannot win a scope name or an audience by waiting for its holder to be deleted
/// and re-created: the platform's `apiOwners` gives them to the owner's namespace only.
#[tokio::test]
async fn a_squatter_never_inherits_an_owned_scope_name_or_audience() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let platform = TestNamespace::create(&client, "squat-platform").await?.name;
    let owner = TestNamespace::create(&client, "squat-owner").await?.name;
    let squatter = TestNamespace::create(&client, "squat-squatter").await?.name;
    let tenant = tenants(&client, &[&owner, &squatter]).await?;
    let name = format!("{owner}.payments.read");
    let audience = format!("https://{owner}.payments.example.com");
    create(
        &client,
        &platform,
        "TokenService",
        "signet",
        json!({
            "issuer": "https://id.example.com",
            "clientNamespaceSelector": {"matchLabels": {"signet.dev/tenant-of": tenant}},
            "apiOwners": [{"namespace": owner, "scopePrefixes": [format!("{owner}.payments.")], "audiencePrefixes": [audience]}],
        }),
    )
    .await?;
    let owned = json!({"name": name, "audience": audience});
    create(&client, &owner, "ApiScope", "payments", owned.clone()).await?;
    let squat_audience = format!("https://{squatter}.example.com");
    create(
        &client,
        &squatter,
        "ApiScope",
        "name",
        json!({"name": name, "audience": squat_audience}),
    )
    .await?;
    create(
        &client,
        &squatter,
        "ApiScope",
        "audience",
        json!({"name": format!("{squatter}.pay"), "audience": audience}),
    )
    .await?;
    let _operator = start_operator(
        &cluster.kubeconfig,
        &[&platform, &owner, &squatter],
        &platform,
    )?;

    let holds = |s: &signet_crds::snapshot::Snapshot, aud: &str| {
        s.scopes.iter().any(|x| x.audience.as_deref() == Some(aud))
    };
    let owner_serves = |s: &signet_crds::snapshot::Snapshot| {
        s.scopes
            .iter()
            .any(|x| x.name == name && x.audience.as_deref() == Some(audience.as_str()))
    };
    wait_for_snapshot(&client, &platform, "the owner's scope", owner_serves).await?;

    // The owner deletes and re-creates its scope; the squatter is there all along.
    signet_api(&client, &owner, "ApiScope")
        .delete("payments", &Default::default())
        .await?;
    let between = wait_for_snapshot(&client, &platform, "the owner's scope gone", |s| {
        !owner_serves(s)
    })
    .await?;
    assert!(
        !between.scopes.iter().any(|x| x.name == name),
        "the squatter took the scope name: {:?}",
        between.scopes
    );
    assert!(
        !holds(&between, &audience),
        "the squatter took the audience: {:?}",
        between.scopes
    );
    for object in ["name", "audience"] {
        let reason = if object == "name" {
            "ScopeNameOwned"
        } else {
            "AudienceOwned"
        };
        wait_for_condition(
            &client,
            &squatter,
            "ApiScope",
            object,
            "Conflict",
            "True",
            Some(reason),
        )
        .await?;
    }
    create(&client, &owner, "ApiScope", "payments", owned).await?;
    let after =
        wait_for_snapshot(&client, &platform, "the owner's scope back", owner_serves).await?;
    assert!(!holds(&after, &squat_audience), "{:?}", after.scopes);
    Ok(())
}

/// A tenant cannot accept another cluster's tokens by naming that cluster: only a cluster the
/// platform lists on the TokenService, and only from a namespace that cluster's
/// clientNamespaceSelector selects. Selecting the namespace later lets the same client in.
#[tokio::test]
async fn a_tenant_accepts_another_clusters_tokens_only_where_the_platform_trusts_it()
-> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let platform = TestNamespace::create(&client, "trust-platform").await?.name;
    let team_a = TestNamespace::create(&client, "trust-a").await?.name;
    let team_b = TestNamespace::create(&client, "trust-b").await?.name;
    let tenant = tenants(&client, &[&team_a, &team_b]).await?;
    let east_users = format!("east-{team_a}");
    label(
        &client,
        &team_a,
        BTreeMap::from([
            ("signet.dev/tenant-of", tenant.as_str()),
            ("east", east_users.as_str()),
        ]),
    )
    .await?;
    create(
        &client,
        &platform,
        "TokenService",
        "signet",
        json!({
            "issuer": "https://id.example.com",
            "clientNamespaceSelector": {"matchLabels": {"signet.dev/tenant-of": tenant}},
            "trustedClusters": [{
                "name": "east",
                "issuer": "https://east.clusters.example",
                "jwksUri": "https://east-api.example/openid/v1/jwks",
                "clientNamespaceSelector": {"matchLabels": {"east": east_users}},
            }],
        }),
    )
    .await?;
    let workload = |cluster: &str| {
        json!({
            "grantTypes": ["client_credentials"],
            "tokenEndpointAuthMethod": "kubernetes_service_account",
            "workloadIdentity": {"serviceAccounts": ["worker"], "cluster": cluster},
        })
    };
    create(&client, &team_a, "OidcClient", "reporter", workload("east")).await?;
    create(&client, &team_a, "OidcClient", "stranger", workload("west")).await?;
    create(&client, &team_b, "OidcClient", "reporter", workload("east")).await?;
    let _operator = start_operator(
        &cluster.kubeconfig,
        &[&platform, &team_a, &team_b],
        &platform,
    )?;

    let ready = |ns: &str, name: &str, status: &'static str, reason: Option<&'static str>| {
        let (client, ns, name) = (client.clone(), ns.to_owned(), name.to_owned());
        async move {
            wait_for_condition(
                &client,
                &ns,
                "OidcClient",
                &name,
                "Compiled",
                status,
                reason,
            )
            .await
        }
    };
    ready(&team_a, "reporter", "True", None).await?;
    let found = wait_for_condition(
        &client,
        &team_a,
        "OidcClient",
        "reporter",
        "ServiceAccountsFound",
        "Unknown",
        Some("OtherCluster"),
    )
    .await?;
    assert!(
        found.message.contains("trusted cluster east"),
        "{}",
        found.message
    );
    let unlisted = ready(&team_a, "stranger", "False", Some("ClusterNotTrusted")).await?;
    assert!(
        unlisted.message.contains("\"west\""),
        "{}",
        unlisted.message
    );
    let unselected = ready(&team_b, "reporter", "False", Some("ClusterNotTrusted")).await?;
    assert!(
        unselected
            .message
            .contains(&format!("namespace {team_b} may not")),
        "{}",
        unselected.message
    );
    let snapshot = wait_for_snapshot(&client, &platform, "the trusted client served", |s| {
        s.clients
            .iter()
            .any(|c| c.client_id == format!("{team_a}.reporter"))
    })
    .await?;
    let ids: Vec<&str> = snapshot
        .clients
        .iter()
        .map(|c| c.client_id.as_str())
        .collect();
    assert_eq!(ids, [format!("{team_a}.reporter")], "only the trusted one");

    // The platform selects team-b for east: the same client is served.
    label(
        &client,
        &team_b,
        BTreeMap::from([
            ("signet.dev/tenant-of", tenant.as_str()),
            ("east", east_users.as_str()),
        ]),
    )
    .await?;
    ready(&team_b, "reporter", "True", None).await?;
    Ok(())
}
