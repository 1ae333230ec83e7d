//! Bad input at the token endpoint gets the right RFC 6749 error and status, never a 500.

use std::path::Path;

use signet_tests::{Process, http, repo_root};

struct Sts {
    _process: Process,
    addr: String,
    secret: String,
}

async fn start() -> anyhow::Result<Sts> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let state =
        std::env::temp_dir().join(format!("signet-bad-input-{}-{port}", std::process::id()));
    let args = vec![
        format!("--manifests={}", repo_root().join("examples").display()),
        format!("--state-dir={}", state.display()),
        format!("--listen={addr}"),
        "--metrics-addr=127.0.0.1:0".into(),
    ];
    let process = Process::spawn(
        Path::new(env!("CARGO_BIN_EXE_signet-sts")),
        "sts-bad-input",
        &args,
        &[],
    )?;
    signet_tests::wait_ready(&addr).await?;
    let creds: serde_json::Value = serde_json::from_slice(&std::fs::read(
        state.join("clients/default.orders-worker.json"),
    )?)?;
    Ok(Sts {
        _process: process,
        addr,
        secret: creds["client_secret"].as_str().unwrap().to_owned(),
    })
}

const ID: &str = "default.orders-worker";

/// A case: name, body, extra headers, expected status and error code.
type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a str)>, u16, &'a str);

#[tokio::test]
async fn bad_requests_get_oauth_errors_and_never_a_500() -> anyhow::Result<()> {
    let sts = start().await?;
    let form = |extra: &str| {
        format!(
            "grant_type=client_credentials&client_id={ID}&client_secret={}{extra}",
            sts.secret
        )
    };
    let basic = http::basic_auth(ID, &sts.secret);
    let urlencoded = "application/x-www-form-urlencoded";
    let cases: Vec<Case> = vec![
        (
            "non-UTF-8 body",
            b"grant_type=\xff\xfe".to_vec(),
            vec![],
            400,
            "invalid_request",
        ),
        (
            "percent-encoded non-UTF-8",
            form("&scope=%FF").into_bytes(),
            vec![],
            400,
            "invalid_request",
        ),
        (
            "repeated parameter",
            form("&scope=orders.read&scope=orders.read").into_bytes(),
            vec![],
            400,
            "invalid_request",
        ),
        (
            "two authentication methods",
            form("").into_bytes(),
            vec![("Authorization", basic.as_str())],
            400,
            "invalid_request",
        ),
        (
            "no authentication",
            b"grant_type=client_credentials".to_vec(),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "unknown client",
            b"grant_type=client_credentials&client_id=nobody&client_secret=x".to_vec(),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "wrong secret",
            format!("grant_type=client_credentials&client_id={ID}&client_secret=wrong")
                .into_bytes(),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "missing grant_type",
            format!("client_id={ID}&client_secret={}", sts.secret).into_bytes(),
            vec![],
            400,
            "invalid_request",
        ),
        (
            "unknown grant",
            form("")
                .replace("client_credentials", "password")
                .into_bytes(),
            vec![],
            400,
            "unsupported_grant_type",
        ),
        (
            "scope not allowed",
            form("&scope=profile").into_bytes(),
            vec![],
            400,
            "invalid_scope",
        ),
        (
            "unknown resource",
            form("&resource=https%3A%2F%2Fevil.example").into_bytes(),
            vec![],
            400,
            "invalid_target",
        ),
        (
            "garbage Authorization",
            b"grant_type=client_credentials".to_vec(),
            vec![("Authorization", "Basic !!!")],
            401,
            "invalid_client",
        ),
    ];
    let mut failures = Vec::new();
    for (name, body, headers, status, error) in cases {
        let r = http::post(&sts.addr, "/token", urlencoded, &body, &headers).await?;
        if r.status != status
            || r.json()["error"] != error
            || r.header("cache-control") != Some("no-store")
        {
            failures.push(format!("{name}: {} {}", r.status, r.body));
        }
        if status == 401 && r.header("www-authenticate").is_none() {
            failures.push(format!("{name}: 401 without WWW-Authenticate"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // A body over the limit is refused before parsing.
    let huge = vec![b'a'; 64 * 1024];
    assert_eq!(
        http::post(&sts.addr, "/token", urlencoded, &huge, &[])
            .await?
            .status,
        413
    );
    // GET on a POST-only endpoint.
    assert_eq!(http::get(&sts.addr, "/token").await?.status, 405);
    // The near miss: the same request, well formed, works.
    let ok = http::post(
        &sts.addr,
        "/token",
        urlencoded,
        form("&scope=orders.read").as_bytes(),
        &[],
    )
    .await?;
    assert_eq!(ok.status, 200, "{}", ok.body);
    Ok(())
}
