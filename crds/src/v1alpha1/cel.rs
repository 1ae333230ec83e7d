//! CEL rules and constrained string schemas shared by several kinds.
//!
//! Every rule reads only strings and lists that carry `maxLength` / `maxItems`, so the API
//! server's CEL cost estimate stays within budget.

use kube::core::{Message, Rule};
use schemars::{Schema, SchemaGenerator, json_schema};

/// Upper bound for any URL in the API.
pub(crate) const MAX_URL: u64 = 2048;

/// A string schema with a length bound, an optional pattern and CEL rules.
pub(crate) fn string_schema(max_length: u64, pattern: Option<&str>, rules: &[Rule]) -> Schema {
    let mut schema = json_schema!({ "type": "string", "maxLength": max_length });
    if let Some(pattern) = pattern {
        schema.insert("pattern".into(), pattern.into());
    }
    if !rules.is_empty() {
        let rules = serde_json::to_value(rules).expect("CEL rules serialize");
        schema.insert("x-kubernetes-validations".into(), rules);
    }
    schema
}

/// https with a non-empty authority. Regular expressions rather than `url()` keep the CEL
/// cost estimate low enough for lists of URLs.
const HTTPS: &str = r"^https://[^/?#@\\s]+([/?#]|$)";
/// http on a loopback host, any port; `127.0.0.1.evil.example` and `localhost@evil` do not match.
const HTTP_LOOPBACK: &str = r"^http://(127\\.0\\.0\\.1|\\[::1\\]|localhost)(:[0-9]{1,5})?([/?#]|$)";
/// A private-use scheme in reverse-domain form (RFC 8252 §7.1), e.g. `com.example.app:/cb`.
const PRIVATE_USE: &str = r"^[a-z][a-z0-9+-]*(\\.[a-z0-9+-]+)+:";

/// `self` is an absolute URL.
fn absolute_url(what: &str) -> Rule {
    Rule::new("isURL(self)").message(Message::Message(format!("{what} must be an absolute URL")))
}

fn no_fragment(what: &str) -> Rule {
    Rule::new("!self.contains('#')").message(Message::Message(format!(
        "{what} must not contain a fragment (#)"
    )))
}

/// https with a host, or http on a loopback host.
fn https_or_loopback(what: &str) -> Rule {
    Rule::new(format!("self.matches('{HTTPS}') || self.matches('{HTTP_LOOPBACK}')")).message(
        Message::Message(format!(
            "{what} must use https (http is allowed only on a loopback host: 127.0.0.1, [::1] or localhost)"
        )),
    )
}

/// The issuer: an https URL without query or fragment (OIDC Discovery §3; RFC 8414 §2).
pub(crate) fn issuer(_: &mut SchemaGenerator) -> Schema {
    string_schema(
        512,
        None,
        &[
            absolute_url("issuer"),
            https_or_loopback("issuer"),
            Rule::new("!self.contains('?') && !self.contains('#')")
                .message("issuer must not contain a query or a fragment"),
        ],
    )
}

/// An outbound https endpoint (jwksUri, backChannelLogoutUri, a logo).
pub(crate) fn endpoint(_: &mut SchemaGenerator) -> Schema {
    let what = "URL";
    string_schema(
        MAX_URL,
        None,
        &[
            absolute_url(what),
            no_fragment(what),
            https_or_loopback(what),
        ],
    )
}

/// A URL the platform points Signet at (a trusted cluster's issuer or JWK Set): https only,
/// no fragment.
pub(crate) fn platform_https(_: &mut SchemaGenerator) -> Schema {
    string_schema(
        MAX_URL,
        None,
        &[
            absolute_url("URL"),
            no_fragment("URL"),
            Rule::new(format!("self.matches('{HTTPS}')")).message("URL must use https"),
        ],
    )
}

/// PEM CA certificates trusted instead of the system's roots (an optional field: null is
/// accepted as unset).
pub(crate) fn ca_bundle(_: &mut SchemaGenerator) -> Schema {
    let mut schema = string_schema(
        65536,
        None,
        &[Rule::new("self.contains('-----BEGIN CERTIFICATE-----')").message(
            "caBundle holds PEM certificates (-----BEGIN CERTIFICATE-----), not the base64 of a kubeconfig's certificate-authority-data",
        )],
    );
    schema.insert("nullable".into(), true.into());
    schema
}

/// A redirect or post-logout redirect URI. Private-use schemes (a scheme with a dot, RFC 8252
/// §7.1) pass here; the client-level rule limits them to public clients.
pub(crate) fn redirect_uris(_: &mut SchemaGenerator) -> Schema {
    let item = string_schema(
        MAX_URL,
        None,
        &[
            absolute_url("redirect URI"),
            no_fragment("redirect URI"),
            Rule::new(format!(
                "self.matches('{HTTPS}') || self.matches('{HTTP_LOOPBACK}') || self.matches('{PRIVATE_USE}')"
            ))
            .message(
                "redirect URI must use https, http on a loopback host, or a private-use scheme \
                 such as com.example.app:/callback (RFC 8252)",
            ),
        ],
    );
    json_schema!({ "type": "array", "maxItems": 32, "items": item })
}

/// A CORS origin: scheme, host and optional port, nothing else (RFC 6454).
pub(crate) fn origins(_: &mut SchemaGenerator) -> Schema {
    let origin =
        r"^(https://[^/?#@\\s]+|http://(127\\.0\\.0\\.1|\\[::1\\]|localhost)(:[0-9]{1,5})?)$";
    let item = string_schema(
        256,
        None,
        &[Rule::new(format!("self.matches('{origin}')")).message(
            "origin must be https://host[:port] (or http on a loopback host) with no path, query or fragment",
        )],
    );
    json_schema!({ "type": "array", "maxItems": 32, "items": item })
}

/// RFC 6749 §3.3 scope-token: printable ASCII without space, `"` or `\`.
const SCOPE_TOKEN: &str = r#"^[!#-\[\]-~]+$"#;

/// One scope name.
pub(crate) fn scope_name(_: &mut SchemaGenerator) -> Schema {
    string_schema(128, Some(SCOPE_TOKEN), &[])
}

/// A list of scope names.
pub(crate) fn scope_names(g: &mut SchemaGenerator) -> Schema {
    let item = scope_name(g);
    json_schema!({ "type": "array", "maxItems": 64, "items": item })
}

/// The syntax of a Go duration, as the schema's pattern checks it. The duration rules test it
/// first, so malformed text gets the pattern's error alone, not also a CEL conversion error.
pub(crate) const DURATION_PATTERN: &str = r"^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// A positive duration of at most `max`.
pub(crate) fn duration_at_most(max: &str) -> Rule {
    Rule::new(format!(
        "!self.matches('{DURATION_PATTERN}') || (duration(self) > duration('0s') && duration(self) <= duration('{max}'))"
    ))
    .message(Message::Message(format!("must be a positive duration of at most {max}")))
}

/// A positive duration.
pub(crate) fn positive_duration() -> Rule {
    Rule::new(format!(
        "!self.matches('{DURATION_PATTERN}') || duration(self) > duration('0s')"
    ))
    .message("must be a positive duration")
}
