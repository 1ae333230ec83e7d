//! Whether a signed-in person may get tokens for a client *now*: checked against the current
//! snapshot every time a session serves a client (a code, a device approval) and at every
//! refresh, so a session or a refresh family never outlives what allowed it (the client's
//! `allowedIdentityProviders`, the person's entry in a static provider, an upstream
//! provider's email-domain and group rules).

use signet_crds::snapshot::{Client, ProviderSettings};

use super::users::User;
use crate::loaded::Loaded;
use crate::store::{Store, Unavailable};

/// Why a person is not admitted; the person signs in again (or the refresh is refused).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The provider they signed in with is no longer one of the TokenService's.
    #[error("identity provider {0} is gone")]
    ProviderGone(String),
    /// The client does not allow that provider.
    #[error("the client does not allow identity provider {0}")]
    ProviderNotAllowed(String),
    /// The person is no longer listed by that provider (or their profile expired).
    #[error("the person is no longer known to identity provider {0}")]
    PersonGone(String),
    /// An upstream provider's rules no longer admit the person.
    #[error("identity provider {0}: {1}")]
    Rules(String, crate::federation::claims::Refused),
}

/// Decides for the person `sub` who signed in through `idp`. `profile` is the stored profile
/// of an upstream person (unused for static providers, whose directory is in the snapshot).
pub fn decide(
    loaded: &Loaded,
    client: &Client,
    idp: &str,
    sub: &str,
    profile: Option<&User>,
) -> Result<(), Refused> {
    let provider = loaded
        .snapshot
        .identity_providers
        .iter()
        .find(|p| p.name == idp)
        .ok_or_else(|| Refused::ProviderGone(idp.to_owned()))?;
    if !client.allowed_identity_providers.is_empty()
        && !client.allowed_identity_providers.iter().any(|p| p == idp)
    {
        return Err(Refused::ProviderNotAllowed(idp.to_owned()));
    }
    match &provider.settings {
        ProviderSettings::Static { .. } => match loaded.users.by_sub(sub) {
            Some((from, _)) if from == idp => Ok(()),
            _ => Err(Refused::PersonGone(idp.to_owned())),
        },
        ProviderSettings::Oidc(upstream) => {
            let person = profile.ok_or_else(|| Refused::PersonGone(idp.to_owned()))?;
            crate::federation::claims::still_admitted(upstream, person)
                .map_err(|why| Refused::Rules(idp.to_owned(), why))
        }
    }
}

/// [`decide`], with the upstream profile loaded from the store when the provider needs it.
/// `idp` is `None` for records written before the provider was recorded: the static provider
/// that lists `sub`, else the person's stored upstream profile, is taken as theirs.
pub async fn check(
    loaded: &Loaded,
    store: &Store,
    client: &Client,
    idp: Option<&str>,
    sub: &str,
    now: i64,
) -> Result<Result<(), Refused>, Unavailable> {
    let idp = match idp {
        Some(idp) => idp.to_owned(),
        None => match loaded.users.by_sub(sub) {
            Some((from, _)) => from.to_owned(),
            None => match super::profile::person(loaded, store, sub, now).await? {
                Some(_) => return Ok(Ok(())),
                None => return Ok(Err(Refused::PersonGone(String::new()))),
            },
        },
    };
    let upstream = loaded
        .snapshot
        .identity_providers
        .iter()
        .any(|p| p.name == idp && matches!(p.settings, ProviderSettings::Oidc(_)));
    let profile = if upstream {
        super::profile::person(loaded, store, sub, now).await?
    } else {
        None
    };
    Ok(decide(loaded, client, &idp, sub, profile.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_serves_a_client_only_through_an_allowed_provider_and_a_listed_person() {
        let loaded = crate::testing::examples("admission");
        let web = loaded.clients["default.web-app"].clone();
        let alice = "6f1c2a4e-alice";
        assert_eq!(decide(&loaded, &web, "local-users", alice, None), Ok(()));
        let mut partners_only = web.clone();
        partners_only.allowed_identity_providers = vec!["partners".into()];
        assert_eq!(
            decide(&loaded, &partners_only, "local-users", alice, None),
            Err(Refused::ProviderNotAllowed("local-users".into()))
        );
        assert_eq!(
            decide(&loaded, &web, "local-users", "nobody", None),
            Err(Refused::PersonGone("local-users".into()))
        );
        assert_eq!(
            decide(&loaded, &web, "gone", alice, None),
            Err(Refused::ProviderGone("gone".into()))
        );
    }

    #[test]
    fn an_upstream_person_is_admitted_only_while_the_rules_still_pass() {
        use crate::testing::upstream;
        use signet_crds::snapshot::{IdentityProvider, OidcUpstream};
        let mut loaded = crate::testing::examples("admission-upstream");
        let person = User {
            username: "carol".into(),
            password_hash: String::new(),
            sub: "carol-sub".into(),
            email: Some("carol@example.com".into()),
            email_verified: true,
            name: None,
            groups: vec!["staff".into()],
        };
        let web = loaded.clients["default.web-app"].clone();
        let mut with = |settings: OidcUpstream| {
            loaded.snapshot.identity_providers = vec![IdentityProvider {
                name: "sso".into(),
                display_name: None,
                settings: ProviderSettings::Oidc(Box::new(settings)),
            }];
            decide(&loaded, &web, "sso", "carol-sub", Some(&person))
        };
        assert_eq!(with(upstream(&["example.com"], &["staff"])), Ok(()));
        assert!(matches!(
            with(upstream(&["other.example"], &[])),
            Err(Refused::Rules(
                _,
                crate::federation::claims::Refused::Domain
            ))
        ));
        assert!(matches!(
            with(upstream(&[], &["admins"])),
            Err(Refused::Rules(_, crate::federation::claims::Refused::Group))
        ));
        let web = loaded.clients["default.web-app"].clone();
        assert_eq!(
            decide(&loaded, &web, "sso", "carol-sub", None),
            Err(Refused::PersonGone("sso".into()))
        );
    }
}
