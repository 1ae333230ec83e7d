//! Version `v1alpha1` of the `signet.dev` API.

mod api_scope;
mod cel;
mod common;
mod identity_provider;
mod oidc_client;
mod signing_key;
mod token_service;

pub use api_scope::*;
pub use common::*;
pub use identity_provider::*;
pub use oidc_client::*;
pub use signing_key::*;
pub use token_service::*;
