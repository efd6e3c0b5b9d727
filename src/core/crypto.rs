//! Encryption at rest (SPEC §8.1): AES-256-GCM under the Worker secret
//! `WEBHOOK_ENCRYPTION_KEY`, with `WEBHOOK_ENCRYPTION_KEY_PREVIOUS` still readable
//! during a key change.
//!
//! A sealed value is text: `v1:<kid>:<base64(nonce ‖ ciphertext ‖ tag)>`, with a fresh
//! random 96-bit nonce each time and `kid` naming the key (8 hex characters derived from
//! the key itself, so configuration never has to name keys). The caller's `aad` binds a
//! value to its row and column: a ciphertext copied elsewhere does not open.
//! This module is not about signing (see `outbound::secrets`).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::core::ids::fill_random;

const VERSION: &str = "v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// Why a configured key cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    Missing,
    NotBase64,
    WrongLength(usize),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Missing => f.write_str("WEBHOOK_ENCRYPTION_KEY is not configured"),
            KeyError::NotBase64 => f.write_str("WEBHOOK_ENCRYPTION_KEY is not base64"),
            KeyError::WrongLength(n) => write!(f, "WEBHOOK_ENCRYPTION_KEY decodes to {n} bytes, not 32"),
        }
    }
}

/// Why a stored value does not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Not of the `v1:<kid>:<base64>` form.
    Malformed,
    /// Sealed under a key that is neither the current nor the previous one (or no key
    /// is configured at all).
    UnknownKey(String),
    /// The tag does not match: the value, its row binding or the key was changed.
    Tampered,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Malformed => f.write_str("stored ciphertext is malformed"),
            OpenError::UnknownKey(kid) => write!(f, "stored ciphertext uses key {kid}, which is not configured"),
            OpenError::Tampered => f.write_str("stored ciphertext failed authentication (tampered or wrong key)"),
        }
    }
}

/// One AES-256 key with its id. `Debug` never shows the key.
pub struct DataKey {
    id: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.id)
    }
}

