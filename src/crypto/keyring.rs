//! The keyring: every long-lived secret key, each with one purpose (ASVS
//! 11.1.1, 11.1.2).
//!
//! | purpose | what | used for |
//! |---|---|---|
//! | `token_signing` | Ed25519 | API access tokens (JWT, `kid` = key id) |
//! | `audit_signing` | Ed25519 | signed checkpoints of the audit chain |
//! | `credential_sealing` | AES-256 | TOTP secrets at rest |
//! | `field_kek` | AES-256 | wrapping each case's data key (envelope encryption) |
//! | `blind_index` | HMAC-SHA-256 | the pupil blind index (duplicate detection) |
//! | `backup` | AES-256 | encrypting `caseguard backup` archives (`crypto/stream.rs`) |
//!
//! Several keys may exist per purpose: the newest signs or seals, older
//! ones still verify or open, so keys rotate without breaking what exists.
//!
//! Keys come from a [`KeyProvider`]. The default [`FileKeyProvider`] keeps a
//! TOML file beside the data (mode 0600), creates it on first start with a
//! loud warning, and refuses a file that group or others can read. A KMS or
//! environment provider implements the same trait.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use super::{SecretBytes, random_bytes};
use crate::clock::Clock;

/// What a key is for. One key, one purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPurpose {
    TokenSigning,
    AuditSigning,
    CredentialSealing,
    FieldKek,
    BlindIndex,
    Backup,
}

