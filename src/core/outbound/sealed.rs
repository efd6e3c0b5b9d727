//! How a webhook row keeps its secrets and custom headers at rest (SPEC §8.1).
//!
//! Sealed rows (`enc_key_id` set) hold `secrets_enc` (the `SecretSet` as JSON) and
//! `headers_enc` (the header map as JSON, absent when empty), each sealed with
//! `core::crypto` and bound to the row's id and column. Rows written before migration
//! 0004 are *legacy*: `secret` and `headers` in clear. They are read as they are until the
//! cron (or their next write) seals them; the legacy columns are then emptied.

use std::collections::BTreeMap;

use crate::core::crypto::{KeyError, Keyring, OpenError};
use crate::core::outbound::asymmetric::public_key_of;
use crate::core::outbound::secrets::SecretSet;
use crate::core::outbound::webhook::WebhookSecret;

/// The at-rest columns of one webhook row, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowSecrets {
    /// Legacy clear secret (pre-0004 rows only).
    pub secret: Option<String>,
    /// Legacy clear header map as JSON (pre-0004 rows only; `{}` once sealed).
    pub headers: String,
    pub secrets_enc: Option<String>,
    pub headers_enc: Option<String>,
    /// Key id of the sealed columns; `None` marks a legacy row.
    pub enc_key_id: Option<String>,
}

/// What to write: sealed columns plus the clear hint and, for an Ed25519 key pair, its
/// public key. Legacy columns are emptied with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedColumns {
    pub secrets_enc: String,
    pub headers_enc: Option<String>,
    pub enc_key_id: String,
    pub secret_hint: String,
    /// `whpk_…` when the current secret is a `whsk_` pair (the hint is then the public
    /// key's, never the private key's).
    pub public_key: Option<String>,
}

fn aad(webhook_id: &str, column: &str) -> Vec<u8> {
    format!("{webhook_id}:{column}").into_bytes()
}

impl RowSecrets {
    pub fn is_legacy(&self) -> bool {
        self.enc_key_id.is_none()
    }

    /// The secret set; `None` only for a legacy row that never had a secret.
    pub fn open_secrets(&self, keys: &Keyring, webhook_id: &str) -> Result<Option<SecretSet>, OpenError> {
        if self.is_legacy() {
            return Ok(self.secret.clone().map(|s| SecretSet::new(WebhookSecret::from_stored(s))));
        }
        let sealed = self.secrets_enc.as_deref().ok_or(OpenError::Malformed)?;
        let json = keys.open(sealed, &aad(webhook_id, "secrets"))?;
        SecretSet::from_json(&json).map(Some).ok_or(OpenError::Malformed)
    }

    /// The custom headers (values in clear, for sending and rendering).
    pub fn open_headers(&self, keys: &Keyring, webhook_id: &str) -> Result<BTreeMap<String, String>, OpenError> {
        let json = match (&self.enc_key_id, &self.headers_enc) {
            (None, _) => return Ok(serde_json::from_str(&self.headers).unwrap_or_default()),
            (Some(_), None) => return Ok(BTreeMap::new()),
            (Some(_), Some(sealed)) => keys.open(sealed, &aad(webhook_id, "headers"))?,
        };
        serde_json::from_slice(&json).map_err(|_| OpenError::Malformed)
    }

    /// True when the cron should re-seal this row: legacy, or sealed under another key.
    pub fn needs_reseal(&self, keys: &Keyring) -> bool {
        match (&self.enc_key_id, keys.current()) {
            (None, _) => true,
            (Some(kid), Ok(current)) => kid != current.id(),
            (Some(_), Err(_)) => false,
        }
    }
}

