//! The stored format of every encrypted value, and the binding of each value
//! to its place.
//!
//! ```text
//! byte 0        format version (1)
//! byte 1        algorithm (1 = AES-256-GCM)
//! byte 2        length n of the key id
//! bytes 3..3+n  key id (ASCII)
//! 12 bytes      random nonce
//! rest          ciphertext and 16-byte tag
//! ```
//!
//! The associated data is the header above followed by the [`Binding`]
//! (table, column, row id, case id), each length-prefixed. The binding is
//! rebuilt from the row being read, so a value copied to another row, column
//! or case fails to open; a changed header byte fails too.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use super::{SecretBytes, random_bytes};

const FORMAT_V1: u8 = 1;
const ALG_AES_256_GCM: u8 = 1;

/// Where a value lives. Every part takes part in authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row_id: &'a str,
    /// The case the value belongs to; empty for values outside a case.
    pub case_id: &'a str,
}

impl Binding<'_> {
    fn encode_into(&self, out: &mut Vec<u8>) {
        for part in [self.table, self.column, self.row_id, self.case_id] {
            out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the key is not a 256-bit AES key")]
    BadKey,
    #[error("the key id is empty, too long or not plain ASCII")]
    BadKeyId,
    #[error("the random number generator failed")]
    Random,
    #[error("encryption failed")]
    Encrypt,
    /// Deliberately vague: a wrong key, a moved value and a flipped bit look
    /// the same to the caller.
    #[error("the value cannot be opened (damaged, moved or wrong key)")]
    Open,
    #[error("unknown key {0}")]
    UnknownKey(String),
}

/// Encrypts `plaintext` under `key` (id `key_id`), bound to `binding`.
pub fn seal(
    key_id: &str,
    key: &[u8],
    binding: &Binding<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    if key_id.is_empty() || key_id.len() > 64 || !key_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SealError::BadKeyId);
    }
    let sealing =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| SealError::BadKey)?);
    let nonce_bytes = random_bytes::<NONCE_LEN>().map_err(|_| SealError::Random)?;
    let mut out = Vec::with_capacity(3 + key_id.len() + NONCE_LEN + plaintext.len() + 16);
    out.push(FORMAT_V1);
    out.push(ALG_AES_256_GCM);
    out.push(u8::try_from(key_id.len()).map_err(|_| SealError::BadKeyId)?);
    out.extend_from_slice(key_id.as_bytes());
    let header_len = out.len();
    out.extend_from_slice(&nonce_bytes);
    let mut aad = out.get(..header_len).unwrap_or_default().to_vec();
    binding.encode_into(&mut aad);
    let mut body = plaintext.to_vec();
    sealing
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(aad),
            &mut body,
        )
        .map_err(|_| SealError::Encrypt)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// The key id a sealed value names, without opening it.
pub fn key_id(sealed: &[u8]) -> Result<&str, SealError> {
    parse(sealed).map(|parts| parts.key_id)
}

struct Parts<'a> {
    header: &'a [u8],
    key_id: &'a str,
    nonce: [u8; NONCE_LEN],
    body: &'a [u8],
}

fn parse(sealed: &[u8]) -> Result<Parts<'_>, SealError> {
    let (&version, rest) = sealed.split_first().ok_or(SealError::Open)?;
    let (&algorithm, rest) = rest.split_first().ok_or(SealError::Open)?;
    let (&id_len, rest) = rest.split_first().ok_or(SealError::Open)?;
    if version != FORMAT_V1 || algorithm != ALG_AES_256_GCM || id_len == 0 {
        return Err(SealError::Open);
    }
    let id_len = usize::from(id_len);
    let key_id = rest.get(..id_len).ok_or(SealError::Open)?;
    let key_id = std::str::from_utf8(key_id).map_err(|_| SealError::Open)?;
    let rest = rest.get(id_len..).ok_or(SealError::Open)?;
    let nonce: [u8; NONCE_LEN] = rest
        .get(..NONCE_LEN)
        .and_then(|n| n.try_into().ok())
        .ok_or(SealError::Open)?;
    let body = rest.get(NONCE_LEN..).ok_or(SealError::Open)?;
    if body.len() < AES_256_GCM.tag_len() {
        return Err(SealError::Open);
    }
    let header = sealed.get(..3 + id_len).ok_or(SealError::Open)?;
    Ok(Parts {
        header,
        key_id,
        nonce,
        body,
    })
}

