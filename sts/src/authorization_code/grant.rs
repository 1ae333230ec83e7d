//! The authorization code grant (RFC 6749 §4.1.3, RFC 7636): a code is claimed in the store
//! atomically, so it redeems once; a second redemption finds what the first issued and
//! revokes it (RFC 6749 §4.1.2), even while the first is still issuing.

use serde::Deserialize;
use serde_json::Value;
use signet_crds::snapshot::Client;

use super::code::{CodeRecord, CodeState};
use super::request::pkce_matches;
use crate::error::OAuthError;
use crate::grants::context::Context;
use crate::grants::user_tokens::{self, Issued, unavailable};

/// The request parameters.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// The code.
    pub code: String,
    /// Must equal the authorization request's.
    pub redirect_uri: Option<String>,
    /// PKCE verifier.
    pub code_verifier: Option<String>,
}

/// Nothing to check before the code is found: every rule is about the code's record.
pub fn validate(_ctx: &Context<'_>, request: Request) -> Result<Request, OAuthError> {
    Ok(request)
}

/// How long a code spent by a wrong attempt is remembered as used.
const SPENT_SECS: i64 = 10 * 60;

/// Redeems the code: claims it (once, atomically), then issues tokens.
pub async fn issue(ctx: &Context<'_>, request: Request) -> Result<Value, OAuthError> {
    let claimed = claim(ctx, &request).await?;
    finish(ctx, claimed).await
}

/// A code this redemption won, with the ids its tokens will carry.
#[derive(Debug)]
pub struct Claimed {
    record: CodeRecord,
    planned: Issued,
}

/// Marks the code used, in one compare-and-set, naming the ids its tokens will carry before
/// any exists: a replay from then on finds them and revokes them, however far the issuing has
/// got (RFC 6749 §4.1.2). A code presented by another client, to another redirect URI or
/// with the wrong verifier is spent the same way, with nothing issued, so the real client's
/// redemption fails too and the log says why.
pub async fn claim(ctx: &Context<'_>, request: &Request) -> Result<Claimed, OAuthError> {
    let (store, client, now) = (ctx.store, ctx.client, ctx.now);
    let code = &request.code;
    // A lost compare-and-set means another redemption wrote first: read again, and this one
    // is the replay.
    for _ in 0..2 {
        let Some(read) = store
            .get_versioned::<CodeState>(code, now)
            .await
            .map_err(unavailable)?
        else {
            return Err(OAuthError::invalid_grant("unknown or expired code"));
        };
        let record = match &read.record {
            CodeState::Used { used } => {
                tracing::warn!(client = %client.client_id, "authorization code replayed: what its first redemption issued is revoked");
                user_tokens::revoke(store, used, now).await?;
                return Err(OAuthError::invalid_grant(
                    "the code was already used; its tokens are revoked",
                ));
            }
            CodeState::Unused(record) => record,
        };
        if let Err(refused) = check(record, client, request) {
            let spent = CodeState::Used {
                used: Issued::default(),
            };
            if store
                .replace(code, &read, &spent, now + SPENT_SECS, now)
                .await
                .map_err(unavailable)?
            {
                tracing::warn!(
                    client = %client.client_id,
                    issued_to = %record.grant.client_id,
                    reason = refused.description().unwrap_or_default(),
                    "authorization code spent by a wrong redemption"
                );
                return Err(refused);
            }
            continue;
        }
        let planned = user_tokens::plan(ctx, &record.grant, None);
        let keep_until = planned
            .family
            .as_ref()
            .map(|(_, end)| *end)
            .into_iter()
            .chain(planned.access_jti.as_ref().map(|(_, exp)| *exp))
            .max()
            .unwrap_or(now);
        let used = CodeState::Used {
            used: planned.clone(),
        };
        if store
            .replace(code, &read, &used, keep_until, now)
            .await
            .map_err(unavailable)?
        {
            return Ok(Claimed {
                record: record.clone(),
                planned,
            });
        }
    }
    Err(OAuthError::invalid_grant("the code was already used"))
}

/// Issues the tokens of a claimed code under the ids the claim named.
pub async fn finish(ctx: &Context<'_>, claimed: Claimed) -> Result<Value, OAuthError> {
    let Claimed { record, planned } = claimed;
    let nonce = record.nonce.as_deref();
    user_tokens::issue_planned(ctx, &record.grant, nonce, None, &planned).await
}

/// The code belongs to this client, came back to the same redirect_uri, and the verifier
/// matches the challenge (a verifier without a challenge is a downgrade attempt).
fn check(record: &CodeRecord, client: &Client, request: &Request) -> Result<(), OAuthError> {
    if record.grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if request.redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&record.code_challenge, &request.code_verifier) {
        (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => Ok(()),
        (Some(_), _) => Err(OAuthError::invalid_grant("code_verifier does not match")),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent for a code issued without PKCE",
        )),
        (None, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::grants::refresh_token;
    use crate::grants::user_tokens::{Grant, RevokedFamily};
    use crate::store::{MemoryStore, Store};

    const NOW: i64 = 1_800_000_000;
    const CALLBACK: &str = "https://app.example.com/callback";
    /// RFC 7636 appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn request() -> Request {
        Request {
            code: "the-code".into(),
            redirect_uri: Some(CALLBACK.into()),
            code_verifier: Some(VERIFIER.into()),
        }
    }

    fn jti_of(jwt: &str) -> String {
        let payload = jwt.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["jti"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn a_replay_while_the_first_redemption_is_issuing_revokes_what_it_will_issue() {
        let loaded = crate::testing::examples("code-window");
        let store = Store::Memory(MemoryStore::default());
        let client = &loaded.clients["default.web-app"];
        let record = CodeRecord {
            grant: Grant {
                client_id: client.client_id.clone(),
                sub: "6f1c2a4e-alice".into(),
                scopes: vec!["openid".into(), "offline_access".into()],
                auth_time: NOW,
                sid: None,
                idp: None,
            },
            redirect_uri: CALLBACK.into(),
            code_challenge: Some(CHALLENGE.into()),
            nonce: None,
        };
        let unused = CodeState::Unused(record);
        store.put("the-code", &unused, NOW + 60, NOW).await.unwrap();
        let ctx = Context {
            loaded: &loaded,
            store: &store,
            client,
            now: NOW,
            workload: None,
        };

        // The first redemption claims the code; before it has issued anything, the replay.
        let first = claim(&ctx, &request()).await.unwrap();
        let replay = issue(&ctx, request()).await.unwrap_err();
        assert_eq!(replay.code(), "invalid_grant");
        let (jti, _) = first.planned.access_jti.clone().unwrap();
        let (family, _) = first.planned.family.clone().unwrap();
        assert!(store.is_denied(&jti, NOW).await.unwrap());
        assert!(
            store
                .get::<RevokedFamily>(&family, NOW)
                .await
                .unwrap()
                .is_some()
        );

        // The first finishes under the ids it claimed: its tokens are born revoked.
        let tokens = finish(&ctx, first).await.unwrap();
        assert_eq!(jti_of(tokens["access_token"].as_str().unwrap()), jti);
        let refresh = tokens["refresh_token"].as_str().unwrap();
        assert!(
            refresh_token::live(&store, refresh, NOW)
                .await
                .unwrap()
                .is_none(),
            "its refresh family is revoked"
        );
    }
}
