//! Signing keys on a real control plane, with durations of seconds: rotations seen through
//! the JWKS ConfigMap and the snapshot, and crashes between the writes of a transition.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use signet_tests::{TestNamespace, shared, signet_api, signet_object, wait_for};

async fn setup(
    client: &Client,
    ns: &str,
    rotation: &str,
    propagation: &str,
    retention: &str,
) -> anyhow::Result<()> {
    let ts = json!({
        "issuer": "https://id.example.com", "signingKeys": ["key"],
        "idTokenSigningAlg": "ES256", "accessTokenSigningAlg": "ES256", "jwksMaxAge": "1s",
    });
    signet_api(client, ns, "TokenService")
        .create(
            &PostParams::default(),
            &signet_object("TokenService", "signet", ts),
        )
        .await?;
    let key = json!({"algorithm": "ES256", "rotationInterval": rotation, "propagationTime": propagation, "retentionTime": retention});
    signet_api(client, ns, "SigningKey")
        .create(
            &PostParams::default(),
            &signet_object("SigningKey", "key", key),
        )
        .await?;
    Ok(())
}

async fn key_status(client: &Client, ns: &str) -> anyhow::Result<serde_json::Value> {
    Ok(signet_api(client, ns, "SigningKey").get("key").await?.data["status"].clone())
}

fn kids(jwks: &serde_json::Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn three_rotations_keep_the_active_key_in_every_jwks() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "key-rotation").await?.name;
    setup(&client, &ns, "6s", "2s", "3s").await?;
    let _operator = start_operator(&cluster.kubeconfig, &[&ns], &ns)?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);

    // Every active kid seen, in order, and the number of samples.
    let seen = std::sync::Arc::new(std::sync::Mutex::new((Vec::<String>::new(), 0usize)));
    wait_for("three rotations", Duration::from_secs(90), || {
        let (client, maps, ns, seen) = (client.clone(), maps.clone(), ns.clone(), seen.clone());
        async move {
            // The active kid first, then the JWKS: the key was published propagationTime
            // before it became active, so the JWKS read after must hold it.
            let status = key_status(&client, &ns).await?;
            let Some(active) = status["activeKid"].as_str().map(str::to_owned) else {
                return Ok(None);
            };
            let Some(map) = maps.get_opt("signet-jwks").await? else {
                return Ok(None);
            };
            let jwks: serde_json::Value =
                serde_json::from_str(&map.data.unwrap_or_default()["jwks.json"])?;
            // Bootstrap is the documented exception: the first key signs at once (no verifier
            // can have cached the empty JWKS), so sampling starts once it is published.
            if seen.lock().unwrap().0.is_empty() && !kids(&jwks).contains(&active) {
                return Ok(None);
            }
            for key in jwks["keys"].as_array().unwrap() {
                anyhow::ensure!(
                    key["kty"] == "EC" && key["alg"] == "ES256" && key["use"] == "sig",
                    "bad JWK {key}"
                );
                anyhow::ensure!(key.get("d").is_none(), "private member in the JWKS");
            }
            assert!(
                kids(&jwks).contains(&active),
                "active kid {active} missing from the JWKS {jwks}"
            );
            let snap = snapshot(&client, &ns, "signet").await?.expect("a snapshot");
            let signing: Vec<_> = snap
                .keys
                .iter()
                .filter(|k| k.phase == signet_crds::v1alpha1::KeyPhase::Active)
                .collect();
            assert_eq!(signing.len(), 1, "exactly one active key in the snapshot");
            assert!(signing[0].private_pem.is_some());
            let mut seen = seen.lock().unwrap();
            seen.1 += 1;
            if seen.0.last() != Some(&active) {
                seen.0.push(active);
            }
            Ok((seen.0.len() >= 4).then_some(()))
        }
    })
    .await?;
    let (actives, samples) = seen.lock().unwrap().clone();
    println!("saw {} active keys over {samples} samples", actives.len());
    assert_eq!(
        actives.iter().collect::<BTreeSet<_>>().len(),
        actives.len(),
        "a kid never comes back"
    );
    Ok(())
}

#[tokio::test]
async fn crashes_between_key_writes_leave_consistent_keys() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "key-crashes").await?.name;
    setup(&client, &ns, "4s", "1s", "2s").await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut seen_active = BTreeSet::new();

    for round in 0..20 {
        // Crash after 1, 2 or 3 key writes: between the Secret and its record, between a
        // record and a deletion, or right after a transition.
        let writes = (round % 3 + 1).to_string();
        let lease = format!("{ns}-{round}");
        let mut operator = start_operator_with(
            &cluster.kubeconfig,
            &[&ns],
            &lease,
            &[("SIGNET_FAILPOINT_KEY_WRITES", &writes)],
        )?;
        let exit = operator
            .wait_exit(Duration::from_secs(60))?
            .expect("the failpoint ends the operator");
        assert!(
            !exit.success(),
            "round {round}: the operator crashed rather than exited"
        );
        assert!(
            operator.output().contains("failpoint: aborting"),
            "round {round}: {}",
            operator.output()
        );

        // Whatever the moment of the crash: at most one active version, and it has its Secret.
        let status = key_status(&client, &ns).await?;
        let versions = status["keys"].as_array().cloned().unwrap_or_default();
        let active: Vec<_> = versions.iter().filter(|v| v["phase"] == "Active").collect();
        assert!(active.len() <= 1, "round {round}: {status}");
        if let Some(a) = active.first() {
            assert!(
                secrets
                    .get_opt(a["secretName"].as_str().unwrap())
                    .await?
                    .is_some(),
                "round {round}: active key without its Secret"
            );
            seen_active.insert(a["kid"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        seen_active.len() >= 3,
        "the crashes happened during rotations: {seen_active:?}"
    );

    // Afterwards an operator without a failpoint settles: exactly one active key, every key
    // Secret recorded and every record with its Secret.
    let _operator = start_operator(&cluster.kubeconfig, &[&ns], &format!("{ns}-final"))?;
    wait_for("consistent keys", Duration::from_secs(60), || async {
        let status = key_status(&client, &ns).await?;
        let versions = status["keys"].as_array().cloned().unwrap_or_default();
        let recorded: BTreeSet<String> = versions
            .iter()
            .map(|v| v["secretName"].as_str().unwrap().to_owned())
            .collect();
        let stored: BTreeSet<String> = secrets
            .list(&ListParams::default().labels("signet.dev/signing-key=key"))
            .await?
            .items
            .into_iter()
            .map(|s| s.metadata.name.unwrap())
            .collect();
        let one_active = versions.iter().filter(|v| v["phase"] == "Active").count() == 1;
        Ok((one_active && recorded == stored).then_some(()))
    })
    .await?;
    Ok(())
}
