//! A person signing in without a browser: follows the STS's redirects, fills the login and
//! consent forms from the HTML (hidden fields included) and keeps the cookies the STS sets, as
//! a browser's jar would for one host. For protocol tests in Rust; the real pages are exercised
//! with Chromium in tests/node.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::http::{self, Response};

/// PKCE pair of RFC 7636 appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// Its S256 challenge.
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// One person's browser against one STS address: its cookie jar (name to value). Each
/// `Person` is a separate browser; a clone is a copy of the jar at that moment.
#[derive(Debug, Default)]
pub struct Person {
    jar: Mutex<BTreeMap<String, String>>,
    /// The address a trusted proxy says requests come from (`X-Forwarded-For`), if any.
    forwarded_for: Option<String>,
}

impl Clone for Person {
    fn clone(&self) -> Self {
        Self {
            jar: Mutex::new(self.jar().clone()),
            forwarded_for: self.forwarded_for.clone(),
        }
    }
}

/// The value of hidden input `name` in a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..].split('"').next()?.to_owned())
}

/// Parameter `name` of the query of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| decode(v))
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Person {
    /// A browser whose requests come through a trusted proxy from `address`.
    pub fn from_address(address: &str) -> Self {
        Self {
            forwarded_for: Some(address.to_owned()),
            ..Self::default()
        }
    }

    fn jar(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.jar
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value of the cookie `name`, if the jar holds it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar().get(name).cloned()
    }

    /// Puts `name=value` in the jar, as a page that may set cookies for the host would.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar().insert(name.to_owned(), value.to_owned());
    }

    /// The session cookie's value (`signet_session`, the name of a loopback http issuer).
    pub fn session(&self) -> Option<String> {
        self.cookie("signet_session")
    }

    /// The headers this browser sends: its cookies, and the proxy's word for its address.
    fn request_headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(address) = &self.forwarded_for {
            headers.push(("X-Forwarded-For", address.clone()));
        }
        let jar = self.jar();
        if !jar.is_empty() {
            let pairs: Vec<String> = jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
            headers.push(("Cookie", pairs.join("; ")));
        }
        headers
    }

    /// Keeps what the response's `Set-Cookie` headers say: a value, or a removal (empty value
    /// or `Max-Age=0`).
    fn keep_cookies(&self, response: &Response) {
        let mut jar = self.jar();
        for (name, line) in &response.headers {
            if name != "set-cookie" {
                continue;
            }
            let mut attributes = line.split(';').map(str::trim);
            let Some((cookie, value)) = attributes.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let removed =
                value.is_empty() || attributes.any(|a| a.eq_ignore_ascii_case("max-age=0"));
            if removed {
                jar.remove(cookie);
            } else {
                jar.insert(cookie.to_owned(), value.to_owned());
            }
        }
    }

    /// GET `path` with the cookies; keeps the cookies set.
    pub async fn get(&self, addr: &str, path: &str) -> anyhow::Result<Response> {
        let headers = self.request_headers();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = http::get_with(addr, path, &headers).await?;
        self.keep_cookies(&response);
        Ok(response)
    }

    /// POST a form with the cookies; keeps the cookies set.
    pub async fn post(
        &mut self,
        addr: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<Response> {
        let headers = self.request_headers();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = http::post_form(addr, path, form, &headers).await?;
        self.keep_cookies(&response);
        Ok(response)
    }

    /// GET /authorize with `params`; the response (303 to a page or to the client).
    pub async fn authorize(&self, addr: &str, params: &[(&str, &str)]) -> anyhow::Result<Response> {
        self.get(addr, &format!("/authorize?{}", http::query(params)))
            .await
    }

    /// Posts one of the STS's interaction forms shown on `page` to `action`: its hidden
    /// `interaction` and `csrf` fields plus `fields`.
    async fn submit(
        &mut self,
        addr: &str,
        page: &Response,
        action: &str,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<Response> {
        anyhow::ensure!(
            page.status == 200,
            "{action} page: {} {}",
            page.status,
            page.body
        );
        let interaction = hidden(&page.body, "interaction").unwrap_or_default();
        let csrf = hidden(&page.body, "csrf").unwrap_or_default();
        let mut form = vec![
            ("interaction", interaction.as_str()),
            ("csrf", csrf.as_str()),
        ];
        form.extend_from_slice(fields);
        self.post(addr, action, &form).await
    }

    /// Submits the login page at `location` (a /login URL).
    pub async fn log_in(
        &mut self,
        addr: &str,
        location: &str,
        username: &str,
        password: &str,
    ) -> anyhow::Result<Response> {
        let page = self.get(addr, location).await?;
        self.submit(
            addr,
            &page,
            "/login",
            &[("username", username), ("password", password)],
        )
        .await
    }

    /// Answers the consent page at `location` with `decision` (allow or deny).
    pub async fn consent(
        &mut self,
        addr: &str,
        location: &str,
        decision: &str,
    ) -> anyhow::Result<Response> {
        let page = self.get(addr, location).await?;
        self.submit(addr, &page, "/consent", &[("decision", decision)])
            .await
    }

    /// The whole flow for `params`: logs in as `username` if asked, allows consent if asked,
    /// and returns the final redirect to the client.
    pub async fn sign_in(
        &mut self,
        addr: &str,
        params: &[(&str, &str)],
        username: &str,
        password: &str,
    ) -> anyhow::Result<String> {
        let mut response = self.authorize(addr, params).await?;
        for _ in 0..3 {
            let location = response.header("location").unwrap_or_default().to_owned();
            anyhow::ensure!(
                response.status == 303,
                "expected a redirect: {} {}",
                response.status,
                response.body
            );
            if location.starts_with("/login") {
                response = self.log_in(addr, &location, username, password).await?;
            } else if location.starts_with("/consent") {
                response = self.consent(addr, &location, "allow").await?;
            } else {
                return Ok(location);
            }
        }
        anyhow::bail!("too many pages")
    }

    /// Enters `user_code` on the device verification page, signs in if asked, and answers
    /// `decision` (allow or deny); returns the final page.
    pub async fn approve_device(
        &mut self,
        addr: &str,
        user_code: &str,
        username: &str,
        password: &str,
        decision: &str,
    ) -> anyhow::Result<Response> {
        let path = format!("/device?{}", http::query(&[("user_code", user_code)]));
        let mut page = self.get(addr, &path).await?;
        if page.status == 303 {
            let location = page.header("location").unwrap_or_default().to_owned();
            anyhow::ensure!(
                location.starts_with("/login"),
                "unexpected redirect {location}"
            );
            let after = self.log_in(addr, &location, username, password).await?;
            let back = after.header("location").unwrap_or_default().to_owned();
            anyhow::ensure!(
                back.starts_with("/device"),
                "after login: {} {back}",
                after.status
            );
            page = self.get(addr, &back).await?;
        }
        self.submit(addr, &page, "/device", &[("decision", decision)])
            .await
    }
}
