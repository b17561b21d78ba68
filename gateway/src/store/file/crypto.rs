//! The file store's cryptography: argon2id turns the passphrase and the file's salt into a
//! 32-byte key and a 16-byte key check, XChaCha20-Poly1305 seals the payload under that key
//! with the whole header as associated data.
//!
//! The key check lets a wrong passphrase be told apart from a damaged file: it is more
//! output of the same argon2id run, so it lets an attacker holding the file test guesses no
//! faster than trying to decrypt does.

use std::fmt;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use chacha20poly1305::aead::{AeadInPlace as _, KeyInit as _};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize as _, Zeroizing};

use crate::store::StoreError;

pub(crate) const SALT_LEN: usize = 32;
pub(crate) const CHECK_LEN: usize = 16;
pub(crate) const NONCE_LEN: usize = 24;
pub(crate) const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// The cost of argon2id, written in each file's header so it can grow for new files while
/// old files still open.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KdfParams {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

/// Parameters outside what keygate accepts; a header holding them is corrupt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "argon2id parameters out of range: memory {memory_kib} KiB (8 x lanes to {max_mem} KiB), {iterations} iterations (1 to {max_it}), {parallelism} lanes (1 to {max_lanes})",
    max_mem = KdfParams::MAX_MEMORY_KIB,
    max_it = KdfParams::MAX_ITERATIONS,
    max_lanes = KdfParams::MAX_PARALLELISM
)]
pub struct KdfParamsError {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl KdfParams {
    /// 1 GiB: a bound that keeps a damaged header from making us allocate without limit.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    pub const MAX_ITERATIONS: u32 = 100;
    pub const MAX_PARALLELISM: u32 = 64;

    /// The strong default: 64 MiB, 3 iterations, 1 lane (OWASP's argon2id advice is at
    /// least 19 MiB with 2 iterations).
    pub const STRONG: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// The cheapest setting argon2id allows. Only for tests: a file made with it falls to
    /// guessing quickly.
    #[doc(hidden)]
    pub const INSECURE_FOR_TESTS: Self = Self {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    /// Checks the parameters against keygate's bounds.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, KdfParamsError> {
        let ok = (1..=Self::MAX_PARALLELISM).contains(&parallelism)
            && (1..=Self::MAX_ITERATIONS).contains(&iterations)
            && (8 * parallelism..=Self::MAX_MEMORY_KIB).contains(&memory_kib);
        if ok {
            Ok(Self {
                memory_kib,
                iterations,
                parallelism,
            })
        } else {
            Err(KdfParamsError {
                memory_kib,
                iterations,
                parallelism,
            })
        }
    }

    pub fn memory_kib(self) -> u32 {
        self.memory_kib
    }

    pub fn iterations(self) -> u32 {
        self.iterations
    }

    pub fn parallelism(self) -> u32 {
        self.parallelism
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::STRONG
    }
}

impl fmt::Debug for KdfParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "argon2id(m={} KiB, t={}, p={})",
            self.memory_kib, self.iterations, self.parallelism
        )
    }
}

/// A key derived from the passphrase, zeroized on drop, and its check value.
pub(crate) struct DerivedKey {
    key: Zeroizing<[u8; KEY_LEN]>,
    pub(crate) check: [u8; CHECK_LEN],
}

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKey(<redacted>)")
    }
}

impl DerivedKey {
    /// Whether `check` (from a header) was made by this key, in constant time.
    pub(crate) fn matches(&self, check: &[u8; CHECK_LEN]) -> bool {
        self.check
            .iter()
            .zip(check)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(self.key.as_slice()))
    }

    /// Encrypts `buffer` in place and appends the tag. Give the buffer `TAG_LEN` spare
    /// capacity so the plaintext is never copied into a reallocation that nobody zeroizes.
    pub(crate) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        self.cipher()
            .encrypt_in_place(XNonce::from_slice(nonce), aad, buffer)
            .map_err(|_| StoreError::Crypto("XChaCha20-Poly1305 refused to seal the file".into()))
    }

    /// Decrypts `ciphertext` (tag included), or `None` when it does not authenticate.
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        self.cipher()
            .decrypt_in_place(XNonce::from_slice(nonce), aad, &mut *buffer)
            .ok()?;
        Some(buffer)
    }
}

/// Runs argon2id. Takes a moment with the strong parameters (see docs/secret-store.md).
pub(crate) fn derive(
    passphrase: &[u8],
    salt: &[u8; SALT_LEN],
    params: KdfParams,
) -> Result<DerivedKey, StoreError> {
    let argon_params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(KEY_LEN + CHECK_LEN),
    )
    .map_err(|e| StoreError::Crypto(format!("argon2 refused its parameters: {e}")))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    // Our own working memory, so we can wipe it: it holds values derived from the passphrase
    // and argon2 is built without its zeroize feature.
    let mut blocks = vec![Block::default(); argon.params().block_count()];
    let mut out = Zeroizing::new([0u8; KEY_LEN + CHECK_LEN]);
    let result = argon.hash_password_into_with_memory(passphrase, salt, &mut *out, &mut blocks);
    for block in &mut blocks {
        block.as_mut().zeroize();
    }
    result.map_err(|e| StoreError::Crypto(format!("argon2 failed: {e}")))?;

    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&out[..KEY_LEN]);
    let mut check = [0u8; CHECK_LEN];
    check.copy_from_slice(&out[KEY_LEN..]);
    Ok(DerivedKey { key, check })
}

/// Fresh random bytes for a salt or a nonce.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn params_are_bounded() {
        assert!(KdfParams::new(8, 1, 1).is_ok());
        assert!(KdfParams::new(7, 1, 1).is_err());
        assert!(KdfParams::new(64, 1, 9).is_err(), "8 KiB per lane");
        assert!(KdfParams::new(KdfParams::MAX_MEMORY_KIB + 1, 1, 1).is_err());
        assert!(KdfParams::new(64, 0, 1).is_err());
        assert!(KdfParams::new(64, 101, 1).is_err());
        assert_eq!(KdfParams::default(), KdfParams::STRONG);
    }

    #[test]
    fn same_inputs_same_key_and_sealing_round_trips() {
        let p = KdfParams::INSECURE_FOR_TESTS;
        let salt = [7u8; SALT_LEN];
        let a = derive(b"pass", &salt, p).unwrap();
        let b = derive(b"pass", &salt, p).unwrap();
        let c = derive(b"Pass", &salt, p).unwrap();
        assert!(a.matches(&b.check));
        assert!(!a.matches(&c.check));

        let nonce = [1u8; NONCE_LEN];
        let mut buf = Vec::with_capacity(5 + TAG_LEN);
        buf.extend_from_slice(b"hello");
        a.seal(&nonce, b"aad", &mut buf).unwrap();
        assert_eq!(buf.len(), 5 + TAG_LEN);
        assert_eq!(&*b.open(&nonce, b"aad", &buf).unwrap(), b"hello");
        assert!(b.open(&nonce, b"aaD", &buf).is_none());
        assert!(c.open(&nonce, b"aad", &buf).is_none());
    }

    #[test]
    fn debug_shows_no_key() {
        let k = derive(b"pass", &[0; SALT_LEN], KdfParams::INSECURE_FOR_TESTS).unwrap();
        assert_eq!(format!("{k:?}"), "DerivedKey(<redacted>)");
    }
}
