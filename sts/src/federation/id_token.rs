//! The claims of an upstream provider's ID token, once its signature holds (OIDC Core
//! §3.1.3.7, errata set 2): issued by the provider, for us alone, and within its time at `now`
//! (passed in, so the checks are exact in tests).

use serde_json::Value;

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
pub const LEEWAY_SECS: i64 = 60;

/// Checks `claims` for the provider `issuer`, our `client_id` there and the `nonce` we sent;
/// the error names the rule broken.
pub fn check(
    claims: &Value,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<(), &'static str> {
    if claims["iss"].as_str() != Some(issuer) {
        return Err("ID token issuer");
    }
    // Only our client_id: a token also meant for another party may have been issued to that
    // party, and is then that party's to replay here.
    let for_us_alone = match &claims["aud"] {
        Value::String(aud) => aud == client_id,
        Value::Array(auds) => {
            !auds.is_empty() && auds.iter().all(|a| a.as_str() == Some(client_id))
        }
        _ => false,
    };
    if !for_us_alone {
        return Err("ID token audience");
    }
    if claims
        .get("azp")
        .is_some_and(|azp| azp.as_str() != Some(client_id))
    {
        return Err("ID token authorized party");
    }
    let latest = now.saturating_add(LEEWAY_SECS);
    let exp = claims["exp"].as_i64().ok_or("ID token without exp")?;
    if exp.saturating_add(LEEWAY_SECS) <= now {
        return Err("ID token expired");
    }
    let iat = claims["iat"].as_i64().ok_or("ID token without iat")?;
    if iat > latest {
        return Err("ID token issued in the future");
    }
    // nbf is optional, but one that is not a time is not ignored.
    if let Some(nbf) = claims.get("nbf")
        && nbf.as_i64().is_none_or(|nbf| nbf > latest)
    {
        return Err("ID token not valid yet");
    }
    if claims["nonce"].as_str() != Some(nonce) {
        return Err("ID token nonce");
    }
    Ok(())
}
