//! Password guessing (issue 19, item 4), driven over HTTP with the addresses a trusted proxy
//! (loopback here) names in X-Forwarded-For:
//! - a flood of wrong passwords from many addresses fills the password pool, and a person
//!   whose address has not been failing still signs in;
//! - parallel guesses from one address each see the ones before them, so exactly the budget is
//!   checked and the rest are refused with a page, the right password included;
//! - a username attacked from everywhere is only slowed: its owner signs in from a clean
//!   address.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use signet_tests::browserless::Person;
use signet_tests::{Process, wait_for};

use common::{code_params, memory_manifests, replica_with, test_dir};

const WEB: &str = "default.web-app";
const CALLBACK: &str = "https://app.example.com/callback";
const PASSWORD: &str = "correct horse battery staple";

/// A standalone STS on the examples behind a trusted proxy (loopback), with `extra_args`.
async fn sts(test: &str, extra_args: &[&str]) -> anyhow::Result<(Process, String)> {
    let dir = test_dir(test);
    memory_manifests(&dir.join("manifests"), "");
    let mut args = vec![
        "--trusted-proxies=127.0.0.1/32",
        "--interactions-per-minute=100000",
    ];
    args.extend_from_slice(extra_args);
    replica_with(&dir.join("manifests"), &dir.join("state"), test, &args).await
}

/// A browser from `address` on the login page of a fresh sign-in; returns it and the page's
/// hidden fields.
async fn at_login(addr: &str, address: &str) -> anyhow::Result<(Person, String, String)> {
    let person = Person::from_address(address);
    let started = person
        .authorize(addr, &code_params(WEB, CALLBACK, "openid"))
        .await?;
    let location = started.header("location").unwrap_or_default().to_owned();
    anyhow::ensure!(
        location.starts_with("/login?"),
        "{} {location}",
        started.status
    );
    let page = person.get(addr, &location).await?;
    anyhow::ensure!(page.status == 200, "login page: {}", page.status);
    let field = |name| signet_tests::browserless::hidden(&page.body, name).unwrap_or_default();
    Ok((person.clone(), field("interaction"), field("csrf")))
}

/// Alice, in a fresh browser from `address`, signs in with her password and lands at the
/// client with a code.
async fn alice_signs_in(addr: &str, address: &str) -> anyhow::Result<()> {
    let landed = Person::from_address(address)
        .sign_in(
            addr,
            &code_params(WEB, CALLBACK, "openid"),
            "alice",
            PASSWORD,
        )
        .await?;
    anyhow::ensure!(
        landed.starts_with(CALLBACK) && landed.contains("code="),
        "from {address}: {landed}"
    );
    Ok(())
}

/// Posts the login form of `interaction` as `username` with `password`; the status and body.
async fn attempt(
    person: &mut Person,
    addr: &str,
    (interaction, csrf): (&str, &str),
    username: &str,
    password: &str,
) -> anyhow::Result<signet_tests::http::Response> {
    let form = [
        ("interaction", interaction),
        ("csrf", csrf),
        ("username", username),
        ("password", password),
    ];
    person.post(addr, "/login", &form).await
}

