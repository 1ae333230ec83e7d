//! HTTPS with rustls: the STS serves discovery over TLS with the configured certificate, and
//! drains and exits cleanly on SIGTERM.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use signet_tests::{Process, repo_root, wait_for};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl {args:?}");
}

#[tokio::test]
async fn serves_https_with_the_given_certificate() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("signet-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=test-ca",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "tls.key",
            "-out",
            "tls.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext",
            "-out",
            "tls.crt",
        ],
    );

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
        format!("--tls-cert={}", dir.join("tls.crt").display()),
        format!("--tls-key={}", dir.join("tls.key").display()),
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
            .arg(dir.join("ca.crt"))
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
