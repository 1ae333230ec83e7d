//! The signing-key lifecycle as one pure function: from a SigningKey's spec, its status, the
//! key Secrets that exist, its annotations and `now`, decide the next single write and when to
//! look again.
//!
//! One write per decision makes crash safety plain: whatever write last succeeded, the state in
//! the API server is a valid input for the next decision. The writes of one transition are
//! ordered so that no state in between is unsafe:
//! - a key Secret is created before its version is recorded (a Secret without a status entry
//!   is adopted by the next decision, or deleted if nothing needs it);
//! - a retirement or revocation is recorded before the Secret is deleted (an entry whose
//!   Secret is gone is then dropped).
//!
//! ```text
//!            create Secret   record                activates             retires               expires
//! version N  ─────●──────────●────── Pending ──────●──── Active ─────────●──── Retired ────────●  (Secret deleted)
//!                            │<── propagationTime ─>│<── rotationInterval ─>│<── retentionTime ──>│
//! version N+1                                                    ●─ Pending ─●──── Active ─────...
//!                                     (recorded propagationTime before N retires)
//! ```

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use signet_crds::v1alpha1::{KeyPhase, KeyVersion, SigningKeySpec};

/// A key Secret that exists for this SigningKey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySecret {
    /// Secret name.
    pub name: String,
    /// The key ID it holds.
    pub kid: String,
}

/// What the decision reads.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The SigningKey's spec.
    pub spec: &'a SigningKeySpec,
    /// `status.keys`.
    pub versions: &'a [KeyVersion],
    /// Key Secrets that exist.
    pub secrets: &'a [KeySecret],
    /// Value of the `signet.dev/rotate` annotation.
    pub rotate: Option<&'a str>,
    /// The rotate request already acted on (`status.lastRotateRequest`).
    pub rotate_done: Option<&'a str>,
    /// Value of the `signet.dev/revoke` annotation: a kid.
    pub revoke: Option<&'a str>,
    /// The revoke request already acted on (`status.lastRevokeRequest`).
    pub revoke_done: Option<&'a str>,
    /// The key ids every live STS replica of the TokenServices using this key publishes in the
    /// JWKS it serves; None when no replica reports (nothing to wait for).
    pub published: Option<&'a BTreeSet<String>>,
    /// The time of the decision.
    pub now: Timestamp,
}

/// The one write to make.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Generate a key version into a new Secret. Nothing is recorded yet.
    CreateKeySecret,
    /// Replace `status.keys` and the requests acted on.
    WriteStatus {
        /// The new key list.
        versions: Vec<KeyVersion>,
        /// The rotate request now acted on.
        last_rotate_request: Option<String>,
        /// The revoke request now acted on.
        last_revoke_request: Option<String>,
    },
    /// Delete a key Secret whose version is retired past retention, or revoked.
    DeleteKeySecret(String),
}

/// A decision: at most one write, and when to decide again at the latest.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The write, if any.
    pub step: Option<Step>,
    /// When something becomes due without any change from outside.
    pub requeue_at: Option<Timestamp>,
    /// A problem to report in a condition (e.g. a revoke of an unknown kid).
    pub warning: Option<String>,
}

fn t(time: &Time) -> Timestamp {
    time.0
}