impl KeyPurpose {
    pub const ALL: &'static [KeyPurpose] = &[
        KeyPurpose::TokenSigning,
        KeyPurpose::AuditSigning,
        KeyPurpose::CredentialSealing,
        KeyPurpose::FieldKek,
        KeyPurpose::BlindIndex,
        KeyPurpose::Backup,
    ];

    /// The purposes a running service cannot start without. A keyring handed
    /// over in the environment from before backups existed has no `backup`
    /// key; only `caseguard backup` and `restore` need one.
    pub const REQUIRED: &'static [KeyPurpose] = &[
        KeyPurpose::TokenSigning,
        KeyPurpose::AuditSigning,
        KeyPurpose::CredentialSealing,
        KeyPurpose::FieldKek,
        KeyPurpose::BlindIndex,
    ];

    fn id_prefix(self) -> &'static str {
        match self {
            Self::TokenSigning => "tok",
            Self::AuditSigning => "aud",
            Self::CredentialSealing => "cred",
            Self::FieldKek => "kek",
            Self::BlindIndex => "bidx",
            Self::Backup => "bak",
        }
    }

    /// Makes fresh key material of the right kind.
    fn generate(self) -> Result<Vec<u8>, KeyringError> {
        match self {
            Self::TokenSigning | Self::AuditSigning => {
                let rng = ring::rand::SystemRandom::new();
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| KeyringError::Invalid("cannot generate an Ed25519 key".into()))?;
                Ok(pkcs8.as_ref().to_vec())
            }
            Self::CredentialSealing | Self::FieldKek | Self::BlindIndex | Self::Backup => {
                Ok(random_bytes::<32>()
                    .map_err(|e| KeyringError::Invalid(e.to_string()))?
                    .to_vec())
            }
        }
    }

    /// Checks that material is a usable key for this purpose.
    fn check(self, material: &[u8]) -> Result<(), String> {
        match self {
            Self::TokenSigning | Self::AuditSigning => Ed25519KeyPair::from_pkcs8(material)
                .map(drop)
                .map_err(|_| "not an Ed25519 PKCS#8 key".to_owned()),
            Self::CredentialSealing | Self::FieldKek | Self::BlindIndex | Self::Backup
                if material.len() == 32 =>
            {
                Ok(())
            }
            Self::CredentialSealing | Self::FieldKek | Self::BlindIndex | Self::Backup => {
                Err("not a 256-bit key".to_owned())
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("keyring {path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error("keyring: {0}")]
    Invalid(String),
}

/// One key as stored.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    id: String,
    purpose: KeyPurpose,
    created_at: DateTime<Utc>,
    /// Base64 key material.
    material: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    format: u32,
    #[serde(default, rename = "key")]
    keys: Vec<StoredKey>,
}

/// A key in memory.
#[derive(Clone)]
pub struct Key {
    pub id: String,
    pub purpose: KeyPurpose,
    pub created_at: DateTime<Utc>,
    material: SecretBytes,
}

impl Key {
    pub(crate) fn material(&self) -> &[u8] {
        self.material.expose()
    }

    /// The raw Ed25519 public key of a signing key.
    pub fn ed25519_public_key(&self) -> Option<Vec<u8>> {
        Ed25519KeyPair::from_pkcs8(self.material())
            .ok()
            .map(|pair| pair.public_key().as_ref().to_vec())
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("purpose", &self.purpose)
            .field("material", &"[redacted]")
            .finish()
    }
}

/// All keys, by purpose, newest last.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: BTreeMap<KeyPurpose, Vec<Key>>,
}

impl Keyring {
    /// The key that signs or seals new data for `purpose`.
    pub fn active(&self, purpose: KeyPurpose) -> Result<&Key, KeyringError> {
        self.keys
            .get(&purpose)
            .and_then(|keys| keys.last())
            .ok_or_else(|| KeyringError::Invalid(format!("no {purpose:?} key")))
    }

    /// A key by id, only if it has the expected purpose.
    pub fn get(&self, purpose: KeyPurpose, id: &str) -> Option<&Key> {
        self.keys.get(&purpose)?.iter().find(|key| key.id == id)
    }

    pub fn keys(&self, purpose: KeyPurpose) -> &[Key] {
        self.keys.get(&purpose).map_or(&[], Vec::as_slice)
    }

    fn from_file(file: KeyringFile) -> Result<Self, String> {
        if file.format != 1 {
            return Err(format!("unsupported keyring format {}", file.format));
        }
        let mut keyring = Self::default();
        for stored in file.keys {
            let material = STANDARD
                .decode(stored.material.as_bytes())
                .map_err(|_| format!("key {}: material is not base64", stored.id))?;
            stored
                .purpose
                .check(&material)
                .map_err(|problem| format!("key {}: {problem}", stored.id))?;
            let list = keyring.keys.entry(stored.purpose).or_default();
            if list.iter().any(|k| k.id == stored.id) {
                return Err(format!("key id {} appears twice", stored.id));
            }
            list.push(Key {
                id: stored.id,
                purpose: stored.purpose,
                created_at: stored.created_at,
                material: SecretBytes::new(material),
            });
        }
        for list in keyring.keys.values_mut() {
            list.sort_by_key(|key| key.created_at);
        }
        Ok(keyring)
    }

    fn to_file(&self) -> KeyringFile {
        KeyringFile {
            format: 1,
            keys: self
                .keys
                .values()
                .flatten()
                .map(|key| StoredKey {
                    id: key.id.clone(),
                    purpose: key.purpose,
                    created_at: key.created_at,
                    material: STANDARD.encode(key.material()),
                })
                .collect(),
        }
    }

    /// Adds a new key for `purpose`, which becomes the active one.
    pub fn add_key(
        &mut self,
        purpose: KeyPurpose,
        clock: &dyn Clock,
    ) -> Result<&Key, KeyringError> {
        let now = clock.now();
        let suffix =
            hex::encode(random_bytes::<4>().map_err(|e| KeyringError::Invalid(e.to_string()))?);
        let key = Key {
            id: format!("{}-{}-{suffix}", purpose.id_prefix(), now.format("%Y%m%d")),
            purpose,
            created_at: now,
            material: SecretBytes::new(purpose.generate()?),
        };
        let list = self.keys.entry(purpose).or_default();
        list.push(key);
        list.last()
            .ok_or_else(|| KeyringError::Invalid("key vanished".into()))
    }

    /// Removes a key (retirement). The active key of a purpose cannot be
    /// removed; returns whether a key was removed.
    pub fn remove_key(&mut self, purpose: KeyPurpose, id: &str) -> bool {
        let Some(list) = self.keys.get_mut(&purpose) else {
            return false;
        };
        if list.last().is_some_and(|active| active.id == id) {
            return false;
        }
        let before = list.len();
        list.retain(|key| key.id != id);
        list.len() != before
    }

    /// Adds a key for every purpose that has none; true when anything was added.
    fn fill_missing(&mut self, clock: &dyn Clock) -> Result<bool, KeyringError> {
        let mut added = false;
        for purpose in KeyPurpose::ALL {
            if self.keys(*purpose).is_empty() {
                self.add_key(*purpose, clock)?;
                added = true;
            }
        }
        Ok(added)
    }
}

/// Where keys come from.
pub trait KeyProvider: Send + Sync {
    /// Loads the keyring, creating what is missing where the provider can.
    fn load(&self, clock: &dyn Clock) -> Result<Keyring, KeyringError>;
}

/// A keyring file on local disk, readable by the service user only.
#[derive(Debug, Clone)]
pub struct FileKeyProvider {
    path: PathBuf,
}

const FILE_HEADER: &str = "# caseguard keyring: the keys that sign tokens and the audit log and seal\n\
# credentials. Keep it secret (mode 0600) and back it up apart from the\n\
# database: encrypted data cannot be read without it.\n";

impl FileKeyProvider {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn fail(&self, problem: impl Into<String>) -> KeyringError {
        KeyringError::File {
            path: self.path.clone(),
            problem: problem.into(),
        }
    }

    /// Reads the keyring as it is, creating and adding nothing.
    pub fn read(&self) -> Result<Keyring, KeyringError> {
        check_private(&self.path).map_err(|problem| self.fail(problem))?;
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| self.fail(format!("cannot read: {e}")))?;
        let file: KeyringFile = toml::from_str(&text)
            .map_err(|e| self.fail(format!("is not a valid keyring: {}", e.message())))?;
        Keyring::from_file(file).map_err(|problem| self.fail(problem))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the keyring atomically (new file with mode 0600, then rename).
    pub fn write(&self, keyring: &Keyring) -> Result<(), KeyringError> {
        let text = toml::to_string(&keyring.to_file()).map_err(|e| self.fail(e.to_string()))?;
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| self.fail(format!("cannot create its directory: {e}")))?;
        let temp = dir.join(format!(".keyring-{}.tmp", uuid::Uuid::new_v4()));
        let result = (|| -> std::io::Result<()> {
            let mut file = open_private(&temp)?;
            file.write_all(FILE_HEADER.as_bytes())?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temp, &self.path)?;
            Ok(())
        })();
        if let Err(error) = result {
            let _ = std::fs::remove_file(&temp);
            return Err(self.fail(format!("cannot write: {error}")));
        }
        Ok(())
    }
}