#[tokio::test]
async fn a_person_signs_in_while_many_addresses_flood_the_password_form() -> anyhow::Result<()> {
    // The defaults: one hashing thread on this machine and a queue of 64.
    let (_sts, addr) = sts("login-flood", &[]).await?;

    // 8 addresses, 9 guessers each: more than the queue holds, all the time.
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<BTreeMap<u16, usize>>> = Arc::default();
    let mut flood = Vec::new();
    for a in 0..8 {
        for w in 0..9 {
            let (addr, stop, seen) = (addr.clone(), stop.clone(), seen.clone());
            flood.push(tokio::spawn(async move {
                let address = format!("198.51.100.{}", a + 1);
                let (mut person, interaction, csrf) = at_login(&addr, &address).await?;
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let username = format!("guess-{a}-{w}-{i}");
                    let r =
                        attempt(&mut person, &addr, (&interaction, &csrf), &username, "x").await?;
                    *seen.lock().unwrap().entry(r.status).or_default() += 1;
                    i += 1;
                }
                anyhow::Ok(())
            }));
        }
    }
    // The pool is full once some guess is turned away.
    wait_for(
        "the flood to fill the password pool",
        Duration::from_secs(60),
        || {
            let full = seen.lock().unwrap().contains_key(&503);
            async move { anyhow::Ok(full.then_some(())) }
        },
    )
    .await?;

    // Meanwhile, two people from addresses that have not been failing sign in.
    for n in 1..=2 {
        alice_signs_in(&addr, &format!("203.0.113.{n}")).await?;
    }
    stop.store(true, Ordering::Relaxed);
    for guesser in flood {
        guesser.await??;
    }
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.keys().all(|status| [401, 429, 503].contains(status)),
        "no guess got in: {seen:?}"
    );
    assert!(
        seen.get(&401).copied().unwrap_or(0) > 0,
        "guesses were checked: {seen:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_address_past_its_budget_is_refused_and_a_username_is_only_slowed() -> anyhow::Result<()>
{
    let (_sts, addr) = sts(
        "login-budget",
        &[
            "--login-failures-per-user-address=3",
            "--login-failures-per-address=5",
        ],
    )
    .await?;

    // Ten guesses at once for alice from one address: exactly three are checked.
    let (person, interaction, csrf) = at_login(&addr, "198.51.100.7").await?;
    let guesses = (0..10).map(|_| {
        let (mut person, addr) = (person.clone(), addr.clone());
        let (interaction, csrf) = (interaction.clone(), csrf.clone());
        async move { attempt(&mut person, &addr, (&interaction, &csrf), "alice", "wrong").await }
    });
    let mut statuses = Vec::new();
    for r in futures::future::join_all(guesses).await {
        let r = r?;
        if r.status == 429 {
            assert!(
                r.body.contains("Too many sign-ins have failed"),
                "{}",
                r.body
            );
            assert_eq!(r.header("retry-after"), Some("900"));
        }
        statuses.push(r.status);
    }
    statuses.sort();
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);

    // The right password from there is refused too, unchecked; so is another username (the
    // address is past its own budget).
    let mut there = person.clone();
    let right = attempt(&mut there, &addr, (&interaction, &csrf), "alice", PASSWORD).await?;
    assert_eq!(right.status, 429, "{}", right.body);
    assert!(there.session().is_none(), "no session");
    let other = attempt(&mut there, &addr, (&interaction, &csrf), "bob", "wrong").await?;
    assert_eq!(other.status, 429);

    // Alice, from an address that has not been failing: slowed by her username's three
    // failures (one second), never refused.
    let started = std::time::Instant::now();
    alice_signs_in(&addr, "203.0.113.50").await?;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "slowed by the username's failures"
    );
    Ok(())
}

/// An attacker with an IPv6 network (a /64 is what one home or one VM gets) takes a new address
/// for every guess: the budget per address holds for the whole /64, for failed sign-ins and for
/// new interactions alike.
#[tokio::test]
async fn guesses_from_one_ipv6_network_share_one_budget() -> anyhow::Result<()> {
    let (_sts, addr) = sts("login-ipv6", &["--login-failures-per-address=5"]).await?;
    for i in 1..=5 {
        let address = format!("2001:db8:1:2::{i:x}");
        let (mut person, interaction, csrf) = at_login(&addr, &address).await?;
        let guess = attempt(&mut person, &addr, (&interaction, &csrf), "mallory", "x").await?;
        assert_eq!(guess.status, 401, "guess {i}: {}", guess.body);
    }
    let (mut person, interaction, csrf) = at_login(&addr, "2001:db8:1:2:ffff::9").await?;
    let refused = attempt(&mut person, &addr, (&interaction, &csrf), "mallory", "x").await?;
    assert_eq!(refused.status, 429, "same /64: {}", refused.body);
    // The next network is another source.
    let (mut person, interaction, csrf) = at_login(&addr, "2001:db8:1:3::1").await?;
    let other = attempt(&mut person, &addr, (&interaction, &csrf), "mallory", "x").await?;
    assert_eq!(other.status, 401, "{}", other.body);
    Ok(())
}

/// A page the victim visits makes the victim's browser post login forms (with an interaction
/// and CSRF token the attacker got for itself) to spend the victim's budgets: refused as
/// another browser's form before anything is counted, so the victim then signs in at once.
#[tokio::test]
async fn forms_posted_through_the_victims_browser_spend_none_of_its_budget() -> anyhow::Result<()> {
    let (_sts, addr) = sts(
        "login-cross-site",
        &[
            "--login-failures-per-user-address=3",
            "--login-failures-per-address=3",
        ],
    )
    .await?;
    let (_, interaction, csrf) = at_login(&addr, "198.51.100.66").await?;
    // The victim's browser, with a sign-in of its own started (so it has a binding cookie).
    let (mut victim, _, _) = at_login(&addr, "203.0.113.80").await?;
    for i in 0..10 {
        let r = attempt(&mut victim, &addr, (&interaction, &csrf), "alice", "wrong").await?;
        assert_eq!(r.status, 403, "post {i}: {}", r.body);
    }
    // Had the ten posts counted, this address would be past both budgets of three.
    alice_signs_in(&addr, "203.0.113.80").await?;
    Ok(())
}
