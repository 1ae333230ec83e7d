//! Workload identity (issue 20) on the real control plane: a pod's ServiceAccount token,
//! minted by the real kube-apiserver (`kubectl create token`, also bound to a Pod object),
//! authenticates an OidcClient that names that ServiceAccount, with no secret anywhere. The
//! STS reviews tokens with TokenReview, as its chart Role allows. Refused with invalid_client:
//! another ServiceAccount, another namespace's, another audience, a token this cluster did not
//! sign, a legacy Secret-based token; and after the bound Pod or the ServiceAccount is deleted,
//! within the review cache's 30 s. Binding another namespace's ServiceAccount is refused at
//! apply. The client's ServiceAccountsFound condition says which ServiceAccounts exist.
//!
//! A second private control plane, with an issuer of its own, acts as another cluster: its
//! tokens are checked offline with its published keys, and work only once the platform lists
//! it in the TokenService's trustedClusters, and only for the client that names that cluster.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use common::cluster::{create_service_account, create_token, deploy_in};
use signet_tests::{
    PrivateCluster, TestNamespace, http, shared, signet_api, signet_object, wait_for,
};

const TIMEOUT: Duration = Duration::from_secs(90);
/// The review cache's bound, with room for the request itself.
const REVIEW_BOUND: Duration = Duration::from_secs(45);
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client_credentials request authenticated by `token` as `client_id`.
async fn token_with(addr: &str, client_id: &str, token: &str) -> anyhow::Result<http::Response> {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", token),
        ("scope", "orders.read"),
    ];
    http::post_form(addr, "/token", &form, &[]).await
}

fn invalid_client(response: &http::Response) -> bool {
    response.status == 401 && response.json()["error"] == "invalid_client"
}

/// Creates OidcClient `name` in `ns`: client_credentials (and token exchange) for orders.read, authenticated by the
/// tokens of `accounts`, of trusted cluster `cluster` if given.
async fn create_workload_client(
    client: &kube::Client,
    ns: &str,
    name: &str,
    accounts: &[&str],
    cluster: Option<&str>,
) -> anyhow::Result<()> {
    let mut identity = json!({"serviceAccounts": accounts});
    if let Some(cluster) = cluster {
        identity["cluster"] = cluster.into();
    }
    let spec = json!({
        "grantTypes": ["client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"],
        "allowedScopes": ["orders.read"],
        "tokenEndpointAuthMethod": "kubernetes_service_account",
        "workloadIdentity": identity,
    });
    signet_api(client, ns, "OidcClient")
        .create(
            &PostParams::default(),
            &signet_object("OidcClient", name, spec),
        )
        .await?;
    Ok(())
}

/// A signer with a new RS256 key of its own: what an attacker can sign tokens with.
fn attacker() -> anyhow::Result<signet_sts::jose::Signer> {
    let alg = signet_crds::v1alpha1::Algorithm::RS256;
    let key = signet_crds::keygen::generate(alg, None)?;
    Ok(signet_sts::jose::Signer::from_pem(
        &key.kid,
        alg,
        &key.private_pem,
    )?)
}

/// Waits, within the review cache's bound, until `token` no longer authenticates `client_id`.
async fn stops_working(what: &str, addr: &str, client_id: &str, token: &str) -> anyhow::Result<()> {
    wait_for(what, REVIEW_BOUND, || async {
        Ok(invalid_client(&token_with(addr, client_id, token).await?).then_some(()))
    })
    .await
}