impl DataKey {
    /// Reads a key as configured: base64 (standard alphabet) of exactly 32 bytes.
    pub fn parse(configured: Option<&str>) -> Result<DataKey, KeyError> {
        let text = configured.map(str::trim).filter(|t| !t.is_empty()).ok_or(KeyError::Missing)?;
        let bytes = STANDARD.decode(text).map_err(|_| KeyError::NotBase64)?;
        if bytes.len() != KEY_LEN {
            return Err(KeyError::WrongLength(bytes.len()));
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| KeyError::WrongLength(bytes.len()))?;
        Ok(DataKey { id: key_id(&bytes), cipher })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The id of a key: first 4 bytes of SHA-256 over a label and the key, as hex. It says
/// which key sealed a value without revealing anything useful about the key.
pub fn key_id(key: &[u8]) -> String {
    let digest = Sha256::new().chain_update(b"planeconnection-webhooks key id\0").chain_update(key).finalize();
    hex::encode(&digest[..4])
}

/// The keys of this invocation: the current one (needed to write) and the previous one
/// (still read during a key change).
#[derive(Debug)]
pub struct Keyring {
    current: Result<DataKey, KeyError>,
    previous: Option<DataKey>,
}

impl Keyring {
    /// A bad previous key is ignored (values under it then fail as `UnknownKey`).
    pub fn from_config(current: Option<&str>, previous: Option<&str>) -> Keyring {
        Keyring { current: DataKey::parse(current), previous: DataKey::parse(previous).ok() }
    }

    /// The key that writes, or why there is none.
    pub fn current(&self) -> Result<&DataKey, KeyError> {
        self.current.as_ref().map_err(|e| *e)
    }

    pub fn previous_id(&self) -> Option<&str> {
        self.previous.as_ref().map(DataKey::id)
    }

    /// Seals `plaintext` under the current key with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        self.seal_with_nonce(plaintext, aad, nonce)
    }

    /// `seal` with a given nonce (tests only need this to be deterministic).
    pub fn seal_with_nonce(&self, plaintext: &[u8], aad: &[u8], nonce: [u8; NONCE_LEN]) -> Result<String, KeyError> {
        let key = self.current()?;
        // AES-GCM encryption only fails for plaintexts over 64 GiB.
        let sealed = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .map_err(|_| KeyError::Missing)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Ok(format!("{VERSION}:{}:{}", key.id, STANDARD.encode(blob)))
    }

    /// Opens a value sealed under the current or the previous key.
    pub fn open(&self, stored: &str, aad: &[u8]) -> Result<Vec<u8>, OpenError> {
        let (kid, blob) = split_sealed(stored).ok_or(OpenError::Malformed)?;
        let key = [self.current.as_ref().ok(), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == kid)
            .ok_or_else(|| OpenError::UnknownKey(kid.to_string()))?;
        let blob = STANDARD.decode(blob).map_err(|_| OpenError::Malformed)?;
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        key.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
            .map_err(|_| OpenError::Tampered)
    }
}

/// The key id of a sealed value, if it has the sealed form.
pub fn sealed_key_id(stored: &str) -> Option<&str> {
    split_sealed(stored).map(|(kid, _)| kid)
}

fn split_sealed(stored: &str) -> Option<(&str, &str)> {
    let rest = stored.strip_prefix(VERSION)?.strip_prefix(':')?;
    let (kid, blob) = rest.split_once(':')?;
    (kid.len() == 8 && kid.bytes().all(|b| b.is_ascii_hexdigit())).then_some((kid, blob))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // "0123456789abcdef" × 2
    const KEY_B: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

    fn ring(current: Option<&str>, previous: Option<&str>) -> Keyring {
        Keyring::from_config(current, previous)
    }

    #[test]
    fn nist_gcm_vector_decrypts() {
        // NIST GCM test case 16 (AES-256, 96-bit IV, with AAD), from the GCM spec's appendix B.
        let key = hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308").unwrap();
        let iv = hex::decode("cafebabefacedbaddecaf888").unwrap();
        let pt = hex::decode("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39").unwrap();
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
        let ct_tag = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
                      76fc6ece0f4e1768cddf8853bb2d551b";
        let r = ring(Some(&STANDARD.encode(&key)), None);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&iv);
        let sealed = r.seal_with_nonce(&pt, &aad, nonce).unwrap();
        let (_, blob) = split_sealed(&sealed).unwrap();
        assert_eq!(hex::encode(&STANDARD.decode(blob).unwrap()[12..]), ct_tag);
        assert_eq!(r.open(&sealed, &aad).unwrap(), pt);
    }

