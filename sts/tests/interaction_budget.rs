//! One source cannot make the STS keep interactions without bound (issue 19, item 1): past
//! `--interactions-per-minute` new sign-ins from one address get a 429 page and store nothing,
//! while other addresses are served as before. And a page the victim visits cannot spend the
//! victim's budget with `<img src=".../authorize?...">` tags: a browser's subresource request
//! (Fetch Metadata `Sec-Fetch-Mode` other than `navigate`) never starts an interaction. The
//! addresses come through X-Forwarded-For from a trusted proxy (loopback here).

mod common;

use signet_tests::http;

use common::{code_params, memory_manifests, replica_with, test_dir};

const WEB: &str = "default.web-app";
const CALLBACK: &str = "https://app.example.com/callback";

async fn authorize(addr: &str, from: &str) -> anyhow::Result<http::Response> {
    authorize_as(addr, from, &[]).await
}

async fn authorize_as(
    addr: &str,
    from: &str,
    fetch: &[(&str, &str)],
) -> anyhow::Result<http::Response> {
    let path = format!(
        "/authorize?{}",
        http::query(&code_params(WEB, CALLBACK, "openid"))
    );
    let mut headers = vec![("X-Forwarded-For", from)];
    headers.extend_from_slice(fetch);
    http::get_with(addr, &path, &headers).await
}

#[tokio::test]
async fn one_source_is_held_to_its_budget_of_new_interactions() -> anyhow::Result<()> {
    let dir = test_dir("interaction-budget");
    memory_manifests(&dir.join("manifests"), "");
    let args = [
        "--trusted-proxies=127.0.0.1/32",
        "--interactions-per-minute=5",
    ];
    let (_sts, addr) = replica_with(
        &dir.join("manifests"),
        &dir.join("state"),
        "interaction-budget",
        &args,
    )
    .await?;

    for i in 0..5 {
        let r = authorize(&addr, "203.0.113.7").await?;
        let location = r.header("location").unwrap_or_default();
        assert!(
            location.starts_with("/login?"),
            "sign-in {i}: {} {location}",
            r.status
        );
    }
    let refused = authorize(&addr, "203.0.113.7").await?;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.header("location"), None);
    assert!(refused.body.contains("Too many"), "{}", refused.body);
    // Another address is not held to that one's budget.
    let other = authorize(&addr, "198.51.100.9").await?;
    assert!(
        other
            .header("location")
            .unwrap_or_default()
            .starts_with("/login?"),
        "{} {}",
        other.status,
        other.body
    );

    // One IPv6 /64 is one source, whichever of its addresses a request comes from.
    for i in 1..=5 {
        let r = authorize(&addr, &format!("2001:db8:9:1::{i:x}")).await?;
        assert!(
            r.header("location")
                .unwrap_or_default()
                .starts_with("/login?"),
            "{} {}",
            r.status,
            r.body
        );
    }
    let rotated = authorize(&addr, "2001:db8:9:1:abcd::1").await?;
    assert_eq!(rotated.status, 429, "same /64: {}", rotated.body);

    // A page the victim visits fires image requests at /authorize from the victim's
    // browser (Chromium's Fetch Metadata for an <img>): none starts an interaction, so the
    // victim's own sign-in from the same address still works afterwards.
    let image = [
        ("Sec-Fetch-Mode", "no-cors"),
        ("Sec-Fetch-Dest", "image"),
        ("Sec-Fetch-Site", "cross-site"),
    ];
    for _ in 0..10 {
        let r = authorize_as(&addr, "192.0.2.44", &image).await?;
        assert_eq!(r.status, 400, "a subresource request: {}", r.body);
        assert_eq!(r.header("location"), None);
    }
    let navigation = [
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-Dest", "document"),
        ("Sec-Fetch-Site", "cross-site"),
    ];
    let victim = authorize_as(&addr, "192.0.2.44", &navigation).await?;
    assert!(
        victim
            .header("location")
            .unwrap_or_default()
            .starts_with("/login?"),
        "the victim's own sign-in: {} {}",
        victim.status,
        victim.body
    );
    Ok(())
}
