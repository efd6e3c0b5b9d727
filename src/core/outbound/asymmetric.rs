//! Ed25519 signatures, Standard Webhooks `v1a` (SPEC §9.4): the key formats, what is
//! signed and how a signature is written into `webhook-signature`.
//!
//! A private key is `whsk_` + base64 of 64 bytes (the 32-byte seed, then the 32-byte
//! public key, as Svix writes it); it lives in the webhook's sealed `SecretSet` like an
//! HMAC secret and is never shown. The public key is `whpk_` + base64 of its 32 raw bytes,
//! shown at any time. Nothing here signs: the worker signs and generates pairs through Web
//! Crypto (`delivery::signing`), which takes a PKCS#8 document (`pkcs8`) and exports one
//! (`from_pkcs8`). The host tests verify with `ed25519-dalek` (a dev-dependency only).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::core::outbound::webhook::WebhookSecret;

pub const SECRET_PREFIX: &str = "whsk_";
pub const PUBLIC_PREFIX: &str = "whpk_";

/// The fixed DER before the 32-byte seed in an Ed25519 PKCS#8 v1 document (RFC 8410 §7):
/// SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } }.
const PKCS8_PREFIX: [u8; 16] = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
/// The fixed DER before the 32-byte public key in its SubjectPublicKeyInfo (RFC 8410 §4),
/// what receivers import (`crypto.createPublicKey({key, format: "der", type: "spki"})`).
pub const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// How a webhook signs `webhook-signature`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Signing {
    /// `v1`: HMAC-SHA256 with a shared secret (and the seed's `X-Webhook-Signature`).
    #[default]
    Hmac,
    /// `v1a`: Ed25519 with a key pair; receivers hold only the public key.
    Ed25519,
}

impl Signing {
    pub fn parse(s: &str) -> Option<Signing> {
        match s {
            "hmac" => Some(Signing::Hmac),
            "ed25519" => Some(Signing::Ed25519),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Signing::Hmac => "hmac",
            Signing::Ed25519 => "ed25519",
        }
    }
}

/// An Ed25519 key pair. `Debug` never shows the seed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    seed: [u8; 32],
    public: [u8; 32],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", self.public_key())
    }
}

impl KeyPair {
    /// From what Web Crypto exports of a generated pair: the private key as PKCS#8 and the
    /// public key raw. `None` if either is not of the Ed25519 form.
    pub fn from_pkcs8(pkcs8: &[u8], raw_public: &[u8]) -> Option<KeyPair> {
        let seed = pkcs8.strip_prefix(&PKCS8_PREFIX[..])?;
        Some(KeyPair { seed: seed.try_into().ok()?, public: raw_public.try_into().ok()? })
    }

    /// A stored `whsk_` key; `None` for anything else (an HMAC secret).
    pub fn from_secret(secret: &WebhookSecret) -> Option<KeyPair> {
        let bytes = STANDARD.decode(secret.expose().strip_prefix(SECRET_PREFIX)?).ok()?;
        let (seed, public) = bytes.split_at_checked(32)?;
        Some(KeyPair { seed: seed.try_into().ok()?, public: public.try_into().ok()? })
    }

    /// `whsk_` + base64(seed ‖ public), sealed with the webhook's other secrets.
    pub fn to_secret(&self) -> WebhookSecret {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&self.seed);
        bytes[32..].copy_from_slice(&self.public);
        WebhookSecret::from_stored(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// `whpk_` + base64 of the 32 raw bytes.
    pub fn public_key(&self) -> String {
        format!("{PUBLIC_PREFIX}{}", STANDARD.encode(self.public))
    }

    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The PKCS#8 document Web Crypto imports to sign with this key.
    pub fn pkcs8(&self) -> Vec<u8> {
        let mut der = PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&self.seed);
        der
    }
}

/// The public key of a stored `whsk_` secret, `whpk_…`.
pub fn public_key_of(secret: &WebhookSecret) -> Option<String> {
    KeyPair::from_secret(secret).map(|k| k.public_key())
}

/// The 32 raw bytes of a `whpk_` key.
pub fn parse_public_key(text: &str) -> Option<[u8; 32]> {
    STANDARD.decode(text.strip_prefix(PUBLIC_PREFIX)?).ok()?.try_into().ok()
}