    #[test]
    fn round_trip_with_fresh_nonces_and_key_id() {
        let r = ring(Some(KEY_A), None);
        let a = r.seal(b"whsec_secret", b"wh_1:secrets").unwrap();
        let b = r.seal(b"whsec_secret", b"wh_1:secrets").unwrap();
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.contains("whsec_secret"));
        assert_eq!(sealed_key_id(&a), Some(r.current().unwrap().id()));
        assert!(a.starts_with("v1:"));
        assert_eq!(r.open(&a, b"wh_1:secrets").unwrap(), b"whsec_secret");
    }

    #[test]
    fn aad_binds_the_value_to_its_row() {
        let r = ring(Some(KEY_A), None);
        let a = r.seal(b"x", b"wh_1:headers").unwrap();
        assert_eq!(r.open(&a, b"wh_2:headers"), Err(OpenError::Tampered));
    }

    #[test]
    fn previous_key_still_opens_and_unknown_keys_are_named() {
        let old = ring(Some(KEY_A), None);
        let sealed = old.seal(b"v", b"aad").unwrap();
        let rotated = ring(Some(KEY_B), Some(KEY_A));
        assert_eq!(rotated.open(&sealed, b"aad").unwrap(), b"v");
        assert_eq!(rotated.previous_id(), Some(old.current().unwrap().id()));
        let without = ring(Some(KEY_B), None);
        assert!(matches!(without.open(&sealed, b"aad"), Err(OpenError::UnknownKey(_))));
        let none = ring(None, None);
        assert!(matches!(none.open(&sealed, b"aad"), Err(OpenError::UnknownKey(_))));
    }

    #[test]
    fn tampering_is_detected() {
        let r = ring(Some(KEY_A), None);
        let sealed = r.seal(b"value", b"aad").unwrap();
        let (kid, blob) = split_sealed(&sealed).unwrap();
        let mut bytes = STANDARD.decode(blob).unwrap();
        for i in [0, 12, bytes.len() - 1] {
            bytes[i] ^= 1;
            let forged = format!("v1:{kid}:{}", STANDARD.encode(&bytes));
            assert_eq!(r.open(&forged, b"aad"), Err(OpenError::Tampered), "byte {i}");
            bytes[i] ^= 1;
        }
        for bad in ["", "v1", "v1::", "v2:00000000:AAAA", &format!("v1:{kid}:!!!"), &format!("v1:{kid}:AAAA"), "v1:zzzzzzzz:AAAA"] {
            assert!(r.open(bad, b"aad").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn key_configuration_errors() {
        assert_eq!(DataKey::parse(None).unwrap_err(), KeyError::Missing);
        assert_eq!(DataKey::parse(Some("  ")).unwrap_err(), KeyError::Missing);
        assert_eq!(DataKey::parse(Some("not base64!")).unwrap_err(), KeyError::NotBase64);
        assert_eq!(DataKey::parse(Some("c2hvcnQ=")).unwrap_err(), KeyError::WrongLength(5));
        let r = ring(None, None);
        assert_eq!(r.seal(b"x", b"").unwrap_err(), KeyError::Missing);
        assert!(!format!("{:?}", ring(Some(KEY_A), None)).contains(KEY_A));
    }

    #[test]
    fn empty_values_seal_and_short_blobs_are_malformed() {
        let r = ring(Some(KEY_A), None);
        let empty = r.seal(b"", b"aad").unwrap();
        assert_eq!(r.open(&empty, b"aad").unwrap(), b"", "12-byte nonce + 16-byte tag, nothing else");
        let kid = r.current().unwrap().id().to_string();
        let short = format!("v1:{kid}:{}", STANDARD.encode([0u8; 27]));
        assert_eq!(r.open(&short, b"aad"), Err(OpenError::Malformed));
        // A key id is 8 hex digits: anything else is not the sealed form, whatever follows.
        assert_eq!(r.open(&format!("v1:zzzzzzzz:{}", STANDARD.encode([0u8; 40])), b"aad"), Err(OpenError::Malformed));
        assert_eq!(r.open(&format!("v1:{}:{}", &kid[..7], STANDARD.encode([0u8; 40])), b"aad"), Err(OpenError::Malformed));
        assert_eq!(sealed_key_id("v1:zzzzzzzz:AAAA"), None);
        assert_eq!(sealed_key_id(&empty), Some(kid.as_str()));
    }

    #[test]
    fn errors_name_the_setting_and_debug_only_the_key_id() {
        assert_eq!(KeyError::Missing.to_string(), "WEBHOOK_ENCRYPTION_KEY is not configured");
        assert_eq!(KeyError::NotBase64.to_string(), "WEBHOOK_ENCRYPTION_KEY is not base64");
        assert_eq!(KeyError::WrongLength(5).to_string(), "WEBHOOK_ENCRYPTION_KEY decodes to 5 bytes, not 32");
        assert_eq!(OpenError::Malformed.to_string(), "stored ciphertext is malformed");
        assert_eq!(OpenError::UnknownKey("0badc0de".into()).to_string(), "stored ciphertext uses key 0badc0de, which is not configured");
        assert_eq!(OpenError::Tampered.to_string(), "stored ciphertext failed authentication (tampered or wrong key)");
        let key = DataKey::parse(Some(KEY_A)).unwrap();
        assert_eq!(format!("{key:?}"), format!("DataKey({})", key.id()));
        assert_eq!(key.id().len(), 8);
    }
}
