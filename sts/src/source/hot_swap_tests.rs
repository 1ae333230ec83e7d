//! Hot swap under load: 100 snapshots, each changing what a token shows, swapped in while
//! requests run. No request fails, and every token comes from exactly one snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;

use super::install;
use crate::http::{App, router};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_under_load_fail_no_request_and_never_mix_snapshots() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let state = std::env::temp_dir().join(format!("signet-hot-swap-{}", std::process::id()));
    let compiled =
        super::standalone::compile_dir(&examples, &state, Some("http://127.0.0.1:1")).unwrap();
    let secret: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&compiled.credential_files["default.orders-worker"]).unwrap(),
    )
    .unwrap();
    let secret = secret["client_secret"].as_str().unwrap().to_owned();

    // Version i: the worker's tokens carry claim version=i and live 600+i seconds, so a
    // token mixing two snapshots would show a version and a lifetime that disagree.
    let variant = |i: u64| {
        let mut s = compiled.snapshot.clone();
        let worker = s
            .clients
            .iter_mut()
            .find(|c| c.client_id == "default.orders-worker")
            .unwrap();
        worker.claims.insert("version".into(), i.to_string());
        worker.lifetimes.access_token = 600 + i;
        s.to_wire()
    };
    let variants: Vec<_> = (0..=100).map(variant).collect();
    let last_hash = variants[100].hash.clone();
    let app = App::new();
    install(&app, variants[0].clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(axum::serve(listener, router(app.clone())).into_future());

    let done = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (app, done) = (app.clone(), done.clone());
        tokio::spawn(async move {
            for snapshot in variants.into_iter().skip(1) {
                install(&app, snapshot).await;
                tokio::task::yield_now().await;
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut versions = std::collections::BTreeSet::new();
    let mut requests = 0;
    while !done.load(Ordering::SeqCst) || requests < 100 {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "default.orders-worker"),
            ("client_secret", secret.as_str()),
        ];
        let response = signet_tests::http::post_form(&addr, "/token", &form, &[])
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
        let token = response.json()["access_token"].as_str().unwrap().to_owned();
        let payload = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        let version: u64 = claims["version"].as_str().unwrap().parse().unwrap();
        let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
        assert_eq!(lifetime, 600 + version, "a token from two snapshots");
        assert_eq!(response.json()["expires_in"], 600 + version);
        versions.insert(version);
        requests += 1;
    }
    swapper.await.unwrap();
    assert_eq!(app.loaded.load().as_ref().unwrap().snapshot.hash, last_hash);
    assert!(
        versions.len() > 1,
        "requests saw several snapshots: {versions:?}"
    );
    println!(
        "{requests} requests saw {} of 101 snapshots",
        versions.len()
    );
}
