//! Kubernetes' CEL `isURL(string)`: true when Go's `url.ParseRequestURI` accepts the string
//! (k8s.io/apiserver/pkg/cel/library/urls.go). The `url` crate follows the WHATWG URL
//! standard, which accepts and rejects different strings (it trims spaces, accepts
//! `http:host` without slashes, and rejects `/path`), so the Go parser's rules are restated
//! here, in the order Go applies them (net/url `parse` with `viaRequest = true`).

/// Whether Go's `url.ParseRequestURI(s)` succeeds: an absolute URI or an absolute path, no
/// control characters, a well-formed authority and well-formed `%` escapes. A `#` is not
/// treated as a fragment (the function assumes none), so it passes as part of the path.
pub fn is_request_uri(s: &str) -> bool {
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) || s.is_empty() {
        return false;
    }
    if s == "*" {
        return true;
    }
    let Some((scheme, rest)) = split_scheme(s) else {
        return false;
    };
    // The query is cut off and never checked.
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    if !rest.starts_with('/') {
        // With a scheme, a rootless remainder is opaque data (`mailto:x`); without one,
        // a request URI must be an absolute path.
        return !scheme.is_empty();
    }
    let mut path = rest;
    if !scheme.is_empty()
        && let Some(after) = rest.strip_prefix("//")
    {
        let end = after.find('/').unwrap_or(after.len());
        if !valid_authority(&after[..end]) {
            return false;
        }
        path = &after[end..];
    }
    unescape_ok(path, Mode::Path)
}

/// Go's `getScheme`: `Some((scheme, rest))`, the scheme empty when there is none, or `None`
/// when the string starts with `:`.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    for (i, c) in s.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return None,
            b':' => return Some((&s[..i], &s[i + 1..])),
            _ => return Some(("", s)),
        }
    }
    Some(("", s))
}

/// Go's `parseAuthority`: `[userinfo@]host[:port]`, split at the last `@`.
fn valid_authority(authority: &str) -> bool {
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if !valid_host(host) {
        return false;
    }
    match userinfo {
        None => true,
        Some(userinfo) => {
            userinfo
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c))
                && userinfo
                    .split(':')
                    .all(|part| unescape_ok(part, Mode::UserPassword))
        }
    }
}

/// Go's `parseHost`: a bracketed IP literal with an optional zone and port, or a name with an
/// optional numeric port; only non-ASCII bytes may be `%`-escaped (and `%25` in a zone).
fn valid_host(host: &str) -> bool {
    if host.starts_with('[') {
        let Some(close) = host.rfind(']') else {
            return false;
        };
        if !valid_optional_port(&host[close + 1..]) {
            return false;
        }
        if let Some(zone) = host[..close].find("%25") {
            return unescape_ok(&host[..zone], Mode::Host)
                && unescape_ok(&host[zone..close], Mode::Zone)
                && unescape_ok(&host[close..], Mode::Host);
        }
    } else if let Some(colon) = host.rfind(':')
        && !valid_optional_port(&host[colon..])
    {
        return false;
    }
    unescape_ok(host, Mode::Host)
}

/// Empty, or `:` and digits (an empty port is allowed).
fn valid_optional_port(port: &str) -> bool {
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
}

/// Go's `unescape` as a check: every `%` starts two hex digits; in a host, an escape may
/// only encode a non-ASCII byte (or be `%25`), and ASCII bytes that Go would escape are
/// refused.
fn unescape_ok(s: &str, mode: Mode) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let (Some(&hi), Some(&lo)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                    return false;
                };
                if !hi.is_ascii_hexdigit() || !lo.is_ascii_hexdigit() {
                    return false;
                }
                let escaped = &s[i..i + 3];
                if mode == Mode::Host && hex(hi) < 8 && escaped != "%25" {
                    return false;
                }
                if mode == Mode::Zone {
                    let value = hex(hi) << 4 | hex(lo);
                    if escaped != "%25" && value != b' ' && host_must_escape(value) {
                        return false;
                    }
                }
                i += 3;
            }
            b if matches!(mode, Mode::Host | Mode::Zone) && b < 0x80 && host_must_escape(b) => {
                return false;
            }
            _ => i += 1,
        }
    }
    true
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// Go's `shouldEscape(c, encodeHost)`: what may not appear as itself in a host.
fn host_must_escape(c: u8) -> bool {
    !(c.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::is_request_uri;

    #[test]
    fn accepts_what_go_parse_request_uri_accepts() {
        for ok in [
            "https://id.example.com",
            "https://id.example.com/tenant-a?x=1",
            "http://127.0.0.1:8080/cb",
            "http://[::1]:8080",
            "http://[fe80::1%25en0]:80/",
            "https://user:pa%20ss@host/",
            "https://app.example/cb#x",
            "com.example.app:/cb",
            "mailto:someone@example.com",
            "/cb",
            "*",
            "https://host:/",
            "https://h\u{e9}te.example/",
        ] {
            assert!(is_request_uri(ok), "{ok}");
        }
    }

    #[test]
    fn refuses_what_go_parse_request_uri_refuses() {
        for bad in [
            "",
            "id.example.com",
            "cb",
            ":foo",
            "https://id.example.com\n",
            "https://host:port/",
            "https://[::1/",
            "https://ho st/",
            "https://host/%zz",
            "https://host/%4",
            "https://%41.example/",
            "https://us\"er@host/",
            "https://[fe80::1%25%0a]/",
        ] {
            assert!(!is_request_uri(bad), "{bad:?}");
        }
    }
}
