//! IdentityProviders: the upstream sign-in sources a TokenService names, with their secrets.

use kube::ResourceExt;

use super::{ConditionType, Inputs, Kind, ObjectKey, Output, Report, named_by_token_service};
use crate::snapshot::{self, Redacted};
use crate::v1alpha1::{IdentityProvider, TokenService};

/// The Secret the compiler reads for `idp`: its static users, else its upstream client secret.
pub(super) fn read_by_compile(idp: &IdentityProvider) -> Option<ObjectKey> {
    let name = match (&idp.spec.static_users, &idp.spec.oidc) {
        (Some(s), _) => &s.users_secret_ref.name,
        (None, Some(o)) => &o.client_secret_ref.name,
        (None, None) => return None,
    };
    Some(ObjectKey::new(&idp.namespace().unwrap_or_default(), name))
}

pub(super) fn compile_identity_providers(
    inputs: &Inputs,
    ts: &TokenService,
    out: &mut Output,
) -> Vec<snapshot::IdentityProvider> {
    let ts_key = ObjectKey::of(ts);
    let mut compiled = Vec::new();
    for name in &ts.spec.identity_providers {
        let Some((idp, key)) = named_by_token_service(
            &inputs.identity_providers,
            &ts_key,
            name,
            ("IdentityProvider", "IdentityProviderNotFound"),
            out,
        ) else {
            continue;
        };
        let mut report = Report {
            token_service: Some(ts_key.clone()),
            ..Default::default()
        };
        let secret = |r: &crate::v1alpha1::SecretKeyRef, report: &mut Report| -> Option<Redacted> {
            let value = inputs
                .secrets
                .get(&ObjectKey::new(&key.namespace, &r.name))
                .and_then(|s| s.data.get(&r.key));
            match value.map(|v| String::from_utf8(v.clone())) {
                Some(Ok(text)) => Some(Redacted(text)),
                Some(Err(_)) => {
                    report.exclude(
                        ConditionType::Ready,
                        "SecretInvalid",
                        format!("Secret {}/{} is not UTF-8", r.name, r.key),
                    );
                    None
                }
                None => {
                    report.exclude(
                        ConditionType::Ready,
                        "SecretNotFound",
                        format!("Secret {} has no key {}", r.name, r.key),
                    );
                    None
                }
            }
        };
        let settings = match (&idp.spec.static_users, &idp.spec.oidc) {
            (Some(s), _) => secret(&s.users_secret_ref, &mut report)
                .map(|users| snapshot::ProviderSettings::Static { users }),
            (None, Some(o)) => secret(&o.client_secret_ref, &mut report).map(|client_secret| {
                snapshot::ProviderSettings::Oidc(Box::new(snapshot::OidcUpstream {
                    issuer: o.issuer.clone(),
                    client_id: o.client_id.clone(),
                    client_secret,
                    scopes: if o.scopes.is_empty() {
                        vec!["openid".into(), "email".into(), "profile".into()]
                    } else {
                        o.scopes.clone()
                    },
                    claim_mappings: o.claim_mappings.clone(),
                    allowed_email_domains: o.allowed_email_domains.clone(),
                    allowed_groups: o.allowed_groups.clone(),
                }))
            }),
            (None, None) => {
                report.exclude(
                    ConditionType::Ready,
                    "InvalidSpec",
                    "neither static nor oidc settings".to_owned(),
                );
                None
            }
        };
        if let Some(settings) = settings {
            compiled.push(snapshot::IdentityProvider {
                name: name.clone(),
                display_name: idp.spec.display_name.clone(),
                settings,
            });
        }
        out.reports.insert((Kind::IdentityProvider, key), report);
    }
    compiled
}
