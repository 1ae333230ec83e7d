//! The delegation policy and the request's form, over `examples/` with `examples/delegation/`
//! (shop → orders-api → payments-api → ledger).

use serde_json::{Value, json};

use super::*;
use crate::store::{MemoryStore, Store};

const NOW: i64 = 1_800_000_000;
const ORDERS: &str = "https://orders-api.example.com";
const PAYMENTS: &str = "https://payments.example.com";
const LEDGER: &str = "https://ledger.example.com";
const ORDERS_API: &str = "default.orders-api";
const PAYMENTS_API: &str = "default.payments-api";

fn loaded() -> Loaded {
    crate::testing::examples_with("token-exchange", &["delegation"])
}

/// What the shop's access token for alice says once verified.
fn person_token() -> Value {
    json!({
        "iss": crate::testing::ISSUER,
        "sub": "6f1c2a4e-alice",
        "aud": [LEDGER, ORDERS, PAYMENTS],
        "client_id": "default.shop",
        "scope": "openid email ledger.write orders.place payments.charge",
        "exp": NOW + 300,
        "jti": "person-jti",
        "auth_time": NOW - 60,
    })
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_resource_server_acts_for_the_person_towards_an_api_that_allows_it_and_the_chain_nests() {
    let loaded = loaded();
    let orders_api = &loaded.clients[ORDERS_API];
    let asked = strings(&["payments.charge", "ledger.write"]);
    let first = delegate(
        &loaded,
        orders_api,
        &person_token(),
        PAYMENTS,
        Some(&asked),
        NOW,
    )
    .unwrap();
    assert_eq!(
        first,
        Exchange {
            sub: "6f1c2a4e-alice".into(),
            scopes: asked.clone(),
            audience: PAYMENTS.into(),
            exp: (NOW + orders_api.lifetimes.access_token as i64).min(NOW + 300),
            act: Some(json!({"sub": ORDERS_API})),
            origins: strings(&["person-jti"]),
            auth_time: Some(NOW - 60),
        }
    );

    // The payments API holds that token and goes one hop further.
    let payments_token = json!({
        "iss": crate::testing::ISSUER,
        "sub": first.sub,
        "aud": PAYMENTS,
        "client_id": ORDERS_API,
        "scope": "payments.charge ledger.write",
        "exp": first.exp,
        "jti": "payments-jti",
        "act": first.act,
        tokens::ORIGINS: first.origins,
    });
    let payments_api = &loaded.clients[PAYMENTS_API];
    let second = delegate(&loaded, payments_api, &payments_token, LEDGER, None, NOW).unwrap();
    assert_eq!(
        second.scopes,
        strings(&["ledger.write"]),
        "default: the target's scopes held"
    );
    assert_eq!(second.audience, LEDGER);
    assert_eq!(
        second.act,
        Some(json!({"sub": PAYMENTS_API, "act": {"sub": ORDERS_API}}))
    );
    assert_eq!(second.origins, strings(&["person-jti", "payments-jti"]));
}

/// Why, the exchanging client, the subject token's claims, the target, the scopes asked, the
/// error.
type Case<'a> = (
    &'a str,
    &'a Client,
    Value,
    &'a str,
    Option<Vec<String>>,
    &'a str,
);

