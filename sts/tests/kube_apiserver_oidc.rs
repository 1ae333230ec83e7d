//! Kubernetes trusts Signet for people: a private control plane whose kube-apiserver has a
//! structured JWT authenticator (`apiserver.config.k8s.io/v1` AuthenticationConfiguration) for
//! the STS issuer, served over https, authenticates alice by her ID token for the `kubectl`
//! client, and `kubectl auth whoami` shows her mapped username, uid and groups. An ID token of
//! the same issuer for another client (another audience) is refused.
//!
//! docs/kubernetes-oidc.md shows the same configuration to operators; keep them in step.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use signet_tests::browserless::{CHALLENGE, VERIFIER, hidden, param};
use signet_tests::http::{self, Response};
use signet_tests::{PrivateCluster, Process, TestPki, free_port, wait_for};

use common::{copy_examples, test_dir};

const ALICE: (&str, &str) = ("alice", "correct horse battery staple");
/// The client people sign in to for kubectl; its client_id is the API server's audience.
const KUBECTL: &str = "default.kubectl";
/// Another client of the same issuer: its ID tokens are for another audience.
const OTHER: &str = "default.other-app";
/// The redirect URI kubelogin sends with `--oidc-redirect-url-hostname=127.0.0.1`: its local
/// server on port 8000, no path. The registered `http://127.0.0.1` matches it on any port.
const CALLBACK: &str = "http://127.0.0.1:8000";
/// The scopes kubelogin asks for: `openid` and the `--oidc-extra-scope`s of the docs.
const SCOPES: &str = "openid email profile groups offline_access";

/// The clients, as in docs/kubernetes-oidc.md: public (kubectl keeps no secret), PKCE, a
/// loopback redirect on any port (RFC 8252 §7.3), and the `groups` scope so that ID tokens
/// carry groups.
const CLIENTS: &str = r#"
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: kubectl}
spec:
  displayName: kubectl
  type: public
  grantTypes: [authorization_code, refresh_token]
  redirectUris: ["http://127.0.0.1"]
  allowedScopes: [openid, email, profile, groups, offline_access]
  trusted: true
---
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata: {name: other-app}
spec:
  type: public
  grantTypes: [authorization_code, refresh_token]
  redirectUris: ["http://127.0.0.1"]
  allowedScopes: [openid, email, profile, groups, offline_access]
  trusted: true
"#;

/// RBAC for the mapped group, as in docs/kubernetes-oidc.md, with a role of its own: `view`
/// gets its rules from the cluster-role aggregation controller, which this control plane
/// does not run.
const BINDING: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: namespace-reader}
rules:
- {apiGroups: [""], resources: [namespaces], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: signet-developers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: namespace-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "signet:developers"}
"#;

/// One entry of the API server's `jwt:` list, as in docs/kubernetes-oidc.md.
fn authenticator(issuer: &str, ca_pem: &str) -> String {
    let ca: String = ca_pem.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        r#"issuer:
  url: {issuer}
  certificateAuthority: |
{ca}  audiences: [{KUBECTL}]
claimValidationRules:
- expression: "has(claims.email_verified) && claims.email_verified == true"
  message: the email address must be verified
claimMappings:
  username:
    claim: email
    prefix: "signet:"
  groups:
    claim: groups
    prefix: "signet:"
  uid:
    claim: sub
"#
    )
}

/// A browser without a screen: curl over https with a cookie jar.
struct Browser {
    issuer: String,
    ca: PathBuf,
    jar: PathBuf,
}

