//! The encrypted, integrity-checked stream that `caseguard backup` writes.
//!
//! ```text
//! header   "CGBACKUP" | version (1) | algorithm (1 = AES-256-GCM, HKDF-SHA-256)
//!          | key id length n | key id (ASCII) | 32-byte random salt
//! chunks   u32 big-endian length | ciphertext and 16-byte tag      (repeated)
//! ```
//!
//! Each archive gets its own AES-256-GCM key, derived with HKDF-SHA-256 from
//! the keyring's `backup` key and the archive's random salt, so chunk nonces
//! can be a counter: nonce = chunk number (8 bytes, big-endian) | 3 zero
//! bytes | 1 if this is the last chunk. Every chunk authenticates the whole
//! header as associated data. Hence: a flipped bit anywhere fails that chunk,
//! chunks cannot be reordered, dropped or moved between archives, and a file
//! cut short lacks the chunk marked last — each is refused with its own
//! message, before anything is restored (the reader is used twice: once to
//! check the whole file, once to restore it).
//!
//! The archive never contains a key: the reader needs the keyring that
//! holds the named `backup` key.

use std::io::{self, Read, Write};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;

use super::keyring::{KeyPurpose, Keyring};
use super::random_bytes;

/// The first bytes of every archive.
pub const MAGIC: &[u8; 8] = b"CGBACKUP";
const VERSION: u8 = 1;
const ALGORITHM: u8 = 1;
const SALT_LEN: usize = 32;
/// Plaintext bytes per chunk.
const CHUNK: usize = 64 * 1024;
const TAG_LEN: usize = 16;
const HKDF_INFO: &[u8] = b"caseguard-backup-v1";

/// Why an archive cannot be read. The messages are meant for an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("this is not a caseguard backup (it does not start with CGBACKUP)")]
    NotABackup,
    #[error("this backup uses format version {0}, which this release cannot read")]
    UnsupportedVersion(u8),
    #[error(
        "this backup was encrypted with backup key {0}, which this keyring does not hold: restore with the keyring that was in use when the backup was made"
    )]
    UnknownKey(String),
    #[error(
        "the backup is corrupted: chunk {0} fails its integrity check (changed, damaged or from another file)"
    )]
    Corrupted(u64),
    #[error("the backup is truncated: it ends before its last chunk (an interrupted copy?)")]
    Truncated,
    #[error("the backup has unexpected data after its last chunk")]
    TrailingData,
    #[error("the keyring has no backup key")]
    NoKey,
    #[error("encryption failed")]
    Encrypt,
}

impl From<StreamError> for io::Error {
    fn from(error: StreamError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

/// The [`StreamError`] inside an I/O error, if that is what it is.
pub fn stream_error(error: &io::Error) -> Option<&StreamError> {
    error.get_ref()?.downcast_ref::<StreamError>()
}

fn derive(material: &[u8], salt: &[u8]) -> Result<LessSafeKey, StreamError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(material);
    let okm = prk
        .expand(&[HKDF_INFO], &AES_256_GCM)
        .map_err(|_| StreamError::Encrypt)?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

fn nonce(counter: u64, last: bool) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    for (slot, byte) in bytes.iter_mut().zip(counter.to_be_bytes()) {
        *slot = byte;
    }
    if let Some(flag) = bytes.last_mut() {
        *flag = u8::from(last);
    }
    Nonce::assume_unique_for_key(bytes)
}

/// Encrypts everything written to it; [`StreamWriter::finish`] writes the
/// last chunk. Dropped without `finish`, the archive is (detectably) truncated.
pub struct StreamWriter<W: Write> {
    inner: W,
    key: LessSafeKey,
    header: Vec<u8>,
    buffer: Vec<u8>,
    counter: u64,
}

impl<W: Write> StreamWriter<W> {
    /// Writes the header; the archive is encrypted under the keyring's
    /// active `backup` key.
    pub fn new(mut inner: W, keyring: &Keyring) -> io::Result<Self> {
        let key = keyring
            .active(KeyPurpose::Backup)
            .map_err(|_| StreamError::NoKey)?;
        let salt = random_bytes::<SALT_LEN>().map_err(|_| StreamError::Encrypt)?;
        let id_len = u8::try_from(key.id.len()).map_err(|_| StreamError::Encrypt)?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&[VERSION, ALGORITHM, id_len]);
        header.extend_from_slice(key.id.as_bytes());
        header.extend_from_slice(&salt);
        inner.write_all(&header)?;
        Ok(Self {
            inner,
            key: derive(key.material(), &salt)?,
            header,
            buffer: Vec::with_capacity(CHUNK),
            counter: 0,
        })
    }

    fn emit(&mut self, last: bool) -> io::Result<()> {
        let mut body = std::mem::take(&mut self.buffer);
        self.key
            .seal_in_place_append_tag(
                nonce(self.counter, last),
                Aad::from(&self.header),
                &mut body,
            )
            .map_err(|_| StreamError::Encrypt)?;
        let len = u32::try_from(body.len()).map_err(|_| StreamError::Encrypt)?;
        self.inner.write_all(&len.to_be_bytes())?;
        self.inner.write_all(&body)?;
        self.counter += 1;
        self.buffer = Vec::with_capacity(CHUNK);
        Ok(())
    }

