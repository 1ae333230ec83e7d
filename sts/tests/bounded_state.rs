//! What an anonymous client can make the STS keep (issue 19, item 1): every authorization
//! parameter that an interaction stores has a length cap, so `GET /authorize` with a 60 KB
//! `state` is refused with an error page before anything is stored, while one at the cap
//! still starts a sign-in. Raw HTTP against one standalone STS.

mod common;

use signet_tests::browserless::Person;

use common::{Standalone, code_params};

const WEB: &str = "default.web-app";
const CALLBACK: &str = "https://app.example.com/callback";

#[tokio::test]
async fn over_long_authorization_parameters_are_refused_before_anything_is_stored()
-> anyhow::Result<()> {
    let sts = Standalone::start("bounded-state", "").await?;
    let person = Person::default();
    let at_cap = "s".repeat(2048);
    let over = "s".repeat(60 * 1024);
    for name in ["state", "nonce", "login_hint"] {
        let mut params = code_params(WEB, CALLBACK, "openid");
        params.retain(|(k, _)| *k != name);
        params.push((name, over.as_str()));
        let refused = person.authorize(&sts.addr, &params).await?;
        assert_eq!(refused.status, 400, "{name} of 60 KB: {}", refused.status);
        assert_eq!(
            refused.header("location"),
            None,
            "{name}: no redirect, no interaction"
        );
        assert!(
            refused.body.contains("too long"),
            "{name}: {}",
            refused.body
        );

        let mut params = code_params(WEB, CALLBACK, "openid");
        params.retain(|(k, _)| *k != name);
        params.push((name, at_cap.as_str()));
        let started = person.authorize(&sts.addr, &params).await?;
        let location = started.header("location").unwrap_or_default();
        assert!(
            started.status == 303 && location.starts_with("/login?"),
            "{name} at the cap still signs in: {} {location}",
            started.status
        );
    }
    Ok(())
}