#[test]
fn every_rule_of_the_owners_is_checked_with_its_rfc_8693_error() {
    let loaded = loaded();
    let orders_api = &loaded.clients[ORDERS_API];
    let payments_api = &loaded.clients[PAYMENTS_API];
    let shop = &loaded.clients["default.shop"];
    let person = person_token();
    let with = |key: &str, value: Value| {
        let mut claims = person_token();
        claims[key] = value;
        claims
    };
    let only_orders = with("aud", json!(ORDERS));
    let orders_scope = with("scope", json!("openid orders.place"));
    let payments = strings(&["payments.charge"]);
    let chain = json!({"sub": "a", "act": {"sub": "b", "act": {"sub": "c", "act": {"sub": "d"}}}});
    let cases: Vec<Case> = vec![
        (
            "a token merely passing through: its client is no resource server",
            shop,
            person.clone(),
            PAYMENTS,
            None,
            "invalid_request",
        ),
        (
            "a token not addressed to the exchanging client",
            payments_api,
            only_orders.clone(),
            LEDGER,
            None,
            "invalid_request",
        ),
        (
            "a target whose owner did not allow this client",
            orders_api,
            person.clone(),
            LEDGER,
            None,
            "invalid_target",
        ),
        (
            "a target no API has",
            orders_api,
            person.clone(),
            "https://nowhere.example.com",
            None,
            "invalid_target",
        ),
        (
            "a scope the subject token does not hold",
            orders_api,
            orders_scope.clone(),
            PAYMENTS,
            Some(payments.clone()),
            "invalid_scope",
        ),
        (
            "an identity scope",
            orders_api,
            person.clone(),
            PAYMENTS,
            Some(strings(&["openid", "payments.charge"])),
            "invalid_scope",
        ),
        (
            "no scope of the target",
            orders_api,
            person.clone(),
            PAYMENTS,
            Some(strings(&["ledger.write"])),
            "invalid_scope",
        ),
        (
            "may_act naming another actor",
            orders_api,
            with("may_act", json!({"sub": PAYMENTS_API})),
            PAYMENTS,
            None,
            "invalid_request",
        ),
        (
            "may_act of another issuer",
            orders_api,
            with(
                "may_act",
                json!({"sub": ORDERS_API, "iss": "https://other.example"}),
            ),
            PAYMENTS,
            None,
            "invalid_request",
        ),
        (
            "may_act that is no object",
            orders_api,
            with("may_act", json!(ORDERS_API)),
            PAYMENTS,
            None,
            "invalid_request",
        ),
        (
            "a chain of actors already full",
            orders_api,
            with("act", chain),
            PAYMENTS,
            None,
            "invalid_request",
        ),
    ];
    for (why, client, subject, target, asked, error) in cases {
        let refused =
            delegate(&loaded, client, &subject, target, asked.as_deref(), NOW).expect_err(why);
        assert_eq!(refused.code(), error, "{why}: {:?}", refused.description());
    }

    // Three actors before this one is the most a chain takes.
    let three = json!({"sub": "a", "act": {"sub": "b", "act": {"sub": "c"}}});
    let fourth = delegate(
        &loaded,
        orders_api,
        &with("act", three.clone()),
        PAYMENTS,
        None,
        NOW,
    );
    assert_eq!(
        fourth.unwrap().act,
        Some(json!({"sub": ORDERS_API, "act": three}))
    );

    // may_act naming the client lets it act; the life is the subject token's when shorter.
    let allowed = with(
        "may_act",
        json!({"sub": ORDERS_API, "iss": crate::testing::ISSUER}),
    );
    let mut short = allowed.clone();
    short["exp"] = json!(NOW + 10);
    let exchange = delegate(&loaded, orders_api, &short, PAYMENTS, None, NOW).unwrap();
    assert_eq!(exchange.exp, NOW + 10);
    assert_eq!(exchange.scopes, payments);
}

fn request(subject_token_type: &str) -> Request {
    Request {
        subject_token: "t".into(),
        subject_token_type: subject_token_type.into(),
        requested_token_type: None,
        audience: Some(PAYMENTS.into()),
        resource: None,
        scope: None,
        actor_token: None,
    }
}

#[test]
fn the_form_names_one_target_an_accepted_subject_type_and_no_actor_token() {
    let loaded = loaded();
    let store = Store::Memory(MemoryStore::default());
    let ctx = Context {
        loaded: &loaded,
        store: &store,
        client: &loaded.clients[ORDERS_API],
        now: NOW,
        workload: None,
    };
    let refused = |request: Request| validate(&ctx, request).unwrap_err().code();
    assert_eq!(refused(request(token_type::ID_TOKEN)), "invalid_request");
    assert_eq!(
        refused(request(token_type::REFRESH_TOKEN)),
        "invalid_request"
    );
    assert_eq!(
        refused(request("urn:ietf:params:oauth:token-type:saml2")),
        "invalid_request"
    );
    let mut actor = request(token_type::ACCESS_TOKEN);
    actor.actor_token = Some("a".into());
    assert_eq!(refused(actor), "invalid_request");
    let mut nowhere = request(token_type::ACCESS_TOKEN);
    nowhere.audience = None;
    assert_eq!(refused(nowhere), "invalid_request");
    let mut two = request(token_type::ACCESS_TOKEN);
    two.resource = Some(LEDGER.into());
    assert_eq!(refused(two), "invalid_target");
    let mut id_token = request(token_type::ACCESS_TOKEN);
    id_token.requested_token_type = Some(token_type::ID_TOKEN.into());
    assert_eq!(refused(id_token), "invalid_request");

    let mut same = request(token_type::ACCESS_TOKEN);
    same.resource = Some(PAYMENTS.into());
    same.requested_token_type = Some(token_type::JWT.into());
    let validated = validate(&ctx, same).unwrap();
    assert_eq!(validated.origin, Origin::Signet);
    assert_eq!(validated.issued_token_type, token_type::JWT);
    // A JWT of another issuer can only be a ServiceAccount token.
    let foreign = crate::testing::unsigned_jwt(json!({"iss": "https://kubernetes.default.svc"}));
    let mut jwt = request(token_type::JWT);
    jwt.subject_token = foreign;
    assert_eq!(validate(&ctx, jwt).unwrap().origin, Origin::ServiceAccount);
}

