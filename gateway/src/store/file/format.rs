//! The bytes of `secrets.kgv`.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "KGV1"
//!      4     2  format version, u16 little-endian: 1
//!      6     1  key derivation: 1 = argon2id v0x13
//!      7     1  reserved: 0
//!      8     4  argon2 memory in KiB, u32 LE
//!     12     4  argon2 iterations, u32 LE
//!     16     4  argon2 lanes, u32 LE
//!     20    32  salt (made with the file, new on each passphrase change)
//!     52    16  key check (argon2 output bytes 32..48)
//!     68    24  nonce (new on every write)
//!     92     8  ciphertext length in bytes, u64 LE (tag included)
//!    100     …  XChaCha20-Poly1305 ciphertext + 16-byte tag; the 100 header bytes are the AAD
//! ```
//!
//! The plaintext is JSON: `{"version": 1, "secrets": {NAME: {"value", "created_at",
//! "updated_at"}}}`, times in RFC 3339.

use std::collections::BTreeMap;
use std::io;
use std::time::SystemTime;

use keygate_proto::{SecretName, SecretValue};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::crypto::{CHECK_LEN, KdfParams, NONCE_LEN, SALT_LEN, TAG_LEN};
use crate::store::timestamp;

pub(crate) const MAGIC: &[u8; 4] = b"KGV1";
pub(crate) const VERSION: u16 = 1;
const KDF_ARGON2ID: u8 = 1;
pub(crate) const HEADER_LEN: usize = 100;
/// No sensible store is near this; a bigger file is damage, not secrets.
pub(crate) const MAX_FILE_LEN: u64 = 64 * 1024 * 1024;

/// The identity of the key a file is sealed under: files with equal `KeyId`s open with the
/// same derived key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyId {
    pub(crate) kdf: KdfParams,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) check: [u8; CHECK_LEN],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) key: KeyId,
    pub(crate) nonce: [u8; NONCE_LEN],
    pub(crate) ciphertext_len: u64,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(MAGIC);
        h[4..6].copy_from_slice(&VERSION.to_le_bytes());
        h[6] = KDF_ARGON2ID;
        h[7] = 0;
        h[8..12].copy_from_slice(&self.key.kdf.memory_kib().to_le_bytes());
        h[12..16].copy_from_slice(&self.key.kdf.iterations().to_le_bytes());
        h[16..20].copy_from_slice(&self.key.kdf.parallelism().to_le_bytes());
        h[20..52].copy_from_slice(&self.key.salt);
        h[52..68].copy_from_slice(&self.key.check);
        h[68..92].copy_from_slice(&self.nonce);
        h[92..100].copy_from_slice(&self.ciphertext_len.to_le_bytes());
        h
    }

    /// Splits a whole file into its header and ciphertext, or says why it is not a
    /// well-formed secret file.
    pub(crate) fn decode(file: &[u8]) -> Result<(Self, &[u8]), String> {
        if file.len() < MAGIC.len() || &file[..4] != MAGIC {
            return Err("it is not a keygate secret file (no `KGV1` at its start)".into());
        }
        let Some((h, ciphertext)) = file.split_first_chunk::<HEADER_LEN>() else {
            return Err(format!(
                "it is truncated: {} bytes, shorter than the {HEADER_LEN}-byte header",
                file.len()
            ));
        };
        let version = u16::from_le_bytes([h[4], h[5]]);
        if version != VERSION {
            return Err(format!(
                "format version {version}, and this keygate reads version {VERSION}: use the keygate that wrote it"
            ));
        }
        if h[6] != KDF_ARGON2ID || h[7] != 0 {
            return Err(format!("unknown key derivation {} (flags {})", h[6], h[7]));
        }
        let kdf = KdfParams::new(u32_at(h, 8), u32_at(h, 12), u32_at(h, 16))
            .map_err(|e| e.to_string())?;
        let ciphertext_len = u64::from_le_bytes(array_at(h, 92));
        if ciphertext_len != ciphertext.len() as u64 {
            return Err(format!(
                "it is truncated or has bytes appended: the header announces {ciphertext_len} bytes of ciphertext, the file holds {}",
                ciphertext.len()
            ));
        }
        if ciphertext.len() < TAG_LEN {
            return Err("its ciphertext is shorter than an authentication tag".into());
        }
        let header = Self {
            key: KeyId {
                kdf,
                salt: array_at(h, 20),
                check: array_at(h, 52),
            },
            nonce: array_at(h, 68),
            ciphertext_len,
        };
        Ok((header, ciphertext))
    }
}

fn array_at<const N: usize>(h: &[u8; HEADER_LEN], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&h[at..at + N]);
    a
}

fn u32_at(h: &[u8; HEADER_LEN], at: usize) -> u32 {
    u32::from_le_bytes(array_at(h, at))
}