/// A keyring handed over in an environment variable (the TOML of a keyring
/// file), as Kubernetes and systemd inject secrets. It is never written:
/// missing keys are an error naming them, and rotation happens by replacing
/// the secret.
#[derive(Debug, Clone)]
pub struct EnvKeyProvider {
    name: String,
}

impl EnvKeyProvider {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

impl KeyProvider for EnvKeyProvider {
    fn load(&self, _clock: &dyn Clock) -> Result<Keyring, KeyringError> {
        let fail = |problem: String| {
            KeyringError::Invalid(format!(
                "from environment variable {}: {problem}",
                self.name
            ))
        };
        let text = std::env::var(&self.name).map_err(|_| fail("is not set or not UTF-8".into()))?;
        let file: KeyringFile = toml::from_str(&text)
            .map_err(|e| fail(format!("is not a valid keyring: {}", e.message())))?;
        let keyring = Keyring::from_file(file).map_err(fail)?;
        let missing: Vec<String> = KeyPurpose::REQUIRED
            .iter()
            .filter(|p| keyring.keys(**p).is_empty())
            .map(|p| format!("{p:?}"))
            .collect();
        if !missing.is_empty() {
            return Err(fail(format!("has no key for: {}", missing.join(", "))));
        }
        Ok(keyring)
    }
}

/// The keyring as a running service sees it: when the file changes (checked
/// at most once a second), it is read again, so a key rotation done with
/// `caseguard keys rotate` reaches every replica without a restart. A file
/// that cannot be read keeps the keys in memory and logs a warning.
pub struct KeyringHandle {
    provider: Option<FileKeyProvider>,
    state: RwLock<Loaded>,
}

struct Loaded {
    keyring: Arc<Keyring>,
    modified: Option<SystemTime>,
    checked: Instant,
}

/// How often the keyring file's modification time is looked at.
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);