/// Exchanges `token` of type `subject_type` for a payments token as `ctx.client`.
async fn exchange_for_payments(
    ctx: &Context<'_>,
    token: &str,
    subject_type: &str,
) -> Result<Value, OAuthError> {
    let mut asked = request(subject_type);
    asked.subject_token = token.to_owned();
    issue(ctx, validate(ctx, asked)?).await
}

#[tokio::test]
async fn only_a_live_access_token_is_a_subject_and_denying_it_ends_what_was_exchanged() {
    let loaded = loaded();
    let store = Store::Memory(MemoryStore::default());
    let shop = &loaded.clients["default.shop"];
    let alice = "6f1c2a4e-alice";
    let scopes = strings(&["orders.place", "payments.charge"]);
    let mut claims = tokens::access_claims(
        &loaded,
        shop,
        alice,
        &scopes,
        &strings(&[ORDERS, PAYMENTS]),
        NOW,
    );
    let mut machine = claims.clone();
    machine["jti"] = json!("machine-jti");
    claims["auth_time"] = json!(NOW - 60);
    let claims_of_person = claims.clone();
    let person = tokens::issue(&loaded, &store, shop, &claims, NOW + 900, NOW)
        .await
        .unwrap();
    let subject = crate::id_token::Subject {
        sub: alice,
        auth_time: NOW - 60,
        sid: None,
        nonce: None,
        claims: Default::default(),
    };
    let id_token = crate::id_token::issue(&loaded, shop, subject, &person, NOW).unwrap();
    // The acting client's static claims speak for it, not for alice.
    let mut orders_api = loaded.clients[ORDERS_API].clone();
    orders_api.claims.insert("tier".into(), "gold".into());
    let ctx = Context {
        loaded: &loaded,
        store: &store,
        client: &orders_api,
        now: NOW,
        workload: None,
    };

    let answer = exchange_for_payments(&ctx, &person, token_type::ACCESS_TOKEN)
        .await
        .unwrap();
    assert_eq!(answer["issued_token_type"], token_type::ACCESS_TOKEN);
    let issued = answer["access_token"].as_str().unwrap();
    let exchanged = tokens::resolve(&loaded, &store, issued, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exchanged["sub"], alice);
    assert_eq!(exchanged["act"], json!({"sub": ORDERS_API}));
    assert_eq!(exchanged["auth_time"], NOW - 60);
    assert_eq!(
        exchanged["email"], "alice@example.com",
        "payments' userClaims"
    );
    assert!(exchanged.get("tier").is_none(), "{exchanged}");

    // A machine's token with the same sub is no person's: no claims of alice's come with it.
    let machine = tokens::issue(&loaded, &store, shop, &machine, NOW + 900, NOW)
        .await
        .unwrap();
    let answer = exchange_for_payments(&ctx, &machine, token_type::ACCESS_TOKEN)
        .await
        .unwrap();
    let issued_for_machine = answer["access_token"].as_str().unwrap();
    let claims = tokens::resolve(&loaded, &store, issued_for_machine, NOW)
        .await
        .unwrap()
        .unwrap();
    assert!(claims.get("email").is_none() && claims.get("auth_time").is_none());

    for subject_type in [token_type::ACCESS_TOKEN, token_type::JWT] {
        let refused = exchange_for_payments(&ctx, &id_token, subject_type)
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            "invalid_request",
            "an ID token as {subject_type}"
        );
    }

    // Denying alice's token (a revocation, an ended family) ends the exchanged one with it.
    let jti = claims_of_person["jti"].as_str().unwrap();
    store.deny(jti, NOW + 300, NOW).await.unwrap();
    assert_eq!(
        tokens::resolve(&loaded, &store, issued, NOW).await.unwrap(),
        None
    );
    let refused = exchange_for_payments(&ctx, &person, token_type::ACCESS_TOKEN)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "invalid_request");
}