#[tokio::test]
async fn a_pod_gets_tokens_with_its_service_account_token_and_nothing_else_does()
-> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "workload").await?.name;
    let elsewhere = TestNamespace::create(&client, "workload-other").await?.name;
    let (deployed, issuer) = deploy_in(&cluster, &client, &ns, "workload").await?;
    let addr = deployed.addr.clone();
    let discovery = http::get(&addr, "/.well-known/openid-configuration")
        .await?
        .json();
    assert!(
        discovery["token_endpoint_auth_methods_supported"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("kubernetes_service_account"))),
        "{discovery}"
    );

    for (namespace, name) in [(&ns, "worker"), (&ns, "other"), (&elsewhere, "worker")] {
        create_service_account(&client, namespace, name).await?;
    }
    create_workload_client(&client, &ns, "pod-app", &["worker", "batch"], None).await?;
    let client_id = format!("{ns}.pod-app");

    // Its status says which ServiceAccounts it accepts and whether each exists.
    let found = condition(&client, &ns, "pod-app", "ServiceAccountsFound", "False").await?;
    assert_eq!(
        found["message"],
        "accepts the tokens of ServiceAccounts batch (not found), worker (found)"
    );
    create_service_account(&client, &ns, "batch").await?;
    let found = condition(&client, &ns, "pod-app", "ServiceAccountsFound", "True").await?;
    assert_eq!(
        found["message"],
        "accepts the tokens of ServiceAccounts batch (found), worker (found)"
    );

    // The worker's token, for the issuer: an access token, once the client is compiled.
    let worker = create_token(
        cluster.kubectl(),
        &["worker", "-n", &ns, "--audience", &issuer],
    )?;
    let issued = wait_for("a token for the workload client", TIMEOUT, || async {
        let r = token_with(&addr, &client_id, &worker).await?;
        Ok((r.status == 200).then_some(r))
    })
    .await?;
    let claims = http::jwt_claims(issued.json()["access_token"].as_str().unwrap_or_default());
    assert_eq!(claims["client_id"], client_id.as_str(), "{claims}");
    assert_eq!(claims["scope"], "orders.read");
    // No Secret was generated for it.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    assert!(secrets.get_opt("pod-app-oidc").await?.is_none());

    // Refused: another ServiceAccount, another namespace's, another audience, a token this
    // cluster did not sign (the worker's claims under a signature of our own), a legacy token.
    let other = create_token(
        cluster.kubectl(),
        &["other", "-n", &ns, "--audience", &issuer],
    )?;
    let foreign = create_token(
        cluster.kubectl(),
        &["worker", "-n", &elsewhere, "--audience", &issuer],
    )?;
    let api_audience = create_token(cluster.kubectl(), &["worker", "-n", &ns])?;
    let forged = attacker()?.sign("JWT", &http::jwt_claims(&worker));
    let legacy_secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "worker-legacy", "annotations": {"kubernetes.io/service-account.name": "worker"}},
        "type": "kubernetes.io/service-account-token",
    }))?;
    secrets
        .create(&PostParams::default(), &legacy_secret)
        .await?;
    let legacy = wait_for("the legacy token", TIMEOUT, || async {
        let secret = secrets.get("worker-legacy").await?;
        Ok(secret.data.and_then(|d| {
            d.get("token")
                .map(|t| String::from_utf8_lossy(&t.0).into_owned())
        }))
    })
    .await?;
    for (why, token) in [
        ("another ServiceAccount", &other),
        ("another namespace's ServiceAccount", &foreign),
        ("the API server's audience", &api_audience),
        ("not signed by this cluster", &forged),
        ("a legacy Secret-based token", &legacy),
    ] {
        let refused = token_with(&addr, &client_id, token).await?;
        assert!(
            invalid_client(&refused),
            "{why}: {} {}",
            refused.status,
            refused.body
        );
    }
    // Nor is the workload client reachable as private_key_jwt: an assertion that names it
    // (no client_id) under any key is refused, for the snapshot holds no key of it.
    let pretender = {
        let alg = signet_crds::v1alpha1::Algorithm::ES256;
        let key = signet_crds::keygen::generate(alg, None)?;
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let claims = json!({"iss": client_id, "sub": client_id, "aud": issuer, "exp": now + 60, "jti": "pretend-1"});
        signet_sts::jose::Signer::from_pem(&key.kid, alg, &key.private_pem)?.sign("JWT", &claims)
    };
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", pretender.as_str()),
    ];
    let refused = http::post_form(&addr, "/token", &form, &[]).await?;
    assert!(invalid_client(&refused), "{}", refused.body);

    // The worker's token authenticates no other client: for a private_key_jwt or secret
    // client it is an assertion whose `iss` is not the client_id.
    let refused = token_with(&addr, &format!("{ns}.orders-worker"), &worker).await?;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(
        refused.json()["error"],
        "invalid_request",
        "{}",
        refused.body
    );

    // A token bound to a Pod object works while the Pod exists.
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "worker-pod"},
        "spec": {"serviceAccountName": "worker", "containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
    }))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    pods.create(&PostParams::default(), &pod).await?;
    let bound = create_token(
        cluster.kubectl(),
        &[
            "worker",
            "-n",
            &ns,
            "--audience",
            &issuer,
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "worker-pod",
        ],
    )?;
    let while_running = token_with(&addr, &client_id, &bound).await?;
    assert_eq!(while_running.status, 200, "{}", while_running.body);
    pods.delete("worker-pod", &DeleteParams::default().grace_period(0))
        .await?;
    stops_working(
        "the deleted Pod's token to stop working",
        &addr,
        &client_id,
        &bound,
    )
    .await?;

    // The ServiceAccount deleted: its tokens stop within the bound.
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .delete("worker", &DeleteParams::default())
        .await?;
    stops_working(
        "the deleted ServiceAccount's token to stop working",
        &addr,
        &client_id,
        &worker,
    )
    .await?;

    // A tenant cannot bind another namespace's ServiceAccount: refused at apply.
    let spec = json!({
        "grantTypes": ["client_credentials"],
        "tokenEndpointAuthMethod": "kubernetes_service_account",
        "workloadIdentity": {"serviceAccounts": [format!("system:serviceaccount:{elsewhere}:worker")]},
    });
    let refused = signet_api(&client, &ns, "OidcClient")
        .create(
            &PostParams::default(),
            &signet_object("OidcClient", "thief", spec),
        )
        .await
        .expect_err("another namespace's ServiceAccount is refused");
    assert!(
        refused
            .to_string()
            .contains("another namespace's ServiceAccount cannot be bound"),
        "{refused}"
    );
    drop(deployed);
    Ok(())
}

