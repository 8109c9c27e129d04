//! The crypto backend of `jsonwebtoken`, and token signing and checking.
//!
//! `jsonwebtoken` lets the application pick its crypto backend. We install
//! exactly one, built on `ring` like the rest of this module, and it knows
//! exactly one algorithm, EdDSA (Ed25519): a token claiming any other
//! algorithm — `none`, HS256 signed with the public key, RS256 — has no
//! verifier and is refused. [`install_backend`] runs at start and fails if
//! another backend got there first.

use std::collections::HashMap;

use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keyring::{KeyPurpose, Keyring, KeyringError};

/// The only algorithm caseguard signs or accepts.
pub const ALGORITHM: Algorithm = Algorithm::EdDSA;
/// The `typ` header of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

struct RingEdDsaSigner(Ed25519KeyPair);

impl signature::Signer<Vec<u8>> for RingEdDsaSigner {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.0.sign(message).as_ref().to_vec())
    }
}

impl JwtSigner for RingEdDsaSigner {
    fn algorithm(&self) -> Algorithm {
        ALGORITHM
    }
}

struct RingEdDsaVerifier(Vec<u8>);

impl signature::Verifier<Vec<u8>> for RingEdDsaVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingEdDsaVerifier {
    fn algorithm(&self) -> Algorithm {
        ALGORITHM
    }
}

fn signer_factory(
    algorithm: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    if *algorithm != ALGORITHM {
        return Err(JwtError::from(ErrorKind::InvalidAlgorithm));
    }
    let pair = Ed25519KeyPair::from_pkcs8(key.inner())
        .map_err(|_| JwtError::from(ErrorKind::InvalidEddsaKey))?;
    Ok(Box::new(RingEdDsaSigner(pair)))
}

fn verifier_factory(
    algorithm: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if *algorithm != ALGORITHM || key.as_bytes().len() != 32 {
        return Err(JwtError::from(ErrorKind::InvalidAlgorithm));
    }
    Ok(Box::new(RingEdDsaVerifier(key.as_bytes().to_vec())))
}

static BACKEND: CryptoProvider = CryptoProvider {
    signer_factory,
    verifier_factory,
    jwk_utils: JwkUtils::new_unimplemented(),
};

/// Installs the ring EdDSA backend for the process. Idempotent; an error
/// means another backend was installed first, and the start must stop.
pub fn install_backend() -> Result<(), String> {
    match BACKEND.install_default() {
        Ok(()) => Ok(()),
        Err(existing) if std::ptr::eq(existing, &BACKEND) => Ok(()),
        Err(_) => {
            Err("another JSON Web Token crypto backend is installed; refusing to start".into())
        }
    }
}

/// The token keys from the keyring: the newest signs, all verify by `kid`.
pub struct TokenKeys {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("signing_kid", &self.signing_kid)
            .field("kids", &self.verifying.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    pub fn from_keyring(keyring: &Keyring) -> Result<Self, KeyringError> {
        let active = keyring.active(KeyPurpose::TokenSigning)?;
        let mut verifying = HashMap::new();
        for key in keyring.keys(KeyPurpose::TokenSigning) {
            let public = key
                .ed25519_public_key()
                .ok_or_else(|| KeyringError::Invalid(format!("key {} is not Ed25519", key.id)))?;
            verifying.insert(key.id.clone(), DecodingKey::from_ed_der(&public));
        }
        Ok(Self {
            signing_kid: active.id.clone(),
            signing: EncodingKey::from_ed_der(active.material()),
            verifying,
        })
    }

    /// Signs `claims` with the active key, `kid` and `typ` set.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, JwtError> {
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.signing_kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        jsonwebtoken::encode(&header, claims, &self.signing)
    }

    /// Verifies signature, `typ`, and the claims `validation` asks for. The
    /// key is chosen only by `kid`, and only among our token keys.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<T, JwtError> {
        let header = jsonwebtoken::decode_header(token)?;
        if header.alg != ALGORITHM || header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(ErrorKind::InvalidToken.into());
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.get(kid))
            .ok_or_else(|| JwtError::from(ErrorKind::InvalidToken))?;
        if validation.algorithms != [ALGORITHM] {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        Ok(jsonwebtoken::decode::<T>(token, key, validation)?.claims)
    }
}

/// Ed25519 signature by a keyring signing key (for audit checkpoints).
pub fn ed25519_sign(key: &super::keyring::Key, message: &[u8]) -> Result<Vec<u8>, KeyringError> {
    let pair = Ed25519KeyPair::from_pkcs8(key.material())
        .map_err(|_| KeyringError::Invalid(format!("key {} is not Ed25519", key.id)))?;
    Ok(pair.sign(message).as_ref().to_vec())
}

/// Checks an Ed25519 signature against a raw public key.
pub fn ed25519_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}
