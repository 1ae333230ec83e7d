//! Back-channel logout delivery: a signed logout token POSTed to each client of an ended
//! session that registered a `backChannelLogoutUri`, under the outbound SSRF rules, retried
//! with growing delays; a delivery that never succeeds counts in a metric (the client is not a
//! label, so series stay bounded) and the log names the client.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::loaded::Loaded;
use crate::signin::logout;
use crate::signin::session::Session;

/// Waits between attempts: four attempts over about seven seconds.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Starts delivery to every client of `session` that wants it; returns at once.
pub fn notify(app: &Arc<App>, loaded: &Arc<Loaded>, session: &Session, now: i64) {
    for client_id in &session.clients {
        let Some(client) = loaded.clients.get(client_id) else {
            continue;
        };
        let Some(uri) = client.back_channel_logout_uri.clone() else {
            continue;
        };
        let Some(signer) = loaded.signers.get(&client.id_token_signing_alg) else {
            tracing::warn!(%client_id, "no key to sign a logout token");
            continue;
        };
        let claims = logout::token_claims(
            loaded.issuer(),
            client_id,
            session,
            now,
            &crate::random::token(),
        );
        let token = signer.sign("logout+jwt", &claims);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("logout_token", &token)
            .finish();
        let allow_private = loaded.snapshot.allow_private_network_targets;
        let (app, client_id) = (app.clone(), client_id.clone());
        tokio::spawn(async move {
            deliver(&app, &client_id, &uri, body, allow_private).await;
        });
    }
}

async fn deliver(app: &App, client_id: &str, uri: &str, body: String, allow_private: bool) {
    let mut delays = RETRY_DELAYS.iter();
    loop {
        match app
            .outbound
            .post_form(uri, body.clone(), &[], allow_private)
            .await
        {
            Ok(_) => {
                app.metrics.backchannel_sent.inc();
                tracing::info!(%client_id, "back-channel logout delivered");
                return;
            }
            Err(error) => match delays.next() {
                Some(delay) => {
                    tracing::debug!(%client_id, %error, "back-channel logout failed, retrying");
                    tokio::time::sleep(*delay).await;
                }
                None => {
                    app.metrics.backchannel_failed.inc();
                    tracing::warn!(%client_id, %error, "back-channel logout failed after retries");
                    return;
                }
            },
        }
    }
}
