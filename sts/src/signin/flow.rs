//! What happens next for an authorization request, decided from explicit inputs: the request,
//! the session (if any), remembered consent and what this interaction already did, at `now`.

use signet_crds::snapshot::Client;

use super::session::Session;
use crate::authorization_code::request::AuthorizationRequest;

/// The next step.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Show the login page.
    Login,
    /// Show the consent page.
    Consent,
    /// Issue a code.
    Issue,
    /// Answer the client with this error (prompt=none could not be honoured).
    Fail(&'static str),
}

/// What the current interaction already did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Done {
    /// When this interaction began (a login after it satisfies prompt=login).
    pub started: Option<i64>,
    /// The person consented on the page in this interaction.
    pub consented: bool,
}

/// Whether this request needs the person's consent at all.
pub fn needs_consent(client: &Client, request: &AuthorizationRequest) -> bool {
    client.require_consent
        || request.prompt.consent
        || (request.has_scope("offline_access") && !client.trusted)
}

/// Decides the next step. `remembered` is whether stored consent covers the requested scopes.
pub fn decide(
    client: &Client,
    request: &AuthorizationRequest,
    session: Option<&Session>,
    remembered: bool,
    done: Done,
    now: i64,
) -> Step {
    let session_good = session.is_some_and(|s| {
        s.expires > now
            && request.hint_sub.as_ref().is_none_or(|sub| *sub == s.sub)
            && request.max_age.is_none_or(|max| now - s.auth_time <= max)
            && (!request.prompt.login || done.started.is_some_and(|t| s.auth_time >= t))
    });
    if !session_good {
        return if request.prompt.none {
            Step::Fail("login_required")
        } else {
            Step::Login
        };
    }
    let consent_covered = done.consented || (remembered && !request.prompt.consent);
    if needs_consent(client, request) && !consent_covered {
        return if request.prompt.none {
            Step::Fail("consent_required")
        } else {
            Step::Consent
        };
    }
    Step::Issue
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorization_code::request::Prompt;

    const NOW: i64 = 1_800_000_000;

    fn client() -> Client {
        let loaded = crate::testing::examples("flow");
        loaded.clients["default.web-app"].clone()
    }

    fn request() -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "default.web-app".into(),
            redirect_uri: "https://app.example.com/callback".into(),
            state: None,
            nonce: None,
            scopes: vec!["openid".into()],
            code_challenge: None,
            prompt: Prompt::default(),
            max_age: None,
            login_hint: None,
            hint_sub: None,
        }
    }

    fn session(auth_time: i64) -> Session {
        Session {
            sid: "sid".into(),
            sub: "alice".into(),
            auth_time,
            idp: "local".into(),
            expires: NOW + 3600,
            clients: vec![],
        }
    }

    #[test]
    fn every_path_through_the_decision() {
        let client = client();
        let mut trusted = client.clone();
        trusted.trusted = true;
        let r = request();
        let s = session(NOW - 100);
        let none = Done::default();
        assert_eq!(decide(&client, &r, None, false, none, NOW), Step::Login);
        assert_eq!(decide(&client, &r, Some(&s), false, none, NOW), Step::Issue);
        let mut expired = s.clone();
        expired.expires = NOW;
        assert_eq!(
            decide(&client, &r, Some(&expired), false, none, NOW),
            Step::Login
        );

        let mut silent = r.clone();
        silent.prompt.none = true;
        assert_eq!(
            decide(&client, &silent, None, false, none, NOW),
            Step::Fail("login_required")
        );
        assert_eq!(
            decide(&client, &silent, Some(&s), false, none, NOW),
            Step::Issue
        );
        silent.hint_sub = Some("bob".into());
        assert_eq!(
            decide(&client, &silent, Some(&s), false, none, NOW),
            Step::Fail("login_required")
        );

        let mut aged = r.clone();
        aged.max_age = Some(60);
        assert_eq!(
            decide(&client, &aged, Some(&s), false, none, NOW),
            Step::Login
        );
        aged.max_age = Some(100);
        assert_eq!(
            decide(&client, &aged, Some(&s), false, none, NOW),
            Step::Issue
        );

        let mut again = r.clone();
        again.prompt.login = true;
        assert_eq!(
            decide(&client, &again, Some(&s), false, none, NOW),
            Step::Login
        );
        let started = Done {
            started: Some(NOW - 10),
            consented: false,
        };
        assert_eq!(
            decide(
                &client,
                &again,
                Some(&session(NOW - 5)),
                false,
                started,
                NOW
            ),
            Step::Issue
        );

        let mut offline = r.clone();
        offline.scopes.push("offline_access".into());
        assert_eq!(
            decide(&client, &offline, Some(&s), false, none, NOW),
            Step::Consent
        );
        assert_eq!(
            decide(&client, &offline, Some(&s), true, none, NOW),
            Step::Issue
        );
        assert_eq!(
            decide(&trusted, &offline, Some(&s), false, none, NOW),
            Step::Issue
        );
        offline.prompt.none = true;
        assert_eq!(
            decide(&client, &offline, Some(&s), false, none, NOW),
            Step::Fail("consent_required")
        );

        let mut forced = r.clone();
        forced.prompt.consent = true;
        assert_eq!(
            decide(&client, &forced, Some(&s), true, none, NOW),
            Step::Consent,
            "prompt=consent ignores memory"
        );
        let consented = Done {
            started: Some(NOW),
            consented: true,
        };
        assert_eq!(
            decide(&client, &forced, Some(&s), true, consented, NOW),
            Step::Issue
        );
    }
}
