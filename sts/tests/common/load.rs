//! A mixed load on STS replicas sharing one store: client_credentials, the code flow (an
//! authorize and a redemption), refresh-token rotation and reference-token introspection, one
//! task per kind per replica, every request's outcome recorded with its time.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use signet_tests::browserless::{CHALLENGE, Person, VERIFIER, param};
use signet_tests::http;

use super::client_secret;

/// The client whose access tokens are reference tokens (for introspection); add it to the
/// manifests of a test that runs the load.
pub const REFERENCE_CLIENT: &str = "---\napiVersion: signet.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: reporter}\nspec: {grantTypes: [client_credentials], allowedScopes: [orders.read], tokenEndpointAuthMethod: client_secret_post, accessTokenFormat: reference}\n";

/// The kinds of request of the load.
pub const KINDS: [&str; 4] = [
    "client_credentials",
    "code flow",
    "refresh",
    "introspection",
];

/// The example web client, and where it gets its codes.
pub const WEB: &str = "default.web-app";
const CALLBACK: &str = "https://app.example.com/callback";

/// One request of the load (with its retries): which replica, when, whether it succeeded.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    pub sts: usize,
    pub kind: &'static str,
    pub started: Instant,
    pub ended: Instant,
    pub ok: bool,
    /// Attempts it took: 1, or more when a failed attempt was retried.
    pub attempts: usize,
}

/// The load while it runs.
pub struct MixedLoad {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl MixedLoad {
    /// Signs alice in at each replica (before any load: a sign-in is slow in a debug build),
    /// then starts the tasks; each retries a failed request up to `retries` times.
    pub async fn start(addrs: &[String], state: &Path, retries: usize) -> anyhow::Result<Self> {
        let reporter_secret = client_secret(state, "default.reporter");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "default.reporter"),
            ("client_secret", reporter_secret.as_str()),
        ];
        let issued = http::post_form(&addrs[0], "/token", &form, &[]).await?;
        anyhow::ensure!(issued.status == 200, "{}", issued.body);
        let reference_token = issued.json()["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut drivers = Vec::new();
        for (sts, addr) in addrs.iter().enumerate() {
            for kind in KINDS {
                let load = Load {
                    addr: addr.clone(),
                    web_auth: http::basic_auth(WEB, &client_secret(state, WEB)),
                    worker_secret: client_secret(state, "default.orders-worker"),
                    reporter_secret: reporter_secret.clone(),
                    reference_token: reference_token.clone(),
                };
                let person = signed_in(&load).await?;
                drivers.push(((sts, kind), load, person));
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let tasks = drivers
            .into_iter()
            .map(|(at, load, person)| {
                let (stop, outcomes) = (stop.clone(), outcomes.clone());
                tokio::spawn(drive(at, load, person, retries, stop, outcomes))
            })
            .collect();
        Ok(Self {
            stop,
            outcomes,
            tasks,
        })
    }

    /// How many outcomes so far satisfy `filter`.
    pub fn count(&self, filter: impl Fn(&Outcome) -> bool) -> usize {
        self.outcomes
            .lock()
            .expect("lock")
            .iter()
            .filter(|o| filter(o))
            .count()
    }

    /// Stops the tasks; every outcome.
    pub async fn stop(self) -> anyhow::Result<Vec<Outcome>> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await?;
        }
        Ok(self.outcomes.lock().expect("lock").clone())
    }
}

/// The web client's authorization request for `scope` (PKCE S256).
pub fn web_params(scope: &'static str) -> [(&'static str, &'static str); 6] {
    [
        ("client_id", WEB),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", scope),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

/// Redeems `code` for the web client.
pub async fn redeem(addr: &str, auth: &str, code: &str) -> anyhow::Result<http::Response> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ];
    http::post_form(addr, "/token", &form, &[("Authorization", auth)]).await
}

/// What one task needs to make its requests at one replica.
#[derive(Clone)]
struct Load {
    addr: String,
    web_auth: String,
    worker_secret: String,
    reporter_secret: String,
    reference_token: String,
}

impl Load {
    async fn client_credentials(&self) -> anyhow::Result<bool> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "default.orders-worker"),
            ("client_secret", self.worker_secret.as_str()),
        ];
        let response = http::post_form(&self.addr, "/token", &form, &[]).await?;
        Ok(response.status == 200)
    }

    async fn code_flow(&self, alice: &Person) -> anyhow::Result<bool> {
        let response = alice.authorize(&self.addr, &web_params("openid")).await?;
        let Some(code) = response.header("location").and_then(|l| param(l, "code")) else {
            return Ok(false);
        };
        Ok(redeem(&self.addr, &self.web_auth, &code).await?.status == 200)
    }

    /// Rotates `token`: on success it is the new refresh token.
    async fn refresh(&self, token: &mut String) -> anyhow::Result<bool> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", token.as_str()),
        ];
        let auth = [("Authorization", self.web_auth.as_str())];
        let response = http::post_form(&self.addr, "/token", &form, &auth).await?;
        if response.status == 200 {
            let next = response.json()["refresh_token"].as_str().map(str::to_owned);
            *token = next.unwrap_or_default();
        }
        Ok(response.status == 200)
    }

    async fn introspect(&self) -> anyhow::Result<bool> {
        let form = [
            ("client_id", "default.reporter"),
            ("client_secret", self.reporter_secret.as_str()),
            ("token", self.reference_token.as_str()),
        ];
        let response = http::post_form(&self.addr, "/introspect", &form, &[]).await?;
        Ok(response.status == 200 && response.json()["active"] == true)
    }
}

/// A signed-in person at `load`'s replica, with a refresh token.
async fn signed_in(load: &Load) -> anyhow::Result<(Person, String)> {
    let mut alice = Person::default();
    let params = web_params("openid offline_access");
    let location = alice
        .sign_in(&load.addr, &params, "alice", "correct horse battery staple")
        .await?;
    let code = param(&location, "code").ok_or_else(|| anyhow::anyhow!("no code: {location}"))?;
    let tokens = redeem(&load.addr, &load.web_auth, &code).await?.json();
    let refresh = tokens["refresh_token"].as_str().unwrap_or_default();
    anyhow::ensure!(!refresh.is_empty(), "no refresh token: {tokens}");
    Ok((alice, refresh.to_owned()))
}

/// Makes one kind of request at one replica until `stop`, recording every outcome.
async fn drive(
    (sts, kind): (usize, &'static str),
    load: Load,
    (alice, mut refresh): (Person, String),
    retries: usize,
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
) {
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let mut attempts = 0;
        let ok = loop {
            attempts += 1;
            let ok = match kind {
                "client_credentials" => load.client_credentials().await,
                "code flow" => load.code_flow(&alice).await,
                "refresh" => load.refresh(&mut refresh).await,
                _ => load.introspect().await,
            }
            .unwrap_or(false);
            if ok || attempts > retries {
                break ok;
            }
        };
        outcomes.lock().expect("lock").push(Outcome {
            sts,
            kind,
            started,
            ended: Instant::now(),
            ok,
            attempts,
        });
    }
}
