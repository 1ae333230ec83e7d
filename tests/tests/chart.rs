//! The Helm chart (charts/signet), with helm built from its Go module: it lints and renders
//! with default values and with every option on; the API server accepts what it renders; the
//! values schema refuses a memory store shared by several STS replicas, and Sentinel with
//! Cluster; the redis store renders as one server, Sentinel or Cluster, as docs/operations.md
//! shows it; its pods pass the `restricted` Pod Security level; installed for real, each
//! ServiceAccount holds exactly the rights in the golden files, and the operator and the STS,
//! run as processes with those ServiceAccounts' tokens, take an OidcClient to Ready and issue
//! a token.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::config::Kubeconfig;
use serde_json::{Value, json};
use signet_tests::helm::{chart_dir, documents, helm, run_ok, template};
use signet_tests::{
    PrivateCluster, Process, SharedCluster, TestNamespace, repo_root, shared, wait_for,
};

const RELEASE: &str = "signet";
const TIMEOUT: Duration = Duration::from_secs(60);

fn data(name: &str) -> PathBuf {
    repo_root().join("tests/tests/data/chart").join(name)
}

fn all_on() -> String {
    data("all-on.yaml").to_string_lossy().into_owned()
}

/// Runs `cmd` with `input` on stdin.
fn with_stdin(cmd: &mut Command, input: &str) -> anyhow::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.as_bytes())?;
    Ok(child.wait_with_output()?)
}

/// `kubectl apply --server-side` of `manifests` into `ns` (dry run or for real); returns stderr
/// (warnings) and fails when kubectl does.
fn apply(
    cluster: &SharedCluster,
    ns: &str,
    manifests: &str,
    dry_run: bool,
) -> anyhow::Result<String> {
    let mut cmd = cluster.kubectl();
    cmd.args([
        "apply",
        "--server-side",
        "--field-manager=helm",
        "-n",
        ns,
        "-f",
        "-",
    ]);
    if dry_run {
        cmd.arg("--dry-run=server");
    }
    let out = with_stdin(&mut cmd, manifests)?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(
        out.status.success(),
        "kubectl apply failed:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(stderr)
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> anyhow::Result<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name} rendered"))
}

#[test]
fn lint_passes_with_default_and_all_on_values() -> anyhow::Result<()> {
    run_ok(helm().args(["lint", "--strict"]).arg(chart_dir()))?;
    run_ok(
        helm()
            .args(["lint", "--strict"])
            .arg(chart_dir())
            .args(["-f", &all_on()]),
    )?;
    Ok(())
}

