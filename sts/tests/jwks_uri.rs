//! private_key_jwt with keys at the client's jwksUri: fetched over https when the TokenService
//! allows private targets (the test's server is on loopback), refused when it does not.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use signet_crds::keygen;
use signet_crds::v1alpha1::Algorithm;
use signet_tests::{Process, http, wait_for};

/// `openssl s_server -WWW` serves the files of `dir` over https; killed on drop.
struct FileServer(Child);

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn manifests(dir: &Path, allow_private: bool, jwks_uri: &str, issuer: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let yaml = format!(
        r#"apiVersion: signet.dev/v1alpha1
kind: TokenService
metadata: {{name: signet}}
spec:
  issuer: {issuer}
  signingKeys: [key]
  idTokenSigningAlg: ES256
  allowPrivateNetworkTargets: {allow_private}
---
apiVersion: signet.dev/v1alpha1
kind: SigningKey
metadata: {{name: key}}
spec: {{algorithm: ES256}}
---
apiVersion: signet.dev/v1alpha1
kind: ApiScope
metadata: {{name: api}}
spec: {{name: api.read, audience: "https://api.example"}}
---
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {{name: signer}}
spec:
  grantTypes: [client_credentials]
  allowedScopes: [api.read]
  tokenEndpointAuthMethod: private_key_jwt
  jwksUri: {jwks_uri}
"#
    );
    std::fs::write(dir.join("all.yaml"), yaml).unwrap();
}

async fn start_sts(
    dir: &Path,
    state: &Path,
    ca: &Path,
) -> anyhow::Result<(Process, String, String)> {
    let port = signet_tests::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let args = vec![
        format!("--manifests={}", dir.display()),
        format!("--state-dir={}", state.display()),
        format!("--issuer={issuer}"),
        format!("--listen=127.0.0.1:{port}"),
        "--metrics-addr=127.0.0.1:0".into(),
    ];
    // The test CA joins the trusted roots, as a private PKI would in a cluster.
    let process = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_signet-sts")),
        "sts-jwks-uri",
        &args,
        &[("SSL_CERT_FILE", &ca.to_string_lossy())],
    )?;
    let addr = format!("127.0.0.1:{port}");
    signet_tests::wait_ready(&addr).await?;
    Ok((process, addr, issuer))
}

fn assertion(key: &EncodingKey, kid: &str, issuer: &str) -> String {
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let claims = json!({"iss": "default.signer", "sub": "default.signer", "aud": issuer, "exp": now + 60, "iat": now, "jti": keygen::client_secret()});
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

async fn token(addr: &str, assertion: &str) -> anyhow::Result<http::Response> {
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ];
    http::post_form(addr, "/token", &form, &[]).await
}

#[tokio::test]
async fn keys_come_from_the_jwks_uri_only_where_private_targets_are_allowed() -> anyhow::Result<()>
{
    let dir = std::env::temp_dir().join(format!("signet-jwks-uri-{}", std::process::id()));
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    let pki = signet_tests::TestPki::create(&dir);

    let key = keygen::generate(Algorithm::ES256, None)?;
    std::fs::write(
        www.join("jwks.json"),
        json!({"keys": [key.public_jwk]}).to_string(),
    )?;
    let der: String = key
        .private_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let encoding = EncodingKey::from_ec_der(&base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        der,
    )?);
    let server_port = signet_tests::free_port();
    let server = FileServer(
        Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-WWW",
                "-accept",
                &server_port.to_string(),
                "-cert",
            ])
            .arg(pki.cert)
            .arg("-key")
            .arg(pki.key)
            .current_dir(&www)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let jwks_uri = format!("https://127.0.0.1:{server_port}/jwks.json");
    wait_for("the JWKS server", Duration::from_secs(30), || async {
        Ok(std::net::TcpStream::connect(("127.0.0.1", server_port))
            .ok()
            .map(|_| ()))
    })
    .await?;

    // Allowed: the STS fetches the keys and the assertion authenticates.
    manifests(&dir.join("allowed"), true, &jwks_uri, "http://unused");
    let (_sts, addr, issuer) =
        start_sts(&dir.join("allowed"), &dir.join("state-allowed"), &pki.ca).await?;
    let ok = token(&addr, &assertion(&encoding, &key.kid, &issuer)).await?;
    assert_eq!(ok.status, 200, "{}", ok.body);

    // Not allowed: the same setup, but loopback is off limits: invalid_client.
    manifests(&dir.join("refused"), false, &jwks_uri, "http://unused");
    let (refusing, addr, issuer) =
        start_sts(&dir.join("refused"), &dir.join("state-refused"), &pki.ca).await?;
    let refused = token(&addr, &assertion(&encoding, &key.kid, &issuer)).await?;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(
        refusing
            .output()
            .contains("private targets are not allowed"),
        "{}",
        refusing.output()
    );
    drop(server);
    Ok(())
}
