//! HTTPS with rustls: the STS serves discovery over TLS with the configured certificate, and
//! drains and exits cleanly on SIGTERM.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use signet_tests::{Process, repo_root, wait_for};

#[tokio::test]
async fn serves_https_with_the_given_certificate() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("signet-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pki = signet_tests::TestPki::create(&dir);

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let issuer = format!("https://127.0.0.1:{port}");
    let args = vec![
        format!("--manifests={}", repo_root().join("examples").display()),
        format!("--state-dir={}", dir.join("state").display()),
        format!("--issuer={issuer}"),
        format!("--listen=127.0.0.1:{port}"),
        "--metrics-addr=127.0.0.1:0".into(),
        format!("--tls-cert={}", pki.cert.display()),
        format!("--tls-key={}", pki.key.display()),
    ];
    let mut sts = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_signet-sts")),
        "sts-tls",
        &args,
        &[],
    )?;
    let curl = |path: &str| {
        Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&pki.ca)
            .arg(format!("{issuer}{path}"))
            .output()
            .unwrap()
    };
    let discovery = wait_for("discovery over https", Duration::from_secs(60), || async {
        let out = curl("/.well-known/openid-configuration");
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
    })
    .await?;
    let config: serde_json::Value = serde_json::from_str(&discovery)?;
    assert_eq!(config["issuer"], issuer.as_str());
    assert_eq!(config["token_endpoint"], format!("{issuer}/token"));

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = Command::new("curl")
        .args([
            "-sS",
            "-m",
            "5",
            &format!("http://127.0.0.1:{port}/healthz"),
        ])
        .output()?;
    assert!(!plain.status.success() || !String::from_utf8_lossy(&plain.stdout).contains("ok"));

    let exit = sts.terminate()?;
    assert!(
        exit.success(),
        "SIGTERM drains and exits cleanly: {exit:?}\n{}",
        sts.output()
    );
    assert!(sts.output().contains("serving https"));
    Ok(())
}
