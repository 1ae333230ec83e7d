//! People of `static` identity providers: parsed once per snapshot from the users Secret, and
//! their passwords checked on a small pool of low-priority threads (`hashing`), so a flood of
//! logins queues there instead of taking the CPU the token endpoint needs.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// One person, as listed in the users Secret.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Login name.
    pub username: String,
    /// PHC string (`$argon2id$...`) or bcrypt (`$2b$...`).
    #[serde(default, skip_serializing)]
    pub password_hash: String,
    /// Stable subject.
    pub sub: String,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the email address is verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Group names.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The users of every static provider, by username and by subject.
#[derive(Default)]
pub struct Directory {
    by_username: HashMap<String, (String, Arc<User>)>,
    by_sub: HashMap<String, (String, Arc<User>)>,
}

impl Directory {
    /// Parses each provider's users YAML; a list that does not parse is skipped with `Err`
    /// naming the provider (the caller logs it; other providers still work).
    pub fn parse<'a>(
        providers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> (Self, Vec<String>) {
        let mut directory = Self::default();
        let mut errors = Vec::new();
        for (provider, yaml) in providers {
            match serde_norway::from_str::<Vec<User>>(yaml) {
                Ok(users) => {
                    for user in users {
                        let user = Arc::new(user);
                        directory
                            .by_sub
                            .insert(user.sub.clone(), (provider.to_owned(), user.clone()));
                        directory
                            .by_username
                            .insert(user.username.clone(), (provider.to_owned(), user));
                    }
                }
                // The error names a line, never the hashes themselves.
                Err(error) => errors.push(format!(
                    "users of identity provider {provider} do not parse: {}",
                    error
                        .location()
                        .map(|l| format!("line {}", l.line()))
                        .unwrap_or_default()
                )),
            }
        }
        (directory, errors)
    }

    /// The user with `username` and its provider.
    pub fn by_username(&self, username: &str) -> Option<(&str, &Arc<User>)> {
        self.by_username
            .get(username)
            .map(|(provider, user)| (provider.as_str(), user))
    }

    /// The user with subject `sub` and its provider.
    pub fn by_sub(&self, sub: &str) -> Option<(&str, &Arc<User>)> {
        self.by_sub
            .get(sub)
            .map(|(provider, user)| (provider.as_str(), user))
    }
}

/// An argon2id hash of a random password with the cost of the example users (m=64 MiB, t=3,
/// p=4), made once and checked for unknown usernames, so that an unknown name costs what a
/// wrong password costs.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).expect("the OS random source works");
    let params = argon2::Params::new(65536, 3, 4, None).expect("valid argon2 parameters");
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    hasher
        .hash_password(
            crate::random::token().as_bytes(),
            &SaltString::encode_b64(&salt).expect("16 bytes make a salt"),
        )
        .expect("argon2 hashes")
        .to_string()
});

/// Whether `password` matches `hash` (argon2 PHC or bcrypt). Blocking and slow by design.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    if hash.starts_with("$2") {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Password checks on at most `threads` blocking threads at once; callers beyond `queue`
/// waiting are turned away at once (the page says to try again) rather than piling up.
/// Attempts from addresses with recent failures ("suspects") get a share only: a quarter of the
/// queue, and half the threads (one of one), so at most that many suspects are ever on a
/// thread or first in line for one. However many guesses a flood sends, a person whose
/// address has not been failing waits behind at most one suspect per thread, not the flood.
pub struct VerifierPool {
    hashers: super::hashing::Hashers,
    running: Semaphore,
    waiting: Semaphore,
    suspects_running: Semaphore,
    suspects_waiting: Semaphore,
}

/// The pool is full: too many logins at once.
#[derive(Debug, thiserror::Error)]
#[error("too many sign-ins at once")]
pub struct Busy;