fn after(at: Timestamp, d: std::time::Duration) -> Timestamp {
    at.saturating_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

fn time(at: Timestamp) -> Time {
    Time(at)
}

/// Decides the next write for one SigningKey.
pub fn decide(f: &Facts<'_>) -> Plan {
    let rotation = f.spec.rotation_interval.get();
    let propagation = f.spec.propagation_time.get();
    let retention = f.spec.retention_time.get();
    let has_secret = |v: &KeyVersion| f.secrets.iter().any(|s| s.name == v.secret_name);
    let phase = |p: KeyPhase| f.versions.iter().find(|v| v.phase == p);
    let active = phase(KeyPhase::Active);
    let pending = phase(KeyPhase::Pending);
    let rotate_requested = f.rotate.is_some() && f.rotate != f.rotate_done;
    let revoke_requested = f.revoke.is_some() && f.revoke != f.revoke_done;
    let revoke = f.revoke.filter(|_| revoke_requested).and_then(|kid| {
        f.versions
            .iter()
            .find(|v| v.kid == kid && v.phase != KeyPhase::Revoked)
    });
    let warning = f
        .revoke
        .filter(|kid| revoke_requested && !f.versions.iter().any(|v| v.kid == *kid))
        .map(|kid| {
            format!("signet.dev/revoke names kid {kid}, which this SigningKey does not have")
        });
    let plan = |step: Step| Plan {
        step: Some(step),
        requeue_at: None,
        warning: warning.clone(),
    };
    // A write that carries out the revoke request records it as done.
    let write_revoking = |versions: Vec<KeyVersion>, rotate_done: Option<&str>, revoked: bool| {
        plan(Step::WriteStatus {
            versions,
            last_rotate_request: rotate_done.map(str::to_owned),
            last_revoke_request: if revoked { f.revoke } else { f.revoke_done }.map(str::to_owned),
        })
    };
    let write = |versions: Vec<KeyVersion>, rotate_done: Option<&str>| {
        write_revoking(versions, rotate_done, false)
    };
    let rotate_done_after = if rotate_requested {
        f.rotate
    } else {
        f.rotate_done
    };

    // 1. A Secret without a status entry: the first half of a key creation. Adopt it if a key
    //    is needed, else delete it.
    let orphans: Vec<&KeySecret> = f
        .secrets
        .iter()
        .filter(|s| !f.versions.iter().any(|v| v.secret_name == s.name))
        .collect();
    let needs_active = active.is_none() || revoke.is_some_and(|r| r.phase == KeyPhase::Active);
    let needs_pending = pending.is_none()
        && (rotate_requested
            || active.is_some_and(|a| f.now >= rotation_starts(a, rotation, propagation)));
    if let Some(orphan) = orphans.first() {
        if needs_active && pending.is_none() {
            // Bootstrap or emergency: the new key signs at once.
            let mut versions = f.versions.to_vec();
            if let Some(revoked) = revoke {
                mark(
                    &mut versions,
                    &revoked.kid,
                    KeyPhase::Revoked,
                    f.now,
                    retention,
                );
            }
            versions.push(KeyVersion {
                kid: orphan.kid.clone(),
                phase: KeyPhase::Active,
                created: time(f.now),
                activates: time(f.now),
                retires: Some(time(after(f.now, rotation))),
                expires: None,
                secret_name: orphan.name.clone(),
            });
            return write_revoking(versions, rotate_done_after, revoke.is_some());
        }
        if needs_pending && !needs_active {
            let activates = after(f.now, propagation);
            let mut versions = f.versions.to_vec();
            for v in versions.iter_mut().filter(|v| v.phase == KeyPhase::Active) {
                v.retires = Some(time(activates));
            }
            versions.push(KeyVersion {
                kid: orphan.kid.clone(),
                phase: KeyPhase::Pending,
                created: time(f.now),
                activates: time(activates),
                retires: Some(time(after(activates, rotation))),
                expires: None,
                secret_name: orphan.name.clone(),
            });
            return write(versions, rotate_done_after);
        }
        return plan(Step::DeleteKeySecret(orphan.name.clone()));
    }

    // 2. Entries whose Secret is gone: expired or revoked ones after their deletion (or a
    //    Secret someone deleted). They can no longer be published.
    if f.versions.iter().any(|v| !has_secret(v)) {
        let kept: Vec<KeyVersion> = f
            .versions
            .iter()
            .filter(|v| has_secret(v))
            .cloned()
            .collect();
        return write(kept, f.rotate_done);
    }

    // 3. Emergency revoke: out of the JWKS at once; a pending key takes over at once.
    if let Some(revoked) = revoke {
        if revoked.phase == KeyPhase::Active {
            let Some(successor) = pending else {
                return plan(Step::CreateKeySecret);
            };
            let mut versions = f.versions.to_vec();
            mark(
                &mut versions,
                &revoked.kid,
                KeyPhase::Revoked,
                f.now,
                retention,
            );
            promote(&mut versions, &successor.kid, f.now, rotation);
            return write_revoking(versions, f.rotate_done, true);
        }
        let mut versions = f.versions.to_vec();
        mark(
            &mut versions,
            &revoked.kid,
            KeyPhase::Revoked,
            f.now,
            retention,
        );
        return write_revoking(versions, f.rotate_done, true);
    }

    // 4. Revoked and expired versions lose their Secret (the entry goes in step 2).
    if let Some(v) = f.versions.iter().find(|v| v.phase == KeyPhase::Revoked) {
        return plan(Step::DeleteKeySecret(v.secret_name.clone()));
    }
    if let Some(v) = f
        .versions
        .iter()
        .find(|v| v.phase == KeyPhase::Retired && v.expires.as_ref().is_some_and(|e| t(e) <= f.now))
    {
        return plan(Step::DeleteKeySecret(v.secret_name.clone()));
    }

    // 5. No active key: the first key, or a pending one promoted.
    if active.is_none() {
        return match pending {
            Some(p) => {
                let mut versions = f.versions.to_vec();
                promote(&mut versions, &p.kid, f.now, rotation);
                write(versions, f.rotate_done)
            }
            None => plan(Step::CreateKeySecret),
        };
    }

    // 6. A pending key whose time has come, and that every live replica publishes, takes over;
    //    the active one retires. Its propagation time is a lower bound for caches outside the
    //    cluster; the replicas' own JWKS is known, so it is waited for. (An emergency revoke
    //    and a first key do not wait: steps 3 and 5.)
    //    The wait is bounded by one more propagation time: a replica that never publishes it
    //    (one that refuses every snapshot, or a stale report) must not stop rotation for good;
    //    such a replica serves old keys anyway, and its report says why.
    let published = |kid: &str| f.published.is_none_or(|kids| kids.contains(kid));
    let waited_out = |p: &KeyVersion| f.now >= after(t(&p.activates), propagation);
    let takes_over =
        |p: &&KeyVersion| t(&p.activates) <= f.now && (published(&p.kid) || waited_out(p));
    if let Some(p) = pending.filter(takes_over) {
        let mut versions = f.versions.to_vec();
        if let Some(a) = active {
            mark(&mut versions, &a.kid, KeyPhase::Retired, f.now, retention);
        }
        promote(&mut versions, &p.kid, f.now, rotation);
        return write(versions, f.rotate_done);
    }

    // 7. Time for the next key (or a rotation was asked for): create it, to be recorded as
    //    pending. A request while a key is already pending is simply acknowledged.
    if needs_pending {
        return plan(Step::CreateKeySecret);
    }
    if rotate_requested {
        return write(f.versions.to_vec(), f.rotate);
    }

    // Nothing to do now: when is the next thing due?
    let mut due = Vec::new();
    if let Some(p) = pending {
        // Once due, it waits for the replicas' reports (each starts a pass by itself), and at
        // most one more propagation time.
        if t(&p.activates) > f.now {
            due.push(t(&p.activates));
        } else {
            due.push(after(t(&p.activates), propagation));
        }
    } else if let Some(a) = active {
        due.push(rotation_starts(a, rotation, propagation));
    }
    due.extend(f.versions.iter().filter_map(|v| v.expires.as_ref().map(t)));
    Plan {
        step: None,
        requeue_at: due.into_iter().min(),
        warning,
    }
}

/// When the successor of active version `a` must be created: propagationTime before `a`
/// has signed for rotationInterval.
fn rotation_starts(
    a: &KeyVersion,
    rotation: std::time::Duration,
    propagation: std::time::Duration,
) -> Timestamp {
    let end = after(t(&a.activates), rotation);
    end.saturating_sub(SignedDuration::try_from(propagation).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MIN)
}

/// Sets `kid` to `phase` (Retired or Revoked) as of `now`.
fn mark(
    versions: &mut [KeyVersion],
    kid: &str,
    phase: KeyPhase,
    now: Timestamp,
    retention: std::time::Duration,
) {
    for v in versions.iter_mut().filter(|v| v.kid == kid) {
        if v.phase == KeyPhase::Active || v.phase == KeyPhase::Pending {
            v.retires = Some(time(now));
        }
        v.phase = phase;
        v.expires = Some(time(if phase == KeyPhase::Revoked {
            now
        } else {
            after(now, retention)
        }));
    }
}

/// Makes `kid` the active version as of `now`.
fn promote(versions: &mut [KeyVersion], kid: &str, now: Timestamp, rotation: std::time::Duration) {
    for v in versions.iter_mut().filter(|v| v.kid == kid) {
        v.phase = KeyPhase::Active;
        v.activates = time(now);
        v.retires = Some(time(after(now, rotation)));
    }
}