/// The SubjectPublicKeyInfo DER of a raw public key.
pub fn spki(public: &[u8; 32]) -> Vec<u8> {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(public);
    der
}

/// What is signed: `"<webhook-id>.<webhook-timestamp>."` + body, as for `v1`.
pub fn signed_message(prefix: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(prefix.len() + body.len());
    message.extend_from_slice(prefix.as_bytes());
    message.extend_from_slice(body);
    message
}

/// `v1a,<base64 signature>`, one entry of `webhook-signature`.
pub fn signature_entry(signature: &[u8; 64]) -> String {
    format!("v1a,{}", STANDARD.encode(signature))
}

/// Why a `secret` cannot be given to an `ed25519` webhook (create, update, rotate).
pub const NO_SECRET_FOR_ED25519: &str =
    "cannot be given with \"signing\": \"ed25519\": the server generates the key pair and shows its public_key";

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};

    fn pair(seed: [u8; 32]) -> KeyPair {
        let signing = SigningKey::from_bytes(&seed);
        let mut pkcs8 = PKCS8_PREFIX.to_vec();
        pkcs8.extend_from_slice(&seed);
        KeyPair::from_pkcs8(&pkcs8, signing.verifying_key().as_bytes()).unwrap()
    }

    #[test]
    fn key_formats_round_trip() {
        let k = pair([7; 32]);
        let secret = k.to_secret();
        assert!(secret.expose().starts_with("whsk_") && secret.expose().len() == 5 + 88);
        assert_eq!(KeyPair::from_secret(&secret), Some(k.clone()));
        assert!(k.public_key().starts_with("whpk_") && k.public_key().len() == 5 + 44);
        assert_eq!(public_key_of(&secret), Some(k.public_key()));
        assert_eq!(parse_public_key(&k.public_key()), Some(k.public));
        assert_eq!(k.pkcs8().len(), 48);
        assert!(!format!("{k:?}").contains(&STANDARD.encode(k.seed)));
        // HMAC secrets and malformed keys are not key pairs.
        for not_a_key in ["whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "whsk_AAAA", "whsk_!!!", "my-own-secret-0123456789"] {
            assert_eq!(KeyPair::from_secret(&WebhookSecret::from_stored(not_a_key.into())), None, "{not_a_key}");
        }
        assert_eq!(KeyPair::from_pkcs8(&[0; 48], &[0; 32]), None);
        assert_eq!(KeyPair::from_pkcs8(&k.pkcs8(), &[0; 31]), None);
        assert_eq!(parse_public_key("whpk_AAAA"), None);
    }

    #[test]
    fn a_v1a_entry_verifies_with_an_independent_implementation() {
        // RFC 8032 §7.1 test 1: the seed and its public key.
        let seed: [u8; 32] = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap().try_into().unwrap();
        let k = pair(seed);
        assert_eq!(hex::encode(k.public), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let message = signed_message("dlv_1.1700000000.", br#"{"a":1}"#);
        assert_eq!(message, b"dlv_1.1700000000.{\"a\":1}");
        let signature = SigningKey::from_bytes(k.seed()).sign(&message).to_bytes();
        let entry = signature_entry(&signature);
        let encoded = entry.strip_prefix("v1a,").unwrap();
        let decoded: [u8; 64] = STANDARD.decode(encoded).unwrap().try_into().unwrap();
        let public = VerifyingKey::from_bytes(&parse_public_key(&k.public_key()).unwrap()).unwrap();
        assert!(public.verify(&message, &ed25519_dalek::Signature::from_bytes(&decoded)).is_ok());
        // The SPKI a receiver imports ends with the raw key.
        assert_eq!(&spki(&k.public)[12..], &k.public);
        assert_eq!(spki(&k.public).len(), 44);
    }

    #[test]
    fn signing_names() {
        for s in [Signing::Hmac, Signing::Ed25519] {
            assert_eq!(Signing::parse(s.as_str()), Some(s));
        }
        assert_eq!(Signing::parse("HMAC"), None);
        assert_eq!(Signing::default(), Signing::Hmac);
    }
}
