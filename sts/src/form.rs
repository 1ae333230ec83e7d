//! Strict parsing of `application/x-www-form-urlencoded` bodies (RFC 6749 §3.2, appendix B):
//! valid UTF-8 only, no repeated parameter, and empty values treated as absent (§3.1).

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

/// The parameters of a request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Form(BTreeMap<String, String>);

/// Why a body is not a valid OAuth form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A name or value is not UTF-8 after decoding.
    #[error("the body is not valid UTF-8 form data")]
    NotUtf8,
    /// A parameter appears twice.
    #[error("parameter {0} is repeated")]
    Repeated(String),
}

fn decode(part: &str) -> Result<String, FormError> {
    let spaced = part.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| FormError::NotUtf8)
}

impl Form {
    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        let text = std::str::from_utf8(body).map_err(|_| FormError::NotUtf8)?;
        let mut params = BTreeMap::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (name, value) = (decode(name)?, decode(value)?);
            if value.is_empty() {
                continue;
            }
            if params.insert(name.clone(), value).is_some() {
                return Err(FormError::Repeated(name));
            }
        }
        Ok(Self(params))
    }

    /// One parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The parameters, by name.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Decodes one `application/x-www-form-urlencoded` component (for HTTP Basic credentials,
    /// RFC 6749 §2.3.1).
    pub fn decode_component(part: &str) -> Result<String, FormError> {
        decode(part)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn decodes_plus_and_percent() {
        let form = Form::parse(b"grant_type=client_credentials&scope=a+b%20c&x=").unwrap();
        assert_eq!(form.get("scope"), Some("a b c"));
        assert_eq!(form.get("x"), None, "an empty value counts as absent");
    }

    #[test]
    fn refuses_repeats_and_bad_utf8() {
        assert_eq!(
            Form::parse(b"scope=a&scope=b"),
            Err(FormError::Repeated("scope".into()))
        );
        assert_eq!(Form::parse(b"scope=%FF"), Err(FormError::NotUtf8));
        assert_eq!(Form::parse(&[0xff, b'=', b'a']), Err(FormError::NotUtf8));
    }

    proptest! {
        #[test]
        fn never_panics(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = Form::parse(&body);
        }
    }
}
