//! Verifying PlaneConnection webhook deliveries in Rust (`hmac`, `sha2`, `base64`).
//!
//! The Standard Webhooks scheme: `webhook-signature` holds space-separated `v1,<base64>`
//! entries over `"<webhook-id>.<webhook-timestamp>.<body>"`; any may match (during a
//! secret rotation the previous secret signs too). `Mac::verify_slice` compares in
//! constant time. The timestamp is signed: a 5-minute tolerance stops replays; dedupe on
//! `webhook-id` (retries reuse it). The original `X-Webhook-Signature: sha256=<hex>` is
//! checked the same way when the `webhook-*` headers are absent (its timestamp is not
//! signed, so a captured delivery can be replayed: prefer `webhook-signature`).
//! An `ed25519` webhook signs `v1a,<base64>` entries instead: Ed25519 signatures of the
//! same message, checked (`ed25519-dalek`, `verify_strict`) with its public key
//! (`whpk_` + base64 of 32 bytes); it sends no `X-Webhook-Signature`.
//!
//! `cargo run --example verify_receiver < input.json`, where input is
//! `{"secret", "deliveries": [{"headers", "body_base64"}]}` (`secret`: the webhook's
//! secret, or its `whpk_` public key); prints one line per delivery.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const TOLERANCE_SECS: i64 = 5 * 60;

fn standard_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .filter(|key| (24..=64).contains(&key.len()))
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    // infallible: HMAC accepts keys of any length.
    Hmac::<Sha256>::new_from_slice(key).expect("infallible: HMAC takes any key length")
}

/// One `v1a` entry against a `whpk_` key.
fn ed25519_verifies(public_key: &str, message: &[u8], signature: &str) -> bool {
    let Some(Ok(raw)) = public_key.strip_prefix("whpk_").map(|k| STANDARD.decode(k)) else { return false };
    let (Ok(raw), Ok(Ok(sig))) = (<[u8; 32]>::try_from(raw), STANDARD.decode(signature).map(|s| <[u8; 64]>::try_from(s))) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&raw) else { return false };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok()
}

/// Verifies one delivery (`secret` the webhook's secret or its `whpk_` public key,
/// `headers` with lower-case names, `body` the raw bytes) and returns its id.
pub fn verify_delivery(secret: &str, headers: &HashMap<String, String>, body: &[u8], now: i64) -> Result<String, String> {
    let get = |name: &str| headers.get(name).map(String::as_str);
    let ed25519 = secret.starts_with("whpk_");
    if let (Some(id), Some(ts), Some(signatures)) = (get("webhook-id"), get("webhook-timestamp"), get("webhook-signature")) {
        let t: i64 = ts.parse().map_err(|_| "bad webhook-timestamp")?;
        if (now - t).abs() > TOLERANCE_SECS {
            return Err("timestamp outside the 5-minute tolerance".into());
        }
        if ed25519 {
            let message = [format!("{id}.{ts}.").as_bytes(), body].concat();
            let signed = signatures.split(' ').filter_map(|e| e.strip_prefix("v1a,")).any(|sig| ed25519_verifies(secret, &message, sig));
            return if signed { Ok(id.to_string()) } else { Err("no matching webhook-signature".into()) };
        }
        let key = standard_key(secret);
        for entry in signatures.split(' ') {
            let Some(("v1", sig)) = entry.split_once(',') else { continue };
            let Ok(sig) = STANDARD.decode(sig) else { continue };
            let mut m = mac(&key);
            m.update(format!("{id}.{ts}.").as_bytes());
            m.update(body);
            if m.verify_slice(&sig).is_ok() {
                return Ok(id.to_string());
            }
        }
        return Err("no matching webhook-signature".into());
    }
    if ed25519 {
        return Err("no webhook-signature".into());
    }
    let offered = get("x-webhook-signature").into_iter().chain(get("x-webhook-signature-previous").unwrap_or("").split(','));
    for sig in offered {
        let Some(Ok(sig)) = sig.strip_prefix("sha256=").map(hex::decode) else { continue };
        let mut m = mac(secret.as_bytes());
        m.update(body);
        if m.verify_slice(&sig).is_ok() {
            // This scheme's timestamp (ISO 8601) is not signed; check it anyway in production.
            return Ok(get("x-webhook-delivery").unwrap_or_default().to_string());
        }
    }
    Err("no matching X-Webhook-Signature".into())
}

fn main() {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        eprintln!("stdin is not UTF-8");
        std::process::exit(2);
    }
    let Ok(data) = serde_json::from_str::<serde_json::Value>(&input) else {
        eprintln!("stdin is not JSON");
        std::process::exit(2);
    };
    let secret = data["secret"].as_str().unwrap_or_default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let mut seen = HashSet::new();
    for d in data["deliveries"].as_array().into_iter().flatten() {
        let headers: HashMap<String, String> = d["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_string())))
            .collect();
        let body = STANDARD.decode(d["body_base64"].as_str().unwrap_or_default()).unwrap_or_default();
        match verify_delivery(secret, &headers, &body, now) {
            Ok(id) => println!("{}", if seen.insert(id) { "accepted" } else { "duplicate" }),
            Err(why) => println!("rejected: {why}"),
        }
    }
}
