//! Request bodies for the load: form bodies, files of one body per line for the Lua script,
//! and tokens issued ahead of the introspection runs.

use std::path::Path;

use futures::{StreamExt, TryStreamExt, stream};
use signet_tests::http;

const FORM: &str = "application/x-www-form-urlencoded";

/// A form body. Every value here (client ids, base64url secrets and tokens) is made of
/// characters that need no percent-encoding; that is checked, so a format change fails loudly
/// instead of sending a wrongly encoded body.
pub fn form(params: &[(&str, &str)]) -> anyhow::Result<String> {
    let plain = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    let mut pairs = Vec::with_capacity(params.len());
    for (name, value) in params {
        anyhow::ensure!(plain(name) && plain(value), "{name} needs percent-encoding");
        pairs.push(format!("{name}={value}"));
    }
    Ok(pairs.join("&"))
}

/// A client_credentials body authenticated by `assertion` (a JWT: base64url and dots, nothing
/// to encode) as `client_id`: a private_key_jwt assertion, or a ServiceAccount token.
pub fn assertion_body(client_id: &str, assertion: &str) -> String {
    format!(
        "grant_type=client_credentials&client_id={client_id}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
    )
}

/// One introspection body per token, the caller authenticated as `client_id` with `secret`
/// (client_secret_post).
pub fn introspections(
    tokens: &[String],
    client_id: &str,
    secret: &str,
) -> anyhow::Result<Vec<String>> {
    tokens
        .iter()
        .map(|t| {
            form(&[
                ("client_id", client_id),
                ("client_secret", secret),
                ("token", t),
            ])
        })
        .collect()
}

/// The reference-token client's token request, and the introspection bodies of reference
/// tokens issued with it (the client introspects its own tokens).
#[derive(Debug, Clone)]
pub struct References {
    /// client_credentials of [`crate::manifests::REFERENCE_CLIENT`].
    pub request: String,
    /// One for each token issued.
    pub introspections: Vec<String>,
}

/// Issues `count` reference tokens (the client's secret read from the STS's `state` folder).
pub async fn references(addr: &str, state: &Path, count: usize) -> anyhow::Result<References> {
    use crate::manifests::{REFERENCE_CLIENT, client_secret};
    let secret = client_secret(state, REFERENCE_CLIENT)?;
    let request = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", REFERENCE_CLIENT),
        ("client_secret", &secret),
    ])?;
    let tokens = issue(addr, &vec![request.clone(); count], 32).await?;
    Ok(References {
        introspections: introspections(&tokens, REFERENCE_CLIENT, &secret)?,
        request,
    })
}

/// Writes one body per line.
pub fn write_lines(path: &Path, bodies: &[String]) -> anyhow::Result<()> {
    let mut text = bodies.join("\n");
    text.push('\n');
    Ok(std::fs::write(path, text)?)
}

/// POSTs `body` to `path` and returns the JSON answer, failing unless it is a 200.
pub async fn post(addr: &str, path: &str, body: &str) -> anyhow::Result<serde_json::Value> {
    let response = http::post(addr, path, FORM, body.as_bytes(), &[]).await?;
    anyhow::ensure!(
        response.status == 200,
        "{path} answered {}: {}",
        response.status,
        response.body
    );
    Ok(response.json())
}

/// Issues one access token per token-request body, `concurrency` requests at a time.
pub async fn issue(
    addr: &str,
    requests: &[String],
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    stream::iter(requests)
        .map(|body| async move {
            let answer = post(addr, "/token", body).await?;
            answer["access_token"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("no access_token in {answer}"))
        })
        .buffered(concurrency)
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_values_that_need_encoding() {
        assert_eq!(
            form(&[("client_id", "default.a-1"), ("token", "x.y_z")]).unwrap(),
            "client_id=default.a-1&token=x.y_z"
        );
        assert!(form(&[("scope", "a b")]).is_err());
    }
}
