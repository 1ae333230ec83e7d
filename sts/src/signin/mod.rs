//! Signing people in: the authorization request, static users, sessions, consent, and the
//! decision of what comes next.

pub mod admission;
pub mod budget;
pub mod claims;
pub mod cookies;
pub mod flow;
mod hashing;
pub mod interaction;
pub mod logout;
pub mod profile;
pub mod session;
pub mod source_address;
pub mod throttle;
pub mod users;