/// Seals a secret set and a header map for the row `webhook_id` under the current key.
pub fn seal(
    keys: &Keyring,
    webhook_id: &str,
    secrets: &SecretSet,
    headers: &BTreeMap<String, String>,
) -> Result<SealedColumns, KeyError> {
    let kid = keys.current()?.id().to_string();
    let secrets_enc = keys.seal(secrets.to_json().as_bytes(), &aad(webhook_id, "secrets"))?;
    let headers_enc = if headers.is_empty() {
        None
    } else {
        // A map of strings always serializes.
        let json = serde_json::to_string(headers).unwrap_or_else(|_| "{}".into());
        Some(keys.seal(json.as_bytes(), &aad(webhook_id, "headers"))?)
    };
    let public_key = public_key_of(&secrets.current);
    let secret_hint = match &public_key {
        Some(public) => WebhookSecret::from_stored(public.clone()).hint(),
        None => secrets.current.hint(),
    };
    Ok(SealedColumns { secrets_enc, headers_enc, enc_key_id: kid, secret_hint, public_key })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const KEY_B: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

    fn sealed_row(keys: &Keyring, id: &str, headers: &BTreeMap<String, String>) -> RowSecrets {
        let mut set = SecretSet::new(WebhookSecret::from_stored("whsec_old_secret_value".into()));
        set.rotate(WebhookSecret::from_stored("whsec_current_secret_1234".into()), 60, 0);
        let c = seal(keys, id, &set, headers).unwrap();
        assert_eq!(c.secret_hint, "…1234");
        assert_eq!(c.public_key, None);
        RowSecrets {
            secret: None,
            headers: "{}".into(),
            secrets_enc: Some(c.secrets_enc),
            headers_enc: c.headers_enc,
            enc_key_id: Some(c.enc_key_id),
        }
    }

    #[test]
    fn sealed_row_round_trip_without_clear_text() {
        let keys = Keyring::from_config(Some(KEY_A), None);
        let headers = BTreeMap::from([("Authorization".to_string(), "Bearer receiver-token".to_string())]);
        let row = sealed_row(&keys, "wh_1", &headers);
        let all = format!("{row:?}");
        assert!(!all.contains("current_secret") && !all.contains("receiver-token") && !all.contains("old_secret"));
        let set = row.open_secrets(&keys, "wh_1").unwrap().unwrap();
        assert_eq!(set.current.expose(), "whsec_current_secret_1234");
        assert_eq!(set.previous.len(), 1);
        assert_eq!(row.open_headers(&keys, "wh_1").unwrap(), headers);
        assert!(!row.needs_reseal(&keys));
        // Another row's id does not open it.
        assert_eq!(row.open_secrets(&keys, "wh_2"), Err(OpenError::Tampered));
    }

    #[test]
    fn empty_headers_are_not_sealed() {
        let keys = Keyring::from_config(Some(KEY_A), None);
        let row = sealed_row(&keys, "wh_1", &BTreeMap::new());
        assert_eq!(row.headers_enc, None);
        // No key needed to know there are none.
        let keyless = Keyring::from_config(None, None);
        assert!(row.open_headers(&keyless, "wh_1").unwrap().is_empty());
    }

    #[test]
    fn legacy_rows_read_in_clear_and_need_sealing() {
        let keys = Keyring::from_config(Some(KEY_A), None);
        let legacy = RowSecrets { secret: Some("legacy-secret-0123".into()), headers: r#"{"X-A":"1"}"#.into(), ..Default::default() };
        assert!(legacy.needs_reseal(&keys));
        assert_eq!(legacy.open_secrets(&keys, "wh").unwrap().unwrap().current.expose(), "legacy-secret-0123");
        assert_eq!(legacy.open_headers(&keys, "wh").unwrap()["X-A"], "1");
        let secretless = RowSecrets { headers: "{}".into(), ..Default::default() };
        assert_eq!(secretless.open_secrets(&keys, "wh").unwrap(), None);
    }

    #[test]
    fn key_change_reads_previous_and_asks_for_reseal() {
        let old = Keyring::from_config(Some(KEY_A), None);
        let headers = BTreeMap::from([("X-Tenant".to_string(), "fbo".to_string())]);
        let row = sealed_row(&old, "wh_1", &headers);
        let new = Keyring::from_config(Some(KEY_B), Some(KEY_A));
        assert!(row.needs_reseal(&new));
        assert_eq!(row.open_headers(&new, "wh_1").unwrap(), headers);
        let missing_previous = Keyring::from_config(Some(KEY_B), None);
        assert!(matches!(row.open_secrets(&missing_previous, "wh_1"), Err(OpenError::UnknownKey(_))));
    }

    #[test]
    fn missing_key_refuses_to_seal() {
        let keys = Keyring::from_config(None, None);
        let set = SecretSet::new(WebhookSecret::from_stored("whsec_x_0123456789".into()));
        assert_eq!(seal(&keys, "wh", &set, &BTreeMap::new()), Err(KeyError::Missing));
    }

    #[test]
    fn a_key_pair_is_sealed_and_its_public_key_kept_beside() {
        use crate::core::outbound::asymmetric::KeyPair;
        let keys = Keyring::from_config(Some(KEY_A), None);
        let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap();
        pkcs8.extend_from_slice(&[9; 32]);
        let pair = KeyPair::from_pkcs8(&pkcs8, &[5; 32]).unwrap();
        let c = seal(&keys, "wh", &SecretSet::new(pair.to_secret()), &BTreeMap::new()).unwrap();
        assert_eq!(c.public_key.as_deref(), Some(pair.public_key().as_str()));
        assert!(pair.public_key().ends_with(&c.secret_hint[c.secret_hint.len() - 4..]));
        assert!(!c.secrets_enc.contains("whsk_"));
    }
}
