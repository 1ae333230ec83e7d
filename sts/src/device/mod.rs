//! The device authorization flow (RFC 8628), in one place: the codes and the record a device
//! polls (`codes`), the person's approval on the verification page (`verification`), and the
//! token endpoint's answer to a poll (`grant`). The HTTP side is `http/device.rs`.

pub mod codes;
pub mod grant;
pub mod verification;
