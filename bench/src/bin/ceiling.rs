//! The ceiling: an axum POST /token that parses the form as the STS does and signs one ES256
//! JWT of the STS's access-token shape, and nothing else (no client lookup, no secret check,
//! no grant validation, no metrics). What the STS's token endpoint does beyond this is what
//! the benchmark's ratio measures.
//!
//!   ceiling --listen 127.0.0.1:PORT

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use signet_sts::form::Form;
use signet_sts::jose::Signer;

/// An axum endpoint that signs, for comparison with the STS.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
}

struct Ceiling {
    signer: Signer,
    issuer: String,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

async fn token(State(ceiling): State<Arc<Ceiling>>, body: Bytes) -> Response {
    let Ok(form) = Form::parse(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let client_id = form.get("client_id").unwrap_or_default();
    let scope = form.get("scope").unwrap_or("orders.read");
    let claims = signet_bench::crypto::access_claims(&ceiling.issuer, client_id, scope, now());
    let token = ceiling.signer.sign("at+jwt", &claims);
    // The same answer and headers as the STS's, so both send the same bytes.
    let mut response = axum::Json(serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 900,
        "scope": scope,
    }))
    .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (signer, _) = signet_bench::crypto::es256()?;
    let ceiling = Arc::new(Ceiling {
        signer,
        issuer: format!("http://{}", args.listen),
    });
    let router = Router::new()
        .route("/token", post(token))
        // Ready as soon as it listens; the driver waits on this as on the STS.
        .route("/readyz", get(|| async { "ok" }))
        .with_state(ceiling);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    axum::serve(listener, router).await?;
    Ok(())
}
