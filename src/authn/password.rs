//! Password hashing: argon2id at OWASP's parameters (ASVS 11.4.2), on the
//! blocking pool, with bounded concurrency.
//!
//! A hash costs ~19 MiB and tens of milliseconds of one core. At most
//! `concurrency` run at once and at most `queue` wait; beyond that a login is
//! refused as busy at once instead of queueing, so a login flood cannot take
//! every core from the rest of the service.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::crypto::random_bytes;

/// OWASP Password Storage Cheat Sheet, first argon2id option: m = 19 MiB,
/// t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many sign-ins are being checked; try again in a moment")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| HashError::Failed(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password (blocking). For the command line and for the hasher.
pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    let salt_bytes = random_bytes::<16>().map_err(|e| HashError::Failed(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| HashError::Failed(e.to_string()))?;
    Ok(argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| HashError::Failed(e.to_string()))?
        .to_string())
}

/// Checks a password against a stored hash (blocking). With no stored hash
/// the same work is done against a dummy, so an unknown account costs as much
/// time as a wrong password (ASVS 6.3.8).
pub fn verify_blocking(stored: Option<&str>, dummy: &str, password: &str) -> bool {
    let (phc, real) = match stored {
        Some(hash) => (hash, true),
        None => (dummy, false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(hasher) = argon2() else { return false };
    hasher.verify_password(password.as_bytes(), &parsed).is_ok() && real
}

/// Runs hashes on the blocking pool, a bounded number at a time.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    queue: usize,
    dummy: Arc<String>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize, queue: usize) -> Result<Self, HashError> {
        // A hash of a random password, for unknown accounts.
        let dummy = hash_blocking(&hex::encode(
            random_bytes::<16>().map_err(|e| HashError::Failed(e.to_string()))?,
        ))?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue,
            dummy: Arc::new(dummy),
        })
    }

    async fn run<T, F>(&self, work: F) -> Result<T, HashError>
    where
        F: FnOnce(&str) -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(HashError::Busy);
        }
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit = permit.map_err(|_| HashError::Busy)?;
        let dummy = self.dummy.clone();
        tokio::task::spawn_blocking(move || {
            let result = work(&dummy);
            drop(permit);
            result
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move |_| hash_blocking(&password)).await?
    }

    /// True only when `stored` is a hash of `password`.
    pub async fn verify(
        &self,
        stored: Option<String>,
        password: String,
    ) -> Result<bool, HashError> {
        self.run(move |dummy| verify_blocking(stored.as_deref(), dummy, &password))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_at_owasp_parameters() {
        let hash = hash_blocking("mây trắng bay qua cánh đồng").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_blocking(
            Some(&hash),
            &hash,
            "mây trắng bay qua cánh đồng"
        ));
        assert!(!verify_blocking(
            Some(&hash),
            &hash,
            "mây trắng bay qua cánh đồnG"
        ));
        // The dummy never authenticates, even with its own password.
        let dummy = hash_blocking("dummy password 1").unwrap();
        assert!(!verify_blocking(None, &dummy, "dummy password 1"));
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once() {
        let hasher = PasswordHasher::new(1, 0).unwrap();
        assert!(matches!(
            hasher.hash("x".repeat(12)).await,
            Err(HashError::Busy)
        ));
        let hasher = PasswordHasher::new(1, 4).unwrap();
        let hash = hasher.hash("a long enough password".into()).await.unwrap();
        assert!(
            hasher
                .verify(Some(hash), "a long enough password".into())
                .await
                .unwrap()
        );
    }
}
