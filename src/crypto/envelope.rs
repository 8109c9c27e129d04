//! Envelope encryption of case data (DESIGN §4).
//!
//! Every case has its own random 256-bit data key (DEK). The DEK is stored
//! only wrapped — sealed under the keyring's active field key-encryption key
//! (KEK), bound to its case — so rotating the KEK rewraps DEKs without
//! touching field data, and destroying a case's wrapped DEK crypto-shreds the
//! case. Fields are sealed under the DEK with the same stored format as
//! everything else (`sealed.rs`), bound to table, column, row and case.
//!
//! The blind index lets intake find "this pupil already has a case at your
//! school" without decrypting anything: a truncated HMAC-SHA-256, under its
//! own key, of the school, the normalised name and the date of birth.
//! Exact match only; it is never computed over coded fields.

use unicode_normalization::UnicodeNormalization;

use super::keyring::{KeyPurpose, Keyring};
use super::sealed::{self, Binding, SealError};
use super::{SecretBytes, hmac_sha256, random_bytes};

/// The key id data keys carry in sealed fields (one DEK per case).
const DEK_ID: &str = "dek";

/// A case's data key, in memory only while the case is being read or written.
#[derive(Clone)]
pub struct DataKey(SecretBytes);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

/// A wrapped data key as stored: the KEK's id and the sealed DEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub kek_id: String,
    pub sealed: Vec<u8>,
}

fn dek_binding(case_id: &str) -> Binding<'_> {
    Binding {
        table: "case_keys",
        column: "wrapped_dek",
        row_id: case_id,
        case_id,
    }
}

/// The binding of a data key re-wrapped for the school holding the case (a
/// transfer): the wrapped key opens only for that case at that school.
fn school_dek_binding<'a>(case_id: &'a str, school_id: &'a str) -> Binding<'a> {
    Binding {
        table: "case_keys",
        column: "wrapped_dek@school",
        row_id: school_id,
        case_id,
    }
}

/// Where a wrapped data key is bound: to its case alone (as made at
/// intake), or to its case at one school (after a transfer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyBinding<'a> {
    Case,
    School(&'a str),
}

impl KeyBinding<'_> {
    fn binding<'a>(&'a self, case_id: &'a str) -> Binding<'a> {
        match self {
            Self::Case => dek_binding(case_id),
            Self::School(school_id) => school_dek_binding(case_id, school_id),
        }
    }
}

impl DataKey {
    pub fn generate() -> Result<Self, SealError> {
        Ok(Self(SecretBytes::new(
            random_bytes::<32>()
                .map_err(|_| SealError::Random)?
                .to_vec(),
        )))
    }

    /// Wraps this key under the active KEK, bound to `case_id`.
    pub fn wrap(&self, keyring: &Keyring, case_id: &str) -> Result<WrappedKey, SealError> {
        self.wrap_bound(keyring, case_id, KeyBinding::Case)
    }

    /// Wraps this key under the active KEK, bound as `bound`.
    pub fn wrap_bound(
        &self,
        keyring: &Keyring,
        case_id: &str,
        bound: KeyBinding<'_>,
    ) -> Result<WrappedKey, SealError> {
        let kek = keyring
            .active(KeyPurpose::FieldKek)
            .map_err(|_| SealError::BadKey)?;
        Ok(WrappedKey {
            kek_id: kek.id.clone(),
            sealed: sealed::seal(
                &kek.id,
                kek.material(),
                &bound.binding(case_id),
                self.0.expose(),
            )?,
        })
    }

    /// Unwraps a stored key with whichever KEK wrapped it.
    pub fn unwrap(keyring: &Keyring, case_id: &str, wrapped: &[u8]) -> Result<Self, SealError> {
        Self::unwrap_bound(keyring, case_id, KeyBinding::Case, wrapped)
    }

    /// Unwraps a stored key bound as `bound`; any other binding fails.
    pub fn unwrap_bound(
        keyring: &Keyring,
        case_id: &str,
        bound: KeyBinding<'_>,
        wrapped: &[u8],
    ) -> Result<Self, SealError> {
        let key = sealed::open(wrapped, &bound.binding(case_id), |id| {
            keyring.get(KeyPurpose::FieldKek, id).map(|k| k.material())
        })?;
        if key.expose().len() != 32 {
            return Err(SealError::Open);
        }
        Ok(Self(key))
    }

    pub fn seal(&self, binding: &Binding<'_>, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        sealed::seal(DEK_ID, self.0.expose(), binding, plaintext)
    }

    pub fn open(&self, binding: &Binding<'_>, stored: &[u8]) -> Result<SecretBytes, SealError> {
        sealed::open(stored, binding, |id| {
            (id == DEK_ID).then_some(self.0.expose())
        })
    }

    /// Opens a field that holds UTF-8 text.
    pub fn open_text(&self, binding: &Binding<'_>, stored: &[u8]) -> Result<SecretText, SealError> {
        let bytes = self.open(binding, stored)?;
        let text = std::str::from_utf8(bytes.expose()).map_err(|_| SealError::Open)?;
        Ok(SecretText(zeroize::Zeroizing::new(text.to_owned())))
    }
}

/// Decrypted text: zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(zeroize::Zeroizing<String>);

