//! Signet's API: the `signet.dev/v1alpha1` custom resource types, and the generated
//! CustomResourceDefinitions that carry their validation.

pub mod crd;
pub mod keygen;
#[cfg(feature = "logging")]
pub mod logging;
pub mod reference;
pub mod replica;
pub mod v1alpha1;
pub mod validation;

/// The API group of every Signet kind.
pub const GROUP: &str = "signet.dev";
pub mod compile;
pub mod snapshot;
pub mod snapshot_secret;