impl std::fmt::Debug for KeyringHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringHandle").finish_non_exhaustive()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl KeyringHandle {
    /// Keys that never change (tests, tools).
    pub fn fixed(keyring: Keyring) -> Self {
        Self {
            provider: None,
            state: RwLock::new(Loaded {
                keyring: Arc::new(keyring),
                modified: None,
                checked: Instant::now(),
            }),
        }
    }

    /// Keys from `provider`'s file, followed as it changes.
    pub fn watching(provider: FileKeyProvider, keyring: Keyring) -> Self {
        let modified = modified(provider.path());
        Self {
            provider: Some(provider),
            state: RwLock::new(Loaded {
                keyring: Arc::new(keyring),
                modified,
                checked: Instant::now(),
            }),
        }
    }

    /// The current keys.
    pub fn current(&self) -> Arc<Keyring> {
        {
            let loaded = self.state.read().unwrap_or_else(PoisonError::into_inner);
            if self.provider.is_none() || loaded.checked.elapsed() < RELOAD_CHECK {
                return loaded.keyring.clone();
            }
        }
        let mut loaded = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if loaded.checked.elapsed() >= RELOAD_CHECK
            && let Some(provider) = &self.provider
        {
            loaded.checked = Instant::now();
            let now_modified = modified(provider.path());
            if now_modified != loaded.modified {
                match provider.read() {
                    Ok(keyring) => {
                        loaded.keyring = Arc::new(keyring);
                        loaded.modified = now_modified;
                        tracing::info!("keyring reloaded");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "keyring changed but cannot be read; keeping the keys in memory")
                    }
                }
            }
        }
        loaded.keyring.clone()
    }
}

/// A new file only its owner can read (mode 0600); fails if it exists.
#[cfg(unix)]
pub(crate) fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
pub(crate) fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "is readable by group or others (mode {:o}); run `chmod 600 {}`",
            mode & 0o777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), String> {
    Ok(())
}

impl KeyProvider for FileKeyProvider {
    fn load(&self, clock: &dyn Clock) -> Result<Keyring, KeyringError> {
        if !self.path.exists() {
            let mut keyring = Keyring::default();
            keyring.fill_missing(clock)?;
            self.write(&keyring)?;
            tracing::warn!(
                path = %self.path.display(),
                "created a new keyring. Back it up apart from the database now: without it, \
                 tokens, the audit signatures and encrypted data cannot be verified or read"
            );
            return Ok(keyring);
        }
        check_private(&self.path).map_err(|problem| self.fail(problem))?;
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| self.fail(format!("cannot read: {e}")))?;
        let file: KeyringFile = toml::from_str(&text)
            .map_err(|e| self.fail(format!("is not a valid keyring: {}", e.message())))?;
        let mut keyring = Keyring::from_file(file).map_err(|problem| self.fail(problem))?;
        if keyring.fill_missing(clock)? {
            self.write(&keyring)?;
            tracing::warn!(path = %self.path.display(), "added keys for new purposes to the keyring; back it up again");
        }
        Ok(keyring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    #[test]
    fn created_private_and_reloaded_identically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        let provider = FileKeyProvider::new(&path);
        let first = provider.load(&SystemClock).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = provider.load(&SystemClock).unwrap();
        for purpose in KeyPurpose::ALL {
            let (a, b) = (
                first.active(*purpose).unwrap(),
                second.active(*purpose).unwrap(),
            );
            assert_eq!(a.id, b.id);
            assert_eq!(a.material(), b.material());
        }
        assert!(
            !format!("{first:?}").contains(
                &STANDARD.encode(
                    first
                        .active(KeyPurpose::CredentialSealing)
                        .unwrap()
                        .material()
                )
            )
        );
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_keyring_others_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        FileKeyProvider::new(&path).load(&SystemClock).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = FileKeyProvider::new(&path)
            .load(&SystemClock)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("readable by group or others (mode 644)"),
            "{err}"
        );
    }

    #[test]
    fn refuses_damaged_material() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        let text = "format = 1\n[[key]]\nid = \"cred-1\"\npurpose = \"credential_sealing\"\ncreated_at = \"2026-01-01T00:00:00Z\"\nmaterial = \"c2hvcnQ=\"\n";
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let err = FileKeyProvider::new(&path)
            .load(&SystemClock)
            .unwrap_err()
            .to_string();
        assert!(err.contains("key cred-1: not a 256-bit key"), "{err}");
    }

    #[test]
    fn newest_key_is_active_and_old_ones_remain() {
        let mut keyring = Keyring::default();
        let clock =
            crate::clock::FixedClock::new(DateTime::from_timestamp(1_790_000_000, 0).unwrap());
        let first = keyring
            .add_key(KeyPurpose::TokenSigning, &clock)
            .unwrap()
            .id
            .clone();
        clock.advance(chrono::Duration::days(1));
        let second = keyring
            .add_key(KeyPurpose::TokenSigning, &clock)
            .unwrap()
            .id
            .clone();
        assert_eq!(keyring.active(KeyPurpose::TokenSigning).unwrap().id, second);
        assert!(keyring.get(KeyPurpose::TokenSigning, &first).is_some());
        assert!(keyring.get(KeyPurpose::AuditSigning, &first).is_none());
    }
}