/// One secret as the store holds it while unlocked. (`Debug` shows no value:
/// `SecretValue` redacts itself.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    #[serde(with = "value_text")]
    pub(crate) value: SecretValue,
    #[serde(with = "timestamp")]
    pub(crate) created_at: SystemTime,
    #[serde(with = "timestamp")]
    pub(crate) updated_at: SystemTime,
}

pub(crate) type Secrets = BTreeMap<SecretName, Stored>;

#[derive(Serialize, Deserialize)]
struct Payload<S> {
    version: u32,
    secrets: S,
}

const PAYLOAD_VERSION: u32 = 1;

/// The plaintext for `secrets`, in a zeroizing buffer with room for the tag, so sealing it
/// in place never reallocates (a reallocation would leave a copy nobody wipes).
pub(crate) fn encode_payload(secrets: &Secrets) -> Result<Zeroizing<Vec<u8>>, String> {
    let payload = Payload {
        version: PAYLOAD_VERSION,
        secrets,
    };
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, &payload).map_err(|e| e.to_string())?;
    let mut buffer = Zeroizing::new(Vec::with_capacity(counter.0 + TAG_LEN));
    serde_json::to_writer(&mut *buffer, &payload).map_err(|e| e.to_string())?;
    Ok(buffer)
}

/// Reads a decrypted payload. (serde_json may copy an escaped string through a scratch
/// buffer it does not wipe; values are otherwise copied only into zeroizing memory.)
pub(crate) fn decode_payload(plaintext: &[u8]) -> Result<Secrets, String> {
    let payload: Payload<Secrets> =
        serde_json::from_slice(plaintext).map_err(|e| format!("its contents do not parse: {e}"))?;
    if payload.version != PAYLOAD_VERSION {
        return Err(format!(
            "payload version {}, and this keygate reads version {PAYLOAD_VERSION}",
            payload.version
        ));
    }
    Ok(payload.secrets)
}

/// Counts what serde_json would write, so the real buffer is allocated once.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A value as a JSON string.
mod value_text {
    use keygate_proto::SecretValue;
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &SecretValue, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.expose())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecretValue, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SecretValue;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a secret value (a string)")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretValue, E> {
                Ok(SecretValue::new(v.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SecretValue, E> {
                Ok(SecretValue::new(v))
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn header() -> Header {
        Header {
            key: KeyId {
                kdf: KdfParams::STRONG,
                salt: [1; SALT_LEN],
                check: [2; CHECK_LEN],
            },
            nonce: [3; NONCE_LEN],
            ciphertext_len: 20,
        }
    }

    #[test]
    fn header_round_trips() {
        let h = header();
        let mut file = h.encode().to_vec();
        file.extend_from_slice(&[9; 20]);
        let (back, ct) = Header::decode(&file).unwrap();
        assert_eq!(back, h);
        assert_eq!(ct, &[9; 20]);
    }

    #[test]
    fn malformed_headers_say_why() {
        let mut file = header().encode().to_vec();
        file.extend_from_slice(&[9; 20]);
        let why = |f: &[u8]| Header::decode(f).unwrap_err();

        assert!(why(b"").contains("not a keygate secret file"));
        assert!(why(b"PK\x03\x04").contains("not a keygate secret file"));
        assert!(why(&file[..50]).contains("truncated"));
        assert!(why(&file[..110]).contains("truncated"));
        let mut longer = file.clone();
        longer.push(0);
        assert!(why(&longer).contains("appended"));
        let mut v2 = file.clone();
        v2[4] = 2;
        assert!(why(&v2).contains("version 2"));
        let mut huge = file.clone();
        huge[11] = 0xff;
        assert!(why(&huge).contains("out of range"));
    }

    #[test]
    fn payload_round_trips_and_leaves_room_for_the_tag() {
        let mut secrets = Secrets::new();
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        secrets.insert(
            SecretName::new("a/b").unwrap(),
            Stored {
                value: SecretValue::new("quote\" and \\ and ünï".into()),
                created_at: t,
                updated_at: t + Duration::from_nanos(5),
            },
        );
        let plain = encode_payload(&secrets).unwrap();
        assert!(plain.capacity() >= plain.len() + TAG_LEN);
        let back = decode_payload(&plain).unwrap();
        let b = &back[&SecretName::new("a/b").unwrap()];
        assert_eq!(b.value.expose(), "quote\" and \\ and ünï");
        assert_eq!(b.updated_at, t + Duration::from_nanos(5));
    }

    #[test]
    fn payload_rejects_bad_names_and_versions() {
        assert!(decode_payload(br#"{"version":1,"secrets":{"../x":{}}}"#).is_err());
        assert!(
            decode_payload(br#"{"version":2,"secrets":{}}"#)
                .unwrap_err()
                .contains("version 2")
        );
    }
}
