//! A person's claims by subject: static users from the snapshot, people from upstream
//! providers from the store (saved at each sign-in, kept for `PROFILE_SECS`).

use std::sync::Arc;

use super::users::User;
use crate::loaded::Loaded;
use crate::store::{Kind, Record, Store, Unavailable};

/// How long an upstream person's claims are kept after their last sign-in: as long as a
/// refresh token may live by default, so tokens never outlive the claims they describe.
pub const PROFILE_SECS: i64 = 90 * 24 * 3600;

/// The person with subject `sub`.
pub async fn person(
    loaded: &Loaded,
    store: &Store,
    sub: &str,
    now: i64,
) -> Result<Option<Arc<User>>, Unavailable> {
    if let Some((_, user)) = loaded.users.by_sub(sub) {
        return Ok(Some(user.clone()));
    }
    Ok(store.get::<User>(sub, now).await?.map(Arc::new))
}

/// Saves an upstream person's claims.
pub async fn save(store: &Store, user: &User, now: i64) -> Result<(), Unavailable> {
    // `User` never serialises a password hash; upstream people have none anyway.
    store.put(&user.sub, user, now + PROFILE_SECS, now).await
}

/// An upstream person's claims are kept by subject.
impl Record for User {
    const KIND: Kind = Kind::Profile;
}