    /// Writes the last chunk and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.emit(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for StreamWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK.saturating_sub(self.buffer.len());
        let taken = data.len().min(room);
        self.buffer
            .extend_from_slice(data.get(..taken).unwrap_or_default());
        if self.buffer.len() >= CHUNK {
            self.emit(false)?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decrypts an archive, checking every chunk; a read fails with a
/// [`StreamError`] at the first problem.
pub struct StreamReader<R: Read> {
    inner: R,
    key: LessSafeKey,
    header: Vec<u8>,
    plain: Vec<u8>,
    position: usize,
    counter: u64,
    done: bool,
    /// The backup key's id, from the header.
    pub key_id: String,
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` when the input ended first.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match reader.read(rest) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl<R: Read> StreamReader<R> {
    /// Reads and checks the header and finds the key in `keyring`.
    pub fn new(mut inner: R, keyring: &Keyring) -> io::Result<Self> {
        let mut fixed = [0u8; 11];
        if !read_full(&mut inner, &mut fixed)? {
            return Err(StreamError::NotABackup.into());
        }
        let (magic, rest) = fixed.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err(StreamError::NotABackup.into());
        }
        let [version, algorithm, id_len] = rest else {
            return Err(StreamError::NotABackup.into());
        };
        if *version != VERSION || *algorithm != ALGORITHM {
            return Err(StreamError::UnsupportedVersion(*version).into());
        }
        let mut id = vec![0u8; usize::from(*id_len)];
        let mut salt = [0u8; SALT_LEN];
        if !read_full(&mut inner, &mut id)? || !read_full(&mut inner, &mut salt)? {
            return Err(StreamError::Truncated.into());
        }
        let key_id = String::from_utf8(id.clone()).map_err(|_| StreamError::NotABackup)?;
        let key = keyring
            .get(KeyPurpose::Backup, &key_id)
            .ok_or_else(|| StreamError::UnknownKey(key_id.clone()))?;
        let mut header = fixed.to_vec();
        header.extend_from_slice(&id);
        header.extend_from_slice(&salt);
        Ok(Self {
            inner,
            key: derive(key.material(), &salt)?,
            header,
            plain: Vec::new(),
            position: 0,
            counter: 0,
            done: false,
            key_id,
        })
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let mut len = [0u8; 4];
        if !read_full(&mut self.inner, &mut len)? {
            return Err(StreamError::Truncated.into());
        }
        let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
        if !(TAG_LEN..=CHUNK + TAG_LEN).contains(&len) {
            return Err(StreamError::Corrupted(self.counter).into());
        }
        let mut body = vec![0u8; len];
        if !read_full(&mut self.inner, &mut body)? {
            return Err(StreamError::Truncated.into());
        }
        let mut last = false;
        let mut opened = None;
        for candidate in [false, true] {
            let mut attempt = body.clone();
            if let Ok(plain) = self.key.open_in_place(
                nonce(self.counter, candidate),
                Aad::from(&self.header),
                &mut attempt,
            ) {
                let plain_len = plain.len();
                attempt.truncate(plain_len);
                opened = Some(attempt);
                last = candidate;
                break;
            }
        }
        let plain = opened.ok_or(StreamError::Corrupted(self.counter))?;
        self.counter += 1;
        if last {
            let mut probe = [0u8; 1];
            if read_full(&mut self.inner, &mut probe)? {
                return Err(StreamError::TrailingData.into());
            }
            self.done = true;
        }
        self.plain = plain;
        self.position = 0;
        Ok(())
    }
}

impl<R: Read> Read for StreamReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.position >= self.plain.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let available = self.plain.get(self.position..).unwrap_or_default();
        let n = available.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), available.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.position += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    fn keyring() -> Keyring {
        let clock = FixedClock::new(chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap());
        let mut keyring = Keyring::default();
        keyring.add_key(KeyPurpose::Backup, &clock).unwrap();
        keyring
    }

    fn seal(keyring: &Keyring, data: &[u8]) -> Vec<u8> {
        let mut writer = StreamWriter::new(Vec::new(), keyring).unwrap();
        writer.write_all(data).unwrap();
        writer.finish().unwrap()
    }

    fn open(keyring: &Keyring, archive: &[u8]) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::new();
        StreamReader::new(archive, keyring)
            .and_then(|mut r| r.read_to_end(&mut out))
            .map_err(|e| stream_error(&e).cloned().unwrap())?;
        Ok(out)
    }

    #[test]
    fn round_trips_across_chunks() {
        let keyring = keyring();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let archive = seal(&keyring, &data);
        assert!(archive.starts_with(MAGIC));
        assert_eq!(open(&keyring, &archive).unwrap(), data);
        assert_eq!(open(&keyring, &seal(&keyring, b"")).unwrap(), b"");
    }

    #[test]
    fn damage_is_refused_with_its_reason() {
        let keyring = keyring();
        let data = vec![42u8; 150_000];
        let archive = seal(&keyring, &data);
        let mut flipped = archive.clone();
        flipped[archive.len() / 2] ^= 1;
        assert_eq!(open(&keyring, &flipped), Err(StreamError::Corrupted(1)));
        assert_eq!(
            open(&keyring, &archive[..archive.len() - 10]),
            Err(StreamError::Truncated)
        );
        // Cut exactly at a chunk boundary: the chunk marked last is missing.
        let first_chunk_end = 8 + 3 + keyring.active(KeyPurpose::Backup).unwrap().id.len() + 32;
        let boundary = first_chunk_end + 4 + CHUNK + TAG_LEN;
        assert_eq!(
            open(&keyring, &archive[..boundary]),
            Err(StreamError::Truncated)
        );
        let mut longer = archive.clone();
        longer.push(0);
        assert_eq!(open(&keyring, &longer), Err(StreamError::TrailingData));
        assert_eq!(
            open(&keyring, b"PK\x03\x04 zip"),
            Err(StreamError::NotABackup)
        );
        let mut header = archive.clone();
        header[12] ^= 1;
        assert!(matches!(
            open(&keyring, &header),
            Err(StreamError::UnknownKey(_))
        ));
        let other = self::keyring();
        assert!(matches!(
            open(&other, &archive),
            Err(StreamError::UnknownKey(_))
        ));
    }
}