/// `kubectl` with `args`, which must succeed.
fn kubectl_ok(mut kubectl: std::process::Command, args: &[&str]) -> anyhow::Result<String> {
    let out = kubectl.args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Waits until OidcClient `name` has condition `type_` with `status`; that condition.
async fn condition(
    client: &kube::Client,
    ns: &str,
    name: &str,
    type_: &str,
    status: &str,
) -> anyhow::Result<serde_json::Value> {
    wait_for(&format!("{name}: {type_}={status}"), TIMEOUT, || async {
        let object = signet_api(client, ns, "OidcClient").get(name).await?;
        let conditions = object.data["status"]["conditions"].clone();
        Ok(conditions.as_array().and_then(|all| {
            all.iter()
                .find(|c| c["type"] == type_ && c["status"] == status)
                .cloned()
        }))
    })
    .await
}

#[tokio::test]
async fn another_clusters_tokens_work_only_once_trusted_and_only_for_the_client_naming_that_cluster()
-> anyhow::Result<()> {
    const EAST: &str = "https://east.clusters.test";
    let east = PrivateCluster::start_as_issuer("east-workloads", EAST).await?;
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "workload-east").await?.name;
    let (deployed, issuer) = deploy_in(&cluster, &client, &ns, "workload-east").await?;
    let addr = deployed.addr.clone();

    // East: the namespace of the same name with ServiceAccounts, and its keys readable without
    // credentials, as a cloud provider publishes them.
    kubectl_ok(east.kubectl(), &["create", "namespace", &ns])?;
    for name in ["worker", "other"] {
        kubectl_ok(
            east.kubectl(),
            &["create", "serviceaccount", name, "-n", &ns],
        )?;
    }
    kubectl_ok(
        east.kubectl(),
        &[
            "create",
            "clusterrolebinding",
            "public-service-account-keys",
            "--clusterrole=system:service-account-issuer-discovery",
            "--group=system:unauthenticated",
        ],
    )?;
    let east_token = |args: &[&str]| {
        let mut all = vec!["-n", ns.as_str()];
        all.extend_from_slice(args);
        create_token(east.kubectl(), &all)
    };
    let worker = east_token(&["worker", "--audience", &issuer, "--duration", "10m"])?;
    assert_eq!(http::jwt_claims(&worker)["iss"], EAST);

    // Here: a ServiceAccount of the same name, a client of this cluster naming it, and a
    // client naming east's.
    create_service_account(&client, &ns, "worker").await?;
    create_workload_client(&client, &ns, "here", &["worker"], None).await?;
    create_workload_client(&client, &ns, "there", &["worker"], Some("east")).await?;
    let (here_id, there_id) = (format!("{ns}.here"), format!("{ns}.there"));

    // Not trusted yet: the client naming east is not served, and east's token gets nothing.
    let ready = condition(&client, &ns, "there", "Ready", "False").await?;
    assert_eq!(ready["reason"], "ClusterNotTrusted");
    condition(&client, &ns, "here", "Ready", "True").await?;
    let refused = token_with(&addr, &there_id, &worker).await?;
    assert!(invalid_client(&refused), "{}", refused.body);

    // The platform trusts east: its JWK Set on the API server, under its CA.
    let api_server = std::fs::read_to_string(east.dir.join("apiserver.url"))?;
    let ca = std::fs::read_to_string(east.dir.join("ca.crt"))?;
    let trust = json!({"spec": {"trustedClusters": [{
        "name": "east",
        "issuer": EAST,
        "jwksUri": format!("{}/openid/v1/jwks", api_server.trim()),
        "caBundle": ca,
        "maxTokenLifetime": "15m",
        "allowPrivateNetwork": true,
    }]}});
    signet_api(&client, &ns, "TokenService")
        .patch(
            "signet",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&trust),
        )
        .await?;
    condition(&client, &ns, "there", "Ready", "True").await?;
    let found = condition(&client, &ns, "there", "ServiceAccountsFound", "Unknown").await?;
    assert_eq!(found["reason"], "OtherCluster");
    let issued = wait_for("a token for east's worker", TIMEOUT, || async {
        let r = token_with(&addr, &there_id, &worker).await?;
        Ok((r.status == 200).then_some(r))
    })
    .await?;
    let claims = http::jwt_claims(issued.json()["access_token"].as_str().unwrap_or_default());
    assert_eq!(claims["client_id"], there_id.as_str(), "{claims}");
    // Exchanged for a token of its own identity (RFC 8693), east's worker is named as east's:
    // the same ServiceAccount name here is another workload.
    let form = [
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("client_id", there_id.as_str()),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", worker.as_str()),
        ("subject_token", worker.as_str()),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        ("audience", "https://orders.example.com"),
    ];
    let exchanged = http::post_form(&addr, "/token", &form, &[]).await?;
    assert_eq!(exchanged.status, 200, "{}", exchanged.body);
    let own = http::jwt_claims(
        exchanged.json()["access_token"]
            .as_str()
            .unwrap_or_default(),
    );
    assert_eq!(
        own["sub"],
        format!("east/system:serviceaccount:{ns}:worker")
    );

    // Only for the client that names east: this cluster's client of the same ServiceAccount
    // name refuses east's token, and east's client refuses this cluster's token.
    let local = create_token(
        cluster.kubectl(),
        &["worker", "-n", &ns, "--audience", &issuer],
    )?;
    let accepted = token_with(&addr, &here_id, &local).await?;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let other = east_token(&["other", "--audience", &issuer, "--duration", "10m"])?;
    let api_audience = east_token(&["worker", "--duration", "10m"])?;
    let too_long = east_token(&["worker", "--audience", &issuer, "--duration", "1h"])?;
    let legacy_secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "worker-legacy", "namespace": ns, "annotations": {"kubernetes.io/service-account.name": "worker"}},
        "type": "kubernetes.io/service-account-token",
    });
    let file = east.dir.join("legacy-secret.json");
    std::fs::write(&file, legacy_secret.to_string())?;
    kubectl_ok(east.kubectl(), &["apply", "-f", &file.to_string_lossy()])?;
    let legacy = wait_for("east's legacy token", TIMEOUT, || async {
        let out = kubectl_ok(
            east.kubectl(),
            &[
                "get",
                "secret",
                "worker-legacy",
                "-n",
                &ns,
                "-o",
                "jsonpath={.data.token}",
            ],
        )?;
        let token = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, out.trim());
        Ok(token
            .ok()
            .filter(|t| !t.is_empty())
            .map(|t| String::from_utf8_lossy(&t).into_owned()))
    })
    .await?;
    for (why, id, token) in [
        ("east's token for this cluster's client", &here_id, &worker),
        ("this cluster's token for east's client", &there_id, &local),
        ("another ServiceAccount of east", &there_id, &other),
        ("east's token for its API server", &there_id, &api_audience),
        ("a lifetime past maxTokenLifetime", &there_id, &too_long),
        ("east's legacy Secret-based token", &there_id, &legacy),
    ] {
        let refused = token_with(&addr, id, token).await?;
        assert!(
            invalid_client(&refused),
            "{why}: {} {}",
            refused.status,
            refused.body
        );
    }
    drop(deployed);
    Ok(())
}