impl Browser {
    /// GET (no form) or POST (a form) `path` of the issuer; redirects are not followed.
    async fn request(&self, path: &str, form: Option<&[(&str, &str)]>) -> anyhow::Result<Response> {
        let mut curl = tokio::process::Command::new("curl");
        // `Expect:` off: a 100 Continue would come first in the `-i` output.
        curl.args(["-sS", "-i", "--max-time", "30", "-H", "Expect:", "--cacert"])
            .arg(&self.ca)
            .arg("-b")
            .arg(&self.jar)
            .arg("-c")
            .arg(&self.jar);
        if let Some(form) = form {
            curl.arg("--data-binary").arg(http::query(form));
        }
        let out = curl.arg(format!("{}{path}", self.issuer)).output().await?;
        anyhow::ensure!(
            out.status.success(),
            "curl {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout)?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_default()
            .parse()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Ok(Response {
            status,
            headers,
            body: body.to_owned(),
        })
    }

    /// Submits the form of the page at `location` (login or consent) with `fields`.
    async fn submit(
        &self,
        location: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<Response> {
        let page = self.request(location, None).await?;
        anyhow::ensure!(
            page.status == 200,
            "{location}: {} {}",
            page.status,
            page.body
        );
        let interaction = hidden(&page.body, "interaction").unwrap_or_default();
        let csrf = hidden(&page.body, "csrf").unwrap_or_default();
        let mut form = vec![
            ("interaction", interaction.as_str()),
            ("csrf", csrf.as_str()),
        ];
        form.extend_from_slice(fields);
        self.request(action, Some(&form)).await
    }

    /// Signs alice in for `client_id` (code flow with PKCE) and returns her ID token.
    async fn id_token(&self, client_id: &str) -> anyhow::Result<String> {
        let params = [
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", SCOPES),
            ("state", "st"),
            ("nonce", "n-0"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        let mut response = self
            .request(&format!("/authorize?{}", http::query(&params)), None)
            .await?;
        let mut location = String::new();
        for _ in 0..3 {
            anyhow::ensure!(
                response.status == 303,
                "expected a redirect: {} {}",
                response.status,
                response.body
            );
            location = response.header("location").unwrap_or_default().to_owned();
            if location.starts_with("/login") {
                let credentials = [("username", ALICE.0), ("password", ALICE.1)];
                response = self.submit(&location, "/login", &credentials).await?;
            } else if location.starts_with("/consent") {
                response = self
                    .submit(&location, "/consent", &[("decision", "allow")])
                    .await?;
            } else {
                break;
            }
        }
        anyhow::ensure!(location.starts_with(CALLBACK), "{location}");
        let code =
            param(&location, "code").ok_or_else(|| anyhow::anyhow!("no code: {location}"))?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("client_id", client_id),
            ("code_verifier", VERIFIER),
        ];
        let token = self.request("/token", Some(&form)).await?;
        anyhow::ensure!(
            token.status == 200,
            "/token: {} {}",
            token.status,
            token.body
        );
        token.json()["id_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no id_token: {}", token.body))
    }
}

/// The built kubectl with `--token=TOKEN` and `args`, with a kubeconfig that holds no
/// credentials of its own (a client certificate would win over the token).
async fn kubectl_as(
    kubeconfig: &Path,
    token: &str,
    args: &[&str],
) -> anyhow::Result<std::process::Output> {
    let mut kubectl = tokio::process::Command::from(signet_tests::kubectl(kubeconfig));
    Ok(kubectl
        .args(args)
        .arg("--request-timeout=20s")
        .arg(format!("--token={token}"))
        .output()
        .await?)
}

/// `kubectl auth whoami -o json` with `token`: the SelfSubjectReview, or the error.
async fn whoami(kubeconfig: &Path, token: &str) -> anyhow::Result<serde_json::Value> {
    let out = kubectl_as(kubeconfig, token, &["auth", "whoami", "-o", "json"]).await?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[tokio::test]
async fn kube_apiserver_authenticates_sts_id_tokens_and_maps_user_and_groups() -> anyhow::Result<()>
{
    let dir = test_dir("kube-apiserver-oidc");
    let pki = TestPki::create(&dir.join("pki"));
    let manifests = dir.join("manifests");
    copy_examples(&manifests);
    std::fs::write(manifests.join("kubectl-clients.yaml"), CLIENTS)?;

    // The STS first, on a known port: the API server fetches its discovery document and keys.
    let port = free_port();
    let issuer = format!("https://127.0.0.1:{port}");
    let args = vec![
        format!("--manifests={}", manifests.display()),
        format!("--state-dir={}", dir.join("state").display()),
        format!("--issuer={issuer}"),
        format!("--listen=127.0.0.1:{port}"),
        "--metrics-addr=127.0.0.1:0".into(),
        format!("--tls-cert={}", pki.cert.display()),
        format!("--tls-key={}", pki.key.display()),
    ];
    let sts = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_signet-sts")),
        "sts-kube-oidc",
        &args,
        &[],
    )?;
    let browser = Browser {
        issuer: issuer.clone(),
        ca: pki.ca.clone(),
        jar: dir.join("cookies.txt"),
    };
    wait_for("discovery over https", Duration::from_secs(60), || async {
        let response = browser
            .request("/.well-known/openid-configuration", None)
            .await?;
        Ok((response.status == 200 && response.json()["issuer"] == issuer.as_str()).then_some(()))
    })
    .await
    .map_err(|e| e.context(sts.output()))?;

    let ca_pem = std::fs::read_to_string(&pki.ca)?;
    let cluster =
        PrivateCluster::start_with_jwt("kube-oidc", &authenticator(&issuer, &ca_pem)).await?;
    // Only the cluster and its CA: whoever calls is who the token says.
    let anonymous = cluster.dir.join("token.kubeconfig");
    std::fs::write(
        &anonymous,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: oidc\n  user: {{}}\ncontexts:\n- name: test\n  context: {{cluster: test, user: oidc}}\ncurrent-context: test\n",
            std::fs::read_to_string(cluster.dir.join("apiserver.url"))?.trim(),
            cluster.dir.join("ca.crt").display(),
        ),
    )?;

    let token = browser.id_token(KUBECTL).await?;
    let kubectl_claims = http::jwt_claims(&token);
    assert_eq!(kubectl_claims["iss"], issuer.as_str());
    assert_eq!(kubectl_claims["aud"], KUBECTL);
    assert_eq!(kubectl_claims["email"], "alice@example.com");

    // The API server loads the issuer's keys in the background and refuses tokens until then.
    let review = wait_for(
        "kubectl auth whoami with alice's ID token",
        Duration::from_secs(60),
        || async { Ok(Some(whoami(&anonymous, &token).await?)) },
    )
    .await
    .map_err(|e| {
        let log =
            std::fs::read_to_string(cluster.dir.join("kube-apiserver.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        e.context(format!(
            "kube-apiserver log (newest first):\n{}",
            tail.join("\n")
        ))
    })?;
    assert_eq!(review["kind"], "SelfSubjectReview");
    let user = &review["status"]["userInfo"];
    assert_eq!(user["username"], "signet:alice@example.com", "{review}");
    assert_eq!(user["uid"], "6f1c2a4e-alice", "{review}");
    assert_eq!(
        user["groups"],
        serde_json::json!(["signet:developers", "system:authenticated"]),
        "{review}"
    );

    // Same issuer, same person, same keys; only the audience differs: refused.
    let other = browser.id_token(OTHER).await?;
    let other_claims = http::jwt_claims(&other);
    assert_eq!(other_claims["iss"], issuer.as_str());
    assert_eq!(other_claims["sub"], kubectl_claims["sub"]);
    assert_eq!(other_claims["aud"], OTHER);
    let refused = whoami(&anonymous, &other)
        .await
        .expect_err(&format!("a token for {OTHER} is refused"));
    assert!(refused.to_string().contains("Unauthorized"), "{refused}");

    // The mapped group is what RBAC sees: alice may list namespaces once it is bound
    // to a role that allows it.
    let list = ["get", "namespaces", "-o", "name"];
    let forbidden = kubectl_as(&anonymous, &token, &list).await?;
    let stderr = String::from_utf8_lossy(&forbidden.stderr);
    assert!(
        !forbidden.status.success()
            && stderr.contains(r#"User "signet:alice@example.com" cannot list"#),
        "{stderr}"
    );
    let mut apply = tokio::process::Command::from(cluster.kubectl());
    let mut apply = apply
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = apply.stdin.take().expect("piped stdin");
        stdin.write_all(BINDING.as_bytes()).await?;
    }
    let applied = apply.wait_with_output().await?;
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let names = wait_for(
        "alice lists namespaces through signet:developers",
        Duration::from_secs(30),
        || async {
            let out = kubectl_as(&anonymous, &token, &list).await?;
            Ok(out
                .status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
        },
    )
    .await?;
    assert!(names.lines().any(|l| l == "namespace/default"), "{names}");
    // The token of the other audience stays refused, binding or not.
    assert!(whoami(&anonymous, &other).await.is_err());

    drop(cluster);
    drop(sts);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
