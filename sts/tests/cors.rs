//! CORS: the SPA's registered origin gets a grant on discovery, JWKS, token, userinfo and
//! revocation, for preflight and actual requests; any other origin gets none. The same is
//! exercised from a real page in tests/node (oidc-client-ts in Chromium).

mod common;

use signet_tests::http;

use common::{memory_manifests, replica, test_dir};

const SPA: &str = "http://127.0.0.1:5173";

#[tokio::test]
async fn registered_origins_get_a_grant_and_others_none() -> anyhow::Result<()> {
    let dir = test_dir("cors");
    memory_manifests(&dir.join("manifests"), "");
    let (_sts, addr) = replica(&dir.join("manifests"), &dir.join("state"), "cors").await?;
    let paths = [
        "/.well-known/openid-configuration",
        "/jwks",
        "/token",
        "/userinfo",
        "/revoke",
    ];
    for path in paths {
        for (origin, granted) in [
            (SPA, true),
            ("http://127.0.0.1:5174", false),
            ("https://evil.example", false),
        ] {
            let preflight = http::request(
                &addr,
                "OPTIONS",
                path,
                &[
                    ("Origin", origin),
                    ("Access-Control-Request-Method", "POST"),
                    (
                        "Access-Control-Request-Headers",
                        "authorization, content-type",
                    ),
                ],
            )
            .await?;
            let grant = preflight.header("access-control-allow-origin");
            if granted {
                assert_eq!(preflight.status, 204, "{path} {origin}");
                assert_eq!(grant, Some(origin), "{path}");
                assert!(
                    preflight
                        .header("access-control-allow-headers")
                        .is_some_and(|h| h.contains("Authorization"))
                );
            } else {
                assert_eq!((preflight.status, grant), (403, None), "{path} {origin}");
            }
        }
    }
    // Actual requests: the grant names the origin, never `*`, and varies by Origin.
    for path in ["/jwks", "/.well-known/openid-configuration"] {
        let ok = http::get_with(&addr, path, &[("Origin", SPA)]).await?;
        assert_eq!(ok.header("access-control-allow-origin"), Some(SPA));
        assert!(
            ok.headers
                .iter()
                .any(|(n, v)| n == "vary" && v.contains("Origin"))
        );
        let other = http::get_with(&addr, path, &[("Origin", "https://evil.example")]).await?;
        assert_eq!(other.status, 200, "the response itself is public");
        assert_eq!(other.header("access-control-allow-origin"), None);
    }
    let refused = http::post_form(
        &addr,
        "/token",
        &[("grant_type", "client_credentials")],
        &[("Origin", SPA)],
    )
    .await?;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("access-control-allow-origin"),
        Some(SPA),
        "errors are readable by the SPA"
    );
    // Pages are not CORS endpoints.
    let page = http::get_with(&addr, "/device", &[("Origin", SPA)]).await?;
    assert_eq!(page.header("access-control-allow-origin"), None);
    Ok(())
}