impl VerifierPool {
    /// A pool of `threads` checkers with room for `queue` waiting logins.
    pub fn new(threads: usize, queue: usize) -> Self {
        let (threads, queue) = (threads.max(1), queue.max(4));
        Self {
            hashers: super::hashing::Hashers::start(threads),
            running: Semaphore::new(threads),
            waiting: Semaphore::new(queue),
            suspects_running: Semaphore::new((threads / 2).max(1)),
            suspects_waiting: Semaphore::new(queue / 4),
        }
    }

    /// Checks `password` for `user`, or against the dummy hash when there is no such user;
    /// `clean` when the attempt's address had no recent failure (it may use the whole pool).
    pub async fn check(
        &self,
        user: Option<&User>,
        password: &str,
        clean: bool,
    ) -> Result<bool, Busy> {
        let share = match clean {
            true => None,
            false => Some(self.suspects_waiting.try_acquire().map_err(|_| Busy)?),
        };
        let _queued = self.waiting.try_acquire().map_err(|_| Busy)?;
        // A suspect takes a suspect's turn before lining up for a thread, so the line for the
        // threads never holds more suspects than they have turns.
        let _suspect_thread = match share {
            Some(_) => Some(self.suspects_running.acquire().await.map_err(|_| Busy)?),
            None => None,
        };
        let _running = self.running.acquire().await.map_err(|_| Busy)?;
        let hash = user
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.clone());
        let known = user.is_some();
        let password = password.to_owned();
        let matched = self
            .hashers
            .run(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        Ok(known && matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "$argon2id$v=19$m=65536,t=3,p=4$ixFIyCpo0OA0QnJjvECYRg$3w/btbKOd8uYMjP3dCzrpXZ/xIksutauDrvXnUNW1j8";

    #[test]
    fn argon2id_and_bcrypt_hashes_verify() {
        assert!(verify_password("correct horse battery staple", ALICE));
        assert!(!verify_password("wrong", ALICE));
        let bcrypt_hash = bcrypt::hash("s3cret", 4).unwrap();
        assert!(verify_password("s3cret", &bcrypt_hash));
        assert!(!verify_password("other", &bcrypt_hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash_with_the_usual_cost() {
        use argon2::password_hash::PasswordHash;
        let parsed = PasswordHash::new(&DUMMY_HASH).expect("parses");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let example = PasswordHash::new(ALICE).unwrap();
        assert_eq!(parsed.params, example.params, "same cost as real users");
        assert!(!verify_password("", &DUMMY_HASH));
    }

    #[tokio::test]
    async fn unknown_users_never_match() {
        let pool = VerifierPool::new(1, 1);
        assert!(!pool.check(None, "anything", true).await.unwrap());
        let directory =
            Directory::parse([("local", "- {username: a, passwordHash: 'x', sub: s1}\n")]).0;
        assert_eq!(directory.by_username("a").unwrap().0, "local");
        assert_eq!(directory.by_sub("s1").unwrap().1.username, "a");
        let (_, errors) = Directory::parse([("broken", "- [")]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("broken"));
    }

    #[tokio::test]
    async fn suspects_get_one_turn_on_the_thread_and_a_quarter_of_the_queue() {
        let pool = std::sync::Arc::new(VerifierPool::new(1, 8));
        // A suspect holds the suspects' only turn; two more wait for it.
        let suspect_thread = pool.suspects_running.acquire().await.unwrap();
        let mut suspects = Vec::new();
        for _ in 0..2 {
            let pool = pool.clone();
            suspects.push(tokio::spawn(
                async move { pool.check(None, "x", false).await },
            ));
        }
        while pool.suspects_waiting.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(
            pool.check(None, "x", false).await.is_err(),
            "a third suspect is turned away"
        );
        // A person from a clean address is checked at once: no suspect is in line for the
        // thread ahead of them.
        assert_eq!(pool.running.available_permits(), 1);
        assert!(!pool.check(None, "x", true).await.unwrap());
        drop(suspect_thread);
        for task in suspects {
            assert!(!task.await.unwrap().unwrap(), "checked, and no match");
        }
    }
}