impl SecretText {
    pub fn new(text: String) -> Self {
        Self(zeroize::Zeroizing::new(text))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Normalises a name for the blind index: Unicode NFC, lower case, single
/// spaces. Diacritics are kept: "Lê" and "Le" are different names.
pub fn normalise_name(name: &str) -> String {
    name.nfc()
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The blind index of a pupil at a school: hex of the first 16 bytes of
/// HMAC-SHA-256(blind-index key, school ‖ name ‖ date of birth).
pub fn blind_index(
    keyring: &Keyring,
    school_id: &str,
    name: &str,
    date_of_birth: &str,
) -> Result<String, SealError> {
    let key = keyring
        .active(KeyPurpose::BlindIndex)
        .map_err(|_| SealError::BadKey)?;
    let input = format!(
        "{school_id}\u{1f}{}\u{1f}{date_of_birth}",
        normalise_name(name)
    );
    let tag = hmac_sha256(key.material(), input.as_bytes());
    Ok(hex::encode(tag.get(..16).unwrap_or(&tag)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    fn keyring() -> Keyring {
        let clock = FixedClock::new(chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap());
        let mut keyring = Keyring::default();
        keyring.add_key(KeyPurpose::FieldKek, &clock).unwrap();
        keyring.add_key(KeyPurpose::BlindIndex, &clock).unwrap();
        keyring
    }

    #[test]
    fn wrapped_keys_open_only_for_their_case() {
        let keyring = keyring();
        let dek = DataKey::generate().unwrap();
        let wrapped = dek.wrap(&keyring, "case-1").unwrap();
        let again = DataKey::unwrap(&keyring, "case-1", &wrapped.sealed).unwrap();
        let binding = Binding {
            table: "pupils",
            column: "name",
            row_id: "case-1",
            case_id: "case-1",
        };
        let field = dek.seal(&binding, "Canary Nguyễn".as_bytes()).unwrap();
        assert_eq!(
            again.open_text(&binding, &field).unwrap().expose(),
            "Canary Nguyễn"
        );
        assert!(DataKey::unwrap(&keyring, "case-2", &wrapped.sealed).is_err());
        let other = DataKey::generate().unwrap();
        assert!(other.open(&binding, &field).is_err());
    }

    #[test]
    fn a_key_bound_to_a_school_opens_only_there() {
        let keyring = keyring();
        let dek = DataKey::generate().unwrap();
        let wrapped = dek
            .wrap_bound(&keyring, "case-1", KeyBinding::School("school-b"))
            .unwrap();
        let binding = Binding {
            table: "pupils",
            column: "name_enc",
            row_id: "case-1",
            case_id: "case-1",
        };
        let field = dek.seal(&binding, b"Canary").unwrap();
        let again = DataKey::unwrap_bound(
            &keyring,
            "case-1",
            KeyBinding::School("school-b"),
            &wrapped.sealed,
        )
        .unwrap();
        assert_eq!(
            again.open_text(&binding, &field).unwrap().expose(),
            "Canary"
        );
        for other in [KeyBinding::Case, KeyBinding::School("school-a")] {
            assert_eq!(
                DataKey::unwrap_bound(&keyring, "case-1", other, &wrapped.sealed).unwrap_err(),
                SealError::Open
            );
        }
        assert!(
            DataKey::unwrap_bound(
                &keyring,
                "case-2",
                KeyBinding::School("school-b"),
                &wrapped.sealed
            )
            .is_err()
        );
    }

    #[test]
    fn a_rotated_kek_still_unwraps_old_keys() {
        let mut keyring = keyring();
        let dek = DataKey::generate().unwrap();
        let wrapped = dek.wrap(&keyring, "case-1").unwrap();
        let clock = FixedClock::new(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let new_kek = keyring
            .add_key(KeyPurpose::FieldKek, &clock)
            .unwrap()
            .id
            .clone();
        assert_ne!(wrapped.kek_id, new_kek);
        assert!(DataKey::unwrap(&keyring, "case-1", &wrapped.sealed).is_ok());
        assert_eq!(dek.wrap(&keyring, "case-1").unwrap().kek_id, new_kek);
    }

    #[test]
    fn blind_index_is_exact_per_school_and_ignores_spacing_and_case() {
        let keyring = keyring();
        let a = blind_index(&keyring, "school-1", "  Nguyễn  Văn An ", "2014-05-02").unwrap();
        let b = blind_index(&keyring, "school-1", "nguyễn văn an", "2014-05-02").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        assert_ne!(
            a,
            blind_index(&keyring, "school-2", "Nguyễn Văn An", "2014-05-02").unwrap()
        );
        assert_ne!(
            a,
            blind_index(&keyring, "school-1", "Nguyen Van An", "2014-05-02").unwrap()
        );
        assert_ne!(
            a,
            blind_index(&keyring, "school-1", "Nguyễn Văn An", "2014-05-03").unwrap()
        );
        // Decomposed and precomposed forms of the same name agree.
        let decomposed: String = "Nguyễn Văn An".nfd().collect();
        assert_eq!(
            a,
            blind_index(&keyring, "school-1", &decomposed, "2014-05-02").unwrap()
        );
    }
}