/// TokenReviews the STS of `ns` (ServiceAccount `sts`) has asked the API server for.
fn reviews_asked(cluster: &signet_tests::SharedCluster, ns: &str) -> anyhow::Result<usize> {
    let sts = format!("system:serviceaccount:{ns}:sts");
    let log = std::fs::read_to_string(cluster.audit_log())?;
    Ok(log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| {
            event["stage"] == "ResponseComplete"
                && event["objectRef"]["resource"] == "tokenreviews"
                && event["user"]["username"] == sts.as_str()
        })
        .count())
}

/// An attacker who knows a workload client's id and its ServiceAccount's name makes up tokens
/// with the right claims under keys of its own, each one new: none reaches the API server (the
/// STS checks the signature against the cluster's own published keys first), so the flood
/// costs no TokenReview, while the pod's real token still gets one.
#[tokio::test]
async fn a_flood_of_made_up_service_account_tokens_costs_the_api_server_no_review()
-> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "workload-flood").await?.name;
    let (deployed, issuer) = deploy_in(&cluster, &client, &ns, "workload-flood").await?;
    let addr = deployed.addr.clone();
    create_service_account(&client, &ns, "worker").await?;
    create_workload_client(&client, &ns, "pod-app", &["worker"], None).await?;
    let client_id = format!("{ns}.pod-app");
    let real = create_token(
        cluster.kubectl(),
        &["worker", "-n", &ns, "--audience", &issuer],
    )?;
    wait_for("the workload client to be served", TIMEOUT, || async {
        Ok((token_with(&addr, &client_id, &real).await?.status == 200).then_some(()))
    })
    .await?;

    let claims = http::jwt_claims(&real);
    let signer = attacker()?;
    let before = reviews_asked(&cluster, &ns)?;
    let flood = (0..100).map(|i| {
        let mut made_up = claims.clone();
        made_up["jti"] = format!("made-up-{i}").into();
        let token = signer.sign("JWT", &made_up);
        let addr = addr.clone();
        let client_id = client_id.clone();
        async move { token_with(&addr, &client_id, &token).await }
    });
    for refused in futures::future::join_all(flood).await {
        let refused = refused?;
        assert!(
            invalid_client(&refused),
            "{} {}",
            refused.status,
            refused.body
        );
    }
    assert_eq!(
        reviews_asked(&cluster, &ns)? - before,
        0,
        "made-up tokens reached the API server"
    );
    // A new real token is reviewed: the count above would have seen the flood's reviews.
    let fresh = create_token(
        cluster.kubectl(),
        &["worker", "-n", &ns, "--audience", &issuer],
    )?;
    let accepted = token_with(&addr, &client_id, &fresh).await?;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(reviews_asked(&cluster, &ns)? - before, 1);
    drop(deployed);
    Ok(())
}