#[test]
fn default_values_render_the_operator_a_token_service_and_its_sts() -> anyhow::Result<()> {
    let docs = documents(&template(RELEASE, "identity", &["--include-crds"])?)?;
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "SigningKey",
            "TokenService",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ]
    );
    // Two SigningKeys: RS256 signs ID tokens, ES256 access tokens.
    let ts = find(&docs, "TokenService", "signet")?;
    assert_eq!(ts["spec"]["idTokenSigningAlg"], "RS256");
    assert_eq!(ts["spec"]["accessTokenSigningAlg"], "ES256");
    assert_eq!(
        ts["spec"]["signingKeys"],
        json!(["signet-rs256", "signet-es256"])
    );
    assert_eq!(
        find(&docs, "SigningKey", "signet-rs256")?["spec"]["algorithm"],
        "RS256"
    );
    assert_eq!(
        find(&docs, "SigningKey", "signet-es256")?["spec"]["algorithm"],
        "ES256"
    );

    // The STS: its flags, probes on the http port, and a locked-down container.
    let sts = find(&docs, "Deployment", "signet-sts")?;
    let pod = &sts["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["args"],
        json!([
            "--token-service=signet",
            "--namespace=identity",
            "--listen=0.0.0.0:8080",
            "--metrics-addr=0.0.0.0:9091",
            "--log-format=json"
        ])
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "http");
    assert_eq!(
        container["securityContext"],
        json!({
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["topologySpreadConstraints"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        pod["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "sts"
    );
    // The memory store: one replica, never two at once.
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(sts["spec"]["strategy"]["type"], "Recreate");

    let operator = find(&docs, "Deployment", "signet-operator")?;
    assert_eq!(
        operator["spec"]["template"]["spec"]["containers"][0]["args"],
        json!([
            "--metrics-addr=0.0.0.0:9090",
            "--lease-name=signet-operator",
            "--lease-namespace=identity",
            "--lease-duration=15",
            "--log-format=json"
        ])
    );
    Ok(())
}

/// `helm template` with `args`, which must fail: its stderr.
fn refused(args: &[&str]) -> anyhow::Result<String> {
    let out = helm()
        .args(["template", RELEASE])
        .arg(chart_dir())
        .args(args)
        .output()?;
    ensure!(!out.status.success(), "helm template {args:?} was accepted");
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn values_schema_refuses_the_memory_store_with_several_replicas() -> anyhow::Result<()> {
    let two = refused(&["--set", "sts.replicas=2"])?;
    assert!(
        two.contains("values don't meet the specifications of the schema")
            && two.contains("/sts/replicas"),
        "{two}"
    );
    let hpa = refused(&["--set", "sts.autoscaling.enabled=true"])?;
    assert!(hpa.contains("/sts/autoscaling/enabled"), "{hpa}");
    // The redis store without its Secret is refused too.
    let redis = refused(&["--set", "tokenService.store.type=redis"])?;
    assert!(redis.contains("/tokenService/store/redis"), "{redis}");
    let typo = refused(&["--set", "sts.replica=2"])?;
    assert!(typo.contains("replica"), "{typo}");

    // With redis, several replicas and an HPA are fine.
    let docs = documents(&template(
        RELEASE,
        "identity",
        &[
            "--set",
            "tokenService.store.type=redis",
            "--set",
            "tokenService.store.redis.urlSecretRef.name=redis",
            "--set",
            "sts.replicas=3",
        ],
    )?)?;
    let sts = find(&docs, "Deployment", "signet-sts")?;
    assert_eq!(sts["spec"]["replicas"], 3);
    // One server: the URL alone, no topology and no waiting.
    assert_eq!(
        find(&docs, "TokenService", "signet")?["spec"]["store"],
        json!({"type": "redis", "redis": {"urlSecretRef": {"name": "redis", "key": "url"}}})
    );
    assert_eq!(
        sts["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    let docs = documents(&template(RELEASE, "identity", &["-f", &all_on()])?)?;
    let sts = find(&docs, "Deployment", "signet-sts")?;
    assert!(
        sts["spec"].get("replicas").is_none(),
        "the HPA owns replicas"
    );
    find(&docs, "HorizontalPodAutoscaler", "signet-sts")?;
    Ok(())
}

/// The `spec.store` of the TokenService that `helm template ARGS` renders.
fn rendered_store(args: &[&str]) -> anyhow::Result<Value> {
    let docs = documents(&template(RELEASE, "identity", args)?)?;
    Ok(find(&docs, "TokenService", "signet")?["spec"]["store"].clone())
}

#[test]
fn sentinel_values_render_a_sentinel_store_that_waits_for_replicas() -> anyhow::Result<()> {
    let values = data("redis-sentinel.yaml");
    let store = rendered_store(&["-f", &values.to_string_lossy()])?;
    assert_eq!(
        store,
        json!({
            "type": "redis",
            "redis": {
                "urlSecretRef": {"name": "signet-redis", "key": "url"},
                "keyPrefix": "signet:id:",
                "sentinel": {
                    "masterName": "signet",
                    "addresses": [
                        "redis-node-0.redis-headless.redis.svc:26379",
                        "redis-node-1.redis-headless.redis.svc:26379",
                        "redis-node-2.redis-headless.redis.svc:26379"
                    ],
                    "username": "signet",
                    "passwordSecretRef": {"name": "signet-redis", "key": "sentinel-password"},
                    "tls": true
                },
                "waitForReplicas": {"replicas": 2, "timeout": "500ms"},
                "caBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
            }
        })
    );
    // Only what is set: no username or password, plain sentinels.
    let store = rendered_store(&[
        "--set",
        "tokenService.store.type=redis",
        "--set",
        "tokenService.store.redis.urlSecretRef.name=redis",
        "--set",
        "tokenService.store.redis.sentinel.masterName=mymaster",
        "--set",
        "tokenService.store.redis.sentinel.addresses={10.0.0.1:26379}",
    ])?;
    assert_eq!(
        store["redis"]["sentinel"],
        json!({"masterName": "mymaster", "addresses": ["10.0.0.1:26379"], "tls": false})
    );
    assert!(store["redis"].get("waitForReplicas").is_none(), "{store}");
    assert!(store["redis"].get("caBundle").is_none(), "{store}");
    Ok(())
}

#[test]
fn cluster_values_render_a_cluster_store_from_its_seed_nodes() -> anyhow::Result<()> {
    let values = data("redis-cluster.yaml");
    let store = rendered_store(&["-f", &values.to_string_lossy()])?;
    assert_eq!(
        store,
        json!({
            "type": "redis",
            "redis": {
                "urlSecretRef": {"name": "signet-redis", "key": "url"},
                "cluster": {"nodes": [
                    "redis-cluster-0.redis-cluster-headless.redis.svc:6379",
                    "redis-cluster-1.redis-cluster-headless.redis.svc:6379",
                    "redis-cluster-2.redis-cluster-headless.redis.svc:6379"
                ]},
                // The timeout is the STS's default (250ms) when unset.
                "waitForReplicas": {"replicas": 1}
            }
        })
    );
    Ok(())
}

#[test]
fn values_schema_refuses_sentinel_with_cluster_and_malformed_topologies() -> anyhow::Result<()> {
    let sentinel = data("redis-sentinel.yaml").to_string_lossy().into_owned();
    let cluster = data("redis-cluster.yaml").to_string_lossy().into_owned();
    // Both topologies at once.
    let both = refused(&["-f", &sentinel, "-f", &cluster])?;
    assert!(
        both.contains("values don't meet the specifications of the schema")
            && both.contains("'/tokenService/store/redis': 'not' failed"),
        "{both}"
    );
    for (args, path) in [
        // A URL where host:port belongs.
        (
            "tokenService.store.redis.sentinel.addresses={redis://sentinel:26379}",
            "/tokenService/store/redis/sentinel/addresses/0",
        ),
        // No port.
        (
            "tokenService.store.redis.sentinel.addresses={sentinel}",
            "/tokenService/store/redis/sentinel/addresses/0",
        ),
        (
            "tokenService.store.redis.waitForReplicas.replicas=0",
            "/tokenService/store/redis/waitForReplicas/replicas",
        ),
        (
            "tokenService.store.redis.waitForReplicas.timeout=soon",
            "/tokenService/store/redis/waitForReplicas/timeout",
        ),
        (
            "tokenService.store.redis.sentinel.master=signet",
            "/tokenService/store/redis/sentinel",
        ),
    ] {
        let out = refused(&["-f", &sentinel, "--set", args])?;
        assert!(out.contains(&format!("'{path}'")), "{args}: {out}");
    }
    // A topology without its addresses.
    let redis = [
        "--set",
        "tokenService.store.type=redis",
        "--set",
        "tokenService.store.redis.urlSecretRef.name=redis",
    ];
    for (topology, path) in [
        (
            r#"tokenService.store.redis.sentinel={"masterName":"signet"}"#,
            "/tokenService/store/redis/sentinel",
        ),
        (
            "tokenService.store.redis.cluster={}",
            "/tokenService/store/redis/cluster",
        ),
    ] {
        let out = refused(&[&redis[..], &["--set-json", topology]].concat())?;
        assert!(
            out.contains(&format!("'{path}'")) && out.contains("missing propert"),
            "{topology}: {out}"
        );
    }
    let out = refused(&[
        "-f",
        &cluster,
        "--set",
        "tokenService.store.redis.cluster.nodes={redis-cluster-0}",
    ])?;
    assert!(
        out.contains("'/tokenService/store/redis/cluster/nodes/0'"),
        "{out}"
    );
    Ok(())
}

/// The `yaml` blocks of the section of `markdown` under the heading `heading`.
fn yaml_blocks(markdown: &str, heading: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut inside = false;
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        if line.starts_with("## ") && current.is_none() {
            inside = line == heading;
            continue;
        }
        match (&mut current, line.trim_end()) {
            (None, "```yaml") if inside => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn documented_redis_values_render_the_store_they_show() -> anyhow::Result<()> {
    let operations = std::fs::read_to_string(repo_root().join("docs/operations.md"))?;
    let blocks = yaml_blocks(&operations, "## Redis: one server, Sentinel or Cluster");
    assert_eq!(blocks.len(), 3, "one server, Sentinel and Cluster");
    for block in blocks {
        let mut cmd = helm();
        cmd.args(["template", RELEASE]).arg(chart_dir()).args([
            "--namespace",
            "identity",
            "-f",
            "-",
        ]);
        let out = with_stdin(&mut cmd, &block)?;
        ensure!(
            out.status.success(),
            "helm refused the documented values:\n{block}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let docs = documents(&String::from_utf8(out.stdout)?)?;
        let store = &find(&docs, "TokenService", "signet")?["spec"]["store"];
        // The chart's values are the TokenService's fields, as the docs say.
        let values = &documents(&block)?[0]["tokenService"]["store"];
        assert_eq!(store, values, "{block}");
    }
    Ok(())
}

#[test]
fn templated_crds_are_the_generated_ones() -> anyhow::Result<()> {
    let docs = documents(&template(
        RELEASE,
        "identity",
        &["--set", "crds.install=true"],
    )?)?;
    let mut templated: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect();
    templated.sort_by_key(|d| {
        d["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    });
    let mut generated = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart_dir().join("crds"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    for file in files {
        generated.extend(documents(&std::fs::read_to_string(file)?)?);
    }
    assert_eq!(templated.len(), generated.len());
    for (t, g) in templated.iter().zip(&generated) {
        let mut t = (*t).clone();
        let meta = t["metadata"].as_object_mut().context("metadata")?;
        assert_eq!(meta["annotations"]["helm.sh/resource-policy"], "keep");
        assert_eq!(meta["labels"]["app.kubernetes.io/managed-by"], "Helm");
        meta.remove("annotations");
        meta.remove("labels");
        assert_eq!(&t, g, "the templated CRD differs from crds/");
    }
    // Not rendered unless asked for.
    let plain = documents(&template(RELEASE, "identity", &[])?)?;
    assert!(!kinds(&plain).contains(&"CustomResourceDefinition".to_owned()));
    Ok(())
}

/// Each (apiGroup, resource, verb) that `rules` grant, resource names aside.
fn grants(rules: &Value) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for rule in rules.as_array().into_iter().flatten() {
        for group in rule["apiGroups"].as_array().into_iter().flatten() {
            for resource in rule["resources"].as_array().into_iter().flatten() {
                for verb in rule["verbs"].as_array().into_iter().flatten() {
                    out.insert(format!("{group}/{resource}:{verb}"));
                }
            }
        }
    }
    out
}

#[test]
fn chart_grants_the_operator_what_deploy_operator_rbac_grants() -> anyhow::Result<()> {
    let docs = documents(&template(RELEASE, "identity", &[])?)?;
    let mut chart = std::collections::BTreeSet::new();
    for doc in &docs {
        let operator = doc["metadata"]["labels"]["app.kubernetes.io/component"] == "operator";
        if operator && (doc["kind"] == "ClusterRole" || doc["kind"] == "Role") {
            chart.extend(grants(&doc["rules"]));
        }
    }
    let deploy = documents(&std::fs::read_to_string(
        repo_root().join("deploy/operator-rbac.yaml"),
    )?)?;
    assert_eq!(chart, grants(&deploy[0]["rules"]));
    Ok(())
}

#[tokio::test]
async fn rendered_manifests_are_accepted_by_the_api_server() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "chart-dry-run").await?.name;

    let defaults = template(RELEASE, &ns, &["--include-crds"])?;
    apply(&cluster, &ns, &defaults, true)?;

    // Every option on: the ServiceMonitor needs its CRD (a stand-in here).
    let out = cluster
        .kubectl()
        .args([
            "apply",
            "--server-side",
            "--field-manager=signet-tests",
            "-f",
        ])
        .arg(data("servicemonitor-crd.yaml"))
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the ServiceMonitor CRD served", TIMEOUT, || async {
        let out = cluster
            .kubectl()
            .args(["get", "servicemonitors", "-n", &ns])
            .output()?;
        Ok(out.status.success().then_some(()))
    })
    .await?;
    // The CRDs come from the templates here (crds.install), as `helm install --skip-crds`
    // would apply them.
    let all = template(
        RELEASE,
        &ns,
        &[
            "-f",
            &all_on(),
            "--set",
            &format!("operator.watchNamespaces={{{ns}}}"),
        ],
    )?;
    let docs = documents(&all)?;
    for kind in [
        "CustomResourceDefinition",
        "HorizontalPodAutoscaler",
        "Ingress",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "ServiceMonitor",
    ] {
        assert!(
            kinds(&docs).contains(&kind.to_owned()),
            "no {kind} rendered"
        );
    }
    apply(&cluster, &ns, &all, true)?;
    // All-on has the Sentinel store; the Cluster one passes the CRD's rules too.
    let redis_cluster = data("redis-cluster.yaml");
    let store = template(
        RELEASE,
        &ns,
        &[
            "-f",
            &redis_cluster.to_string_lossy(),
            "-s",
            "templates/tokenservice.yaml",
        ],
    )?;
    apply(&cluster, &ns, &store, true)?;
    Ok(())
}

/// A kubeconfig for ServiceAccount `ns/name` with a token from the TokenRequest API.
fn service_account_kubeconfig(
    cluster: &SharedCluster,
    ns: &str,
    name: &str,
) -> anyhow::Result<PathBuf> {
    service_account_kubeconfig_bound(cluster, ns, name, None)
}

/// [`service_account_kubeconfig`], with a token bound to Pod `pod` if given, as the kubelet
/// projects one into a pod (the API server then knows the pod's name).
fn service_account_kubeconfig_bound(
    cluster: &SharedCluster,
    ns: &str,
    name: &str,
    pod: Option<&str>,
) -> anyhow::Result<PathBuf> {
    let mut args = vec!["create", "token", name, "-n", ns, "--duration=1h"];
    if let Some(pod) = pod {
        args.extend(["--bound-object-kind=Pod", "--bound-object-name", pod]);
    }
    let out = run_ok(cluster.kubectl().args(&args))?;
    let token = String::from_utf8(out.stdout)?.trim().to_owned();
    let admin = Kubeconfig::read_from(&cluster.kubeconfig)?;
    let c = admin
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .context("no cluster in the admin kubeconfig")?;
    let server = c.server.context("no server")?;
    let ca = c
        .certificate_authority
        .context("no certificate-authority file")?;
    let path = std::env::temp_dir().join(format!("signet-chart-{ns}-{name}.kubeconfig"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: '{server}', certificate-authority: '{ca}'}}\n\
             users:\n- name: {name}\n  user: {{token: '{token}'}}\ncontexts:\n- name: test\n  context: {{cluster: test, user: {name}, namespace: {ns}}}\n\
             current-context: test\n"
        ),
    )?;
    Ok(path)
}

/// `kubectl auth can-i ARGS --as=system:serviceaccount:NS:SA -n NS`: true for "yes".
fn can_i(cluster: &SharedCluster, ns: &str, sa: &str, args: &[&str]) -> anyhow::Result<bool> {
    let out = cluster
        .kubectl()
        .args(["auth", "can-i", "-n", ns])
        .arg(format!("--as=system:serviceaccount:{ns}:{sa}"))
        // Last: a `-n` among `args` wins.
        .args(args)
        .output()?;
    match String::from_utf8_lossy(&out.stdout).trim() {
        "yes" => Ok(true),
        "no" => Ok(false),
        other => bail!(
            "can-i {args:?}: {other} {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// `kubectl auth can-i --list` for a ServiceAccount, compared with a golden file (namespace
/// name replaced by NAMESPACE, columns by single spaces, rows sorted). `SIGNET_BLESS=1` rewrites the file.
fn golden_rights(cluster: &SharedCluster, ns: &str, sa: &str, file: &str) -> anyhow::Result<()> {
    let out = run_ok(cluster.kubectl().args([
        "auth",
        "can-i",
        "--list",
        &format!("--as=system:serviceaccount:{ns}:{sa}"),
        "-n",
        ns,
    ]))?;
    let text = String::from_utf8(out.stdout)?.replace(ns, "NAMESPACE");
    // Sorted, rows and each row's verbs: the order of rules from several bindings (a verb of a
    // ClusterRole merged with one of a Role) is not part of the contract.
    let sort_verbs = |line: String| match line.rsplit_once(" [") {
        Some((head, verbs)) if verbs.ends_with(']') => {
            let mut verbs: Vec<&str> = verbs.trim_end_matches(']').split(' ').collect();
            verbs.sort();
            format!("{head} [{}]", verbs.join(" "))
        }
        _ => line,
    };
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| sort_verbs(l.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    lines[1..].sort();
    let rows: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let path = data(file);
    if std::env::var_os("SIGNET_BLESS").is_some() {
        std::fs::write(&path, &rows)?;
    }
    let golden = std::fs::read_to_string(&path)
        .with_context(|| format!("read {} (SIGNET_BLESS=1 writes it)", path.display()))?;
    assert_eq!(
        rows,
        golden,
        "rights of {sa} differ from {}",
        path.display()
    );
    Ok(())
}

/// A Pod of `deployment`'s template, as the ReplicaSet controller would create it.
fn pod_of(deployment: &Value, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": deployment["spec"]["template"]["metadata"]["labels"]},
        "spec": deployment["spec"]["template"]["spec"],
    })
}

fn dry_run_create(cluster: &SharedCluster, ns: &str, object: &Value) -> anyhow::Result<Output> {
    with_stdin(
        cluster
            .kubectl()
            .args(["create", "--dry-run=server", "-n", ns, "-f", "-"]),
        &object.to_string(),
    )
}

/// The flags of a rendered Deployment's container, with the listen addresses on loopback.
fn args_on_loopback(deployment: &Value, listen: &str) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|a| {
            if a.starts_with("--metrics-addr=") {
                "--metrics-addr=127.0.0.1:0".to_owned()
            } else if a.starts_with("--listen=") {
                format!("--listen={listen}")
            } else {
                a.to_owned()
            }
        })
        .collect()
}

#[tokio::test]
async fn installed_chart_grants_least_privilege_that_suffices() -> anyhow::Result<()> {
    let cluster = shared().await?;
    let client = cluster.client().await?;
    let ns = TestNamespace::create(&client, "chart-install").await?.name;
    // The restricted Pod Security level, enforced (pods) and warned about (Deployments).
    run_ok(cluster.kubectl().args([
        "label",
        "namespace",
        &ns,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    ]))?;

    // The operator is scoped to this namespace: an operator of all namespaces would serve
    // other tests' objects on this shared control plane.
    let manifests = template(
        RELEASE,
        &ns,
        &["--set", &format!("operator.watchNamespaces={{{ns}}}")],
    )?;
    let warnings = apply(&cluster, &ns, &manifests, false)?;
    assert!(!warnings.contains("PodSecurity"), "{warnings}");
    let docs = documents(&manifests)?;

    // Pods of both templates are admitted under `restricted`; a pod that is not, is refused
    // (so the level is really enforced here).
    for name in ["signet-operator", "signet-sts"] {
        let pod = pod_of(find(&docs, "Deployment", name)?, name);
        let out = dry_run_create(&cluster, &ns, &pod)?;
        assert!(
            out.status.success(),
            "pod of {name} refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut loose = pod_of(find(&docs, "Deployment", "signet-sts")?, "loose");
    loose["spec"]["containers"][0]["securityContext"] = json!({"allowPrivilegeEscalation": true});
    let out = dry_run_create(&cluster, &ns, &loose)?;
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("violates PodSecurity"),
        "a privilege-escalating pod was admitted"
    );

    // The rights of each ServiceAccount, whole.
    golden_rights(&cluster, &ns, "signet-operator", "rights-operator.txt")?;
    golden_rights(&cluster, &ns, "signet-sts", "rights-sts.txt")?;

    // And explicitly what they may not do.
    let sts = |args: &[&str]| can_i(&cluster, &ns, "signet-sts", args);
    assert!(sts(&["get", "secret/signet-snapshot"])?);
    assert!(sts(&["watch", "secret/signet-snapshot-7"])?);
    assert!(!sts(&["list", "secrets"])?, "the STS lists all Secrets");
    assert!(
        !sts(&["get", "secret/orders-worker-oidc"])?,
        "the STS reads another Secret"
    );
    assert!(!sts(&["get", "secret/signet-snapshot-8"])?);
    assert!(!sts(&["get", "tokenservices.signet.dev"])?);
    // Workload identity: it may have ServiceAccount tokens reviewed, and read nothing for it.
    assert!(sts(&["create", "tokenreviews.authentication.k8s.io"])?);
    assert!(!sts(&[
        "create",
        "subjectaccessreviews.authorization.k8s.io"
    ])?);
    assert!(!sts(&["get", "serviceaccounts"])?);
    assert!(!sts(&["create", "serviceaccounts", "--subresource=token"])?);
    let op = |args: &[&str]| can_i(&cluster, &ns, "signet-operator", args);
    assert!(op(&["create", "secrets"])?);
    assert!(op(&[
        "patch",
        "tokenservices.signet.dev",
        "--subresource=status"
    ])?);
    assert!(
        !op(&["patch", "tokenservices.signet.dev"])?,
        "the operator edits specs"
    );
    assert!(!op(&["create", "pods"])?);
    assert!(!op(&["create", "serviceaccounts", "--subresource=token"])?);
    assert!(!op(&["create", "rolebindings"])?);
    assert!(!op(&["create", "clusterrolebindings"])?);
    assert!(!op(&["bind", "clusterroles"])?);
    assert!(!op(&["escalate", "roles"])?);
    assert!(!op(&["delete", "leases"])?);
    assert!(!op(&["patch", "lease/other"])?);
    // Scoped to its namespaces: nothing in another.
    assert!(!op(&["list", "secrets", "-n", "default"])?);

    // Least privilege proven by use: the operator and the STS run with exactly these rights.
    let operator_kubeconfig = service_account_kubeconfig(&cluster, &ns, "signet-operator")?;
    // The STS as in its pod: a Pod object of its template (no kubelet runs it here) and a
    // token bound to it, so the admission policy on its report sees the pod's name.
    const STS_POD: &str = "signet-sts-0";
    let pod = pod_of(find(&docs, "Deployment", "signet-sts")?, STS_POD);
    with_stdin(
        cluster.kubectl().args(["create", "-n", &ns, "-f", "-"]),
        &pod.to_string(),
    )?;
    let pod_uid = run_ok(cluster.kubectl().args([
        "get",
        "pod",
        STS_POD,
        "-n",
        &ns,
        "-o",
        "jsonpath={.metadata.uid}",
    ]))?;
    let pod_uid = String::from_utf8(pod_uid.stdout)?;
    let sts_kubeconfig =
        service_account_kubeconfig_bound(&cluster, &ns, "signet-sts", Some(STS_POD))?;
    let operator_args = args_on_loopback(find(&docs, "Deployment", "signet-operator")?, "");
    let operator = Process::spawn(
        &signet_tests::workspace_bin("signet-operator"),
        "chart-operator",
        &operator_args,
        &[
            ("KUBECONFIG", &operator_kubeconfig.to_string_lossy()),
            ("POD_NAME", "signet-operator-0"),
            ("POD_NAMESPACE", &ns),
        ],
    )?;
    let addr = format!("127.0.0.1:{}", signet_tests::free_port());
    let sts_args = args_on_loopback(find(&docs, "Deployment", "signet-sts")?, &addr);
    let sts_process = Process::spawn(
        &signet_tests::workspace_bin("signet-sts"),
        "chart-sts",
        &sts_args,
        &[
            ("KUBECONFIG", &sts_kubeconfig.to_string_lossy()),
            ("POD_NAME", STS_POD),
            ("POD_UID", &pod_uid),
        ],
    )?;
    let examples = repo_root().join("examples");
    run_ok(
        cluster
            .kubectl()
            .args(["apply", "--server-side", "-n", &ns, "-f"])
            .arg(examples.join("api-scope.yaml"))
            .arg("-f")
            .arg(examples.join("clients.yaml")),
    )?;
    // Ready: in the snapshot, and served by the one live replica, which reported so.
    let ready = wait_for("OidcClient orders-worker Ready", TIMEOUT, || async {
        let out = cluster
            .kubectl()
            .args([
                "get",
                "oidcclient/orders-worker",
                "-n",
                &ns,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ])
            .output()?;
        Ok((String::from_utf8_lossy(&out.stdout) == "True").then_some(()))
    })
    .await;
    if let Err(error) = ready {
        bail!("{error}\noperator log:\n{}", operator.output());
    }
    // The NOTES' next command.
    run_ok(cluster.kubectl().args([
        "wait",
        "--for=condition=Ready",
        "tokenservice/signet",
        "-n",
        &ns,
        "--timeout=30s",
    ]))?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let credentials = secrets
        .get("orders-worker-oidc")
        .await?
        .data
        .unwrap_or_default();
    let text = |key: &str| String::from_utf8(credentials[key].0.clone());
    let (id, client_secret) = (text("client_id")?, text("client_secret")?);
    if let Err(error) = signet_tests::wait_ready(&addr).await {
        bail!("{error}\nSTS log:\n{}", sts_process.output());
    }
    let response = wait_for("a client_credentials token", TIMEOUT, || async {
        let r = signet_tests::http::post_form(
            &addr,
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &client_secret),
            ],
            &[],
        )
        .await?;
        Ok((r.status == 200).then_some(r))
    })
    .await?;
    assert!(
        response.json()["access_token"].is_string(),
        "{}",
        response.body
    );
    // The replica's report is its own Lease; the admission policy holds it to that one: not
    // another name, not the operator's leader Lease, and not without a pod-bound token.
    let as_sts = signet_tests::client_for(&sts_kubeconfig).await?;
    let leases: Api<Lease> = Api::namespaced(as_sts, &ns);
    Api::<Lease>::namespaced(client.clone(), &ns)
        .get(&format!("signet-sts-{STS_POD}"))
        .await
        .context("its report")?;
    let other = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "signet-sts-other"}});
    let params = kube::api::PatchParams::apply("attacker").force();
    for name in ["signet-sts-other", "signet-operator"] {
        let mut lease = other.clone();
        lease["metadata"]["name"] = name.into();
        let refused = leases
            .patch(name, &params, &kube::api::Patch::Apply(&lease))
            .await;
        let message = format!("{refused:?}");
        assert!(
            message.contains("writes only its own report"),
            "{name}: {message}"
        );
    }
    // Its own Lease, but posing as another replica, for ever, with no owner or for another
    // TokenService: refused.
    let own_name = format!("signet-sts-{STS_POD}");
    for (why, change) in [
        (
            "another replica's name",
            json!({"spec": {"holderIdentity": "signet-sts-1"}}),
        ),
        (
            "a lease for ever",
            json!({"spec": {"leaseDurationSeconds": 100_000_000}}),
        ),
        ("no owner", json!({"metadata": {"ownerReferences": null}})),
        (
            "another TokenService",
            json!({"metadata": {"labels": {"signet.dev/token-service": "other"}}}),
        ),
    ] {
        let refused = leases
            .patch(
                &own_name,
                &Default::default(),
                &kube::api::Patch::Merge(&change),
            )
            .await;
        let message = format!("{refused:?}");
        assert!(message.contains("names its own pod"), "{why}: {message}");
    }
    let deleted = leases.delete("signet-operator", &Default::default()).await;
    assert!(
        format!("{deleted:?}").contains("writes only its own report"),
        "the operator's Lease deleted: {deleted:?}"
    );
    let unbound =
        signet_tests::client_for(&service_account_kubeconfig(&cluster, &ns, "signet-sts")?).await?;
    let own = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": format!("signet-sts-{STS_POD}")}});
    let refused = Api::<Lease>::namespaced(unbound, &ns)
        .patch(
            &format!("signet-sts-{STS_POD}"),
            &params,
            &kube::api::Patch::Apply(&own),
        )
        .await;
    assert!(
        format!("{refused:?}").contains("writes only its own report"),
        "{refused:?}"
    );

    // The operator published the JWKS ConfigMap and wrote status with these rights.
    run_ok(
        cluster
            .kubectl()
            .args(["get", "configmap/signet-jwks", "-n", &ns]),
    )?;
    for (who, log) in [
        ("operator", operator.output()),
        ("STS", sts_process.output()),
    ] {
        assert!(
            !log.contains("forbidden"),
            "the {who} was refused something:\n{log}"
        );
    }
    Ok(())
}

/// helm against the cluster of `kubeconfig`; a hang fails within a minute.
fn helm_on(kubeconfig: &std::path::Path) -> Command {
    let mut cmd = helm();
    cmd.env("KUBECONFIG", kubeconfig).args(["--timeout", "60s"]);
    cmd
}

#[tokio::test]
async fn helm_installs_and_the_documented_crd_upgrades_work() -> anyhow::Result<()> {
    // A control plane of its own, without the CRDs: this test installs them by helm.
    let cluster = PrivateCluster::start_without_crds("chart-helm").await?;
    let kubectl = || cluster.kubectl();
    let names: Vec<String> = signet_crds::crd::all()
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    let crd_annotations = |name: &str| -> anyhow::Result<String> {
        let out =
            run_ok(kubectl().args(["get", "crd", name, "-o", "jsonpath={.metadata.annotations}"]))?;
        Ok(String::from_utf8(out.stdout)?)
    };
    let kc = cluster.kubeconfig.clone();
    let chart = chart_dir();

    // docs/install.md: the first install; Helm creates the CRDs from crds/.
    let out = run_ok(helm_on(&kc).args(["install", RELEASE]).arg(&chart).args([
        "-n",
        "identity",
        "--create-namespace",
    ]))?;
    let notes = String::from_utf8(out.stdout)?;
    assert!(
        notes.contains("Issuer: https://signet.example.com")
            && notes.contains("kubectl -n identity wait --for=condition=Ready tokenservice/signet"),
        "{notes}"
    );
    assert!(
        notes.contains("sts.trustedProxies is empty"),
        "the NOTES warn that every person shares the proxy's budgets: {notes}"
    );
    run_ok(kubectl().args([
        "get",
        "tokenservice/signet",
        "signingkey/signet-rs256",
        "-n",
        "identity",
    ]))?;
    assert!(!crd_annotations("tokenservices.signet.dev")?.contains("meta.helm.sh"));

    // Upgrading the CRDs by hand, as the NOTES say.
    run_ok(
        kubectl()
            .args(["apply", "--server-side", "-f"])
            .arg(chart.join("crds")),
    )?;

    // Handing the CRDs to Helm: refused without --take-ownership, since crds/ made them.
    let out = helm_on(&kc)
        .args(["upgrade", RELEASE])
        .arg(&chart)
        .args([
            "-n",
            "identity",
            "--reuse-values",
            "--set",
            "crds.install=true",
        ])
        .output()?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid ownership metadata"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_ok(helm_on(&kc).args(["upgrade", RELEASE]).arg(&chart).args([
        "-n",
        "identity",
        "--reuse-values",
        "--set",
        "crds.install=true",
        "--set",
        "sts.trustedProxies={10.244.0.0/16}",
        "--take-ownership",
    ]))?;
    let notes = String::from_utf8(out.stdout)?;
    assert!(
        notes.contains("Issuer:") && !notes.contains("sts.trustedProxies is empty"),
        "{notes}"
    );
    let annotations = crd_annotations("tokenservices.signet.dev")?;
    assert!(
        annotations.contains(r#""meta.helm.sh/release-name":"signet""#)
            && annotations.contains(r#""helm.sh/resource-policy":"keep""#),
        "{annotations}"
    );
    // Later upgrades carry the CRDs along.
    run_ok(helm_on(&kc).args(["upgrade", RELEASE]).arg(&chart).args([
        "-n",
        "identity",
        "--reuse-values",
    ]))?;

    // A second TokenService in another namespace, without a second operator.
    run_ok(helm_on(&kc).args(["install", "team-b"]).arg(&chart).args([
        "-n",
        "team-b",
        "--create-namespace",
        "--set",
        "operator.enabled=false",
        "--set",
        "tokenService.name=team-b",
        "--set",
        "tokenService.issuer=https://team-b.example.com",
    ]))?;
    run_ok(kubectl().args([
        "get",
        "tokenservice/team-b",
        "deployment/team-b-signet-sts",
        "-n",
        "team-b",
    ]))?;

    // Uninstalling keeps the CRDs (and so everyone's objects).
    run_ok(helm_on(&kc).args(["uninstall", RELEASE, "-n", "identity"]))?;
    run_ok(kubectl().args(["get", "crd"]).args(&names))?;
    run_ok(kubectl().args(["get", "tokenservice/team-b", "-n", "team-b"]))?;
    Ok(())
}