/// Decrypts a sealed value. `key_for` maps the stored key id to key material.
pub fn open<'k, F>(
    sealed: &[u8],
    binding: &Binding<'_>,
    key_for: F,
) -> Result<SecretBytes, SealError>
where
    F: FnOnce(&str) -> Option<&'k [u8]>,
{
    let parts = parse(sealed)?;
    let key =
        key_for(parts.key_id).ok_or_else(|| SealError::UnknownKey(parts.key_id.to_owned()))?;
    let opening =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| SealError::BadKey)?);
    let mut aad = parts.header.to_vec();
    binding.encode_into(&mut aad);
    let mut body = parts.body.to_vec();
    let plaintext_len = opening
        .open_in_place(
            Nonce::assume_unique_for_key(parts.nonce),
            Aad::from(aad),
            &mut body,
        )
        .map_err(|_| SealError::Open)?
        .len();
    body.truncate(plaintext_len);
    Ok(SecretBytes::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: [u8; 32] = [7; 32];
    const BINDING: Binding<'static> = Binding {
        table: "users",
        column: "totp_secret",
        row_id: "0193-row",
        case_id: "",
    };

    fn keys(id: &str) -> Option<&'static [u8]> {
        (id == "cred-1").then_some(&KEY[..])
    }

    #[test]
    fn round_trip_and_key_id() {
        let sealed = seal("cred-1", &KEY, &BINDING, b"Canary secret").unwrap();
        assert_eq!(key_id(&sealed).unwrap(), "cred-1");
        assert!(!sealed.windows(6).any(|w| w == b"Canary"));
        assert_eq!(
            open(&sealed, &BINDING, keys).unwrap().expose(),
            b"Canary secret"
        );
    }

    #[test]
    fn moved_values_do_not_open() {
        let sealed = seal("cred-1", &KEY, &BINDING, b"secret").unwrap();
        for moved in [
            Binding {
                table: "cases",
                ..BINDING
            },
            Binding {
                column: "email",
                ..BINDING
            },
            Binding {
                row_id: "0193-other",
                ..BINDING
            },
            Binding {
                case_id: "case-1",
                ..BINDING
            },
        ] {
            assert_eq!(open(&sealed, &moved, keys), Err(SealError::Open));
        }
        // Length prefixes keep ("ab","c") apart from ("a","bc").
        let a = Binding {
            table: "ab",
            column: "c",
            ..BINDING
        };
        let b = Binding {
            table: "a",
            column: "bc",
            ..BINDING
        };
        let sealed = seal("cred-1", &KEY, &a, b"x").unwrap();
        assert_eq!(open(&sealed, &b, keys), Err(SealError::Open));
    }

    #[test]
    fn nonces_differ() {
        let a = seal("cred-1", &KEY, &BINDING, b"same").unwrap();
        let b = seal("cred-1", &KEY, &BINDING, b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn unknown_key_is_named() {
        let sealed = seal("cred-9", &KEY, &BINDING, b"x").unwrap();
        assert_eq!(
            open(&sealed, &BINDING, keys),
            Err(SealError::UnknownKey("cred-9".into()))
        );
    }

    proptest! {
        #[test]
        fn any_flipped_bit_is_refused(plaintext in proptest::collection::vec(any::<u8>(), 0..64), bit in any::<usize>()) {
            let mut sealed = seal("cred-1", &KEY, &BINDING, &plaintext).unwrap();
            let index = bit % (sealed.len() * 8);
            sealed[index / 8] ^= 1 << (index % 8);
            prop_assert!(open(&sealed, &BINDING, keys).is_err());
        }

        #[test]
        fn truncated_values_are_refused(plaintext in proptest::collection::vec(any::<u8>(), 0..32), cut in any::<usize>()) {
            let sealed = seal("cred-1", &KEY, &BINDING, &plaintext).unwrap();
            let cut = cut % sealed.len();
            prop_assert!(open(&sealed[..cut], &BINDING, keys).is_err());
        }
    }
}
