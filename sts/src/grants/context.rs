//! What every grant works with (see the contract in `grants`).

use signet_crds::snapshot::Client;

use crate::loaded::Loaded;
use crate::store::Store;
use crate::workload::Checkers;

/// What every grant works with: the snapshot in service, the operational store, the client
/// that authenticated, and the time of the request.
pub struct Context<'a> {
    /// The snapshot.
    pub loaded: &'a Loaded,
    /// The operational store.
    pub store: &'a Store,
    /// The authenticated client.
    pub client: &'a Client,
    /// Seconds since the epoch.
    pub now: i64,
    /// What checks ServiceAccount tokens (token exchange of a workload's own token); None
    /// where no grant needs it (unit tests).
    pub workload: Option<Checkers<'a>>,
}
