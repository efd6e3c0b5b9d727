//! The HMAC tags of a delivery attempt through Web Crypto (`crypto.subtle`), the
//! runtime's native HMAC-SHA256. Measured in workerd (BENCHMARKS.md, "Signing: Web Crypto
//! or wasm"): from 4 KB on it costs a third to a fifth of the Rust `hmac`/`sha2` in wasm
//! (256 KB, 1 secret: ≈ 0.4 ms against 2 ms); at 1 KB, importing a fresh key costs more
//! than the hashing saves, so bodies under `WEB_CRYPTO_FROM_BYTES` stay in wasm. The plan
//! (which keys, which messages) and the header text come from `core::outbound::delivery`;
//! the Rust HMAC there stays the reference and the fallback.
//!
//! Ed25519 (`v1a`, SPEC §9.4) is signed here only, whatever the body's size: no Ed25519
//! is compiled into the wasm. Key pairs are generated here too (`generate_key_pair`); their
//! formats are `core::outbound::asymmetric`'s. Imported keys are cached per isolate like
//! the HMAC keys (BENCHMARKS.md, "Ed25519 signing").

use std::cell::RefCell;
use std::collections::HashMap;

use wasm_bindgen::prelude::*;
use worker::js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen_futures::JsFuture;

use crate::core::outbound::asymmetric::KeyPair;
use crate::core::outbound::delivery::{SecretTags, SigningPlan};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = importKey)]
    fn import_key(format: &str, key: &Uint8Array, algorithm: &Object, extractable: bool, usages: &Array) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = sign)]
    fn subtle_sign(algorithm: &str, key: &JsValue, data: &Uint8Array) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = generateKey)]
    fn generate_key(algorithm: &Object, extractable: bool, usages: &Array) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = exportKey)]
    fn export_key(format: &str, key: &JsValue) -> Result<Promise, JsValue>;
}

/// Bodies from this size on are signed by Web Crypto (the measured crossover lies between
/// 1 and 4 KB).
pub const WEB_CRYPTO_FROM_BYTES: usize = 2048;

/// Imported keys kept per isolate (a webhook's next deliveries reuse them); cleared
/// whole when full, so secrets no longer used do not stay long.
const KEY_CACHE_MAX: usize = 512;

thread_local! {
    static KEYS: RefCell<HashMap<Vec<u8>, JsValue>> = RefCell::new(HashMap::new());
    /// Ed25519 private keys by seed.
    static ED25519_KEYS: RefCell<HashMap<[u8; 32], JsValue>> = RefCell::new(HashMap::new());
}

fn ed25519_algorithm() -> Result<Object, JsValue> {
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"Ed25519".into())?;
    Ok(algorithm)
}

async fn ed25519_key(pair: &KeyPair) -> Result<JsValue, JsValue> {
    if let Some(key) = ED25519_KEYS.with(|k| k.borrow().get(pair.seed()).cloned()) {
        return Ok(key);
    }
    let usages = Array::of1(&"sign".into());
    let pkcs8 = Uint8Array::from(pair.pkcs8().as_slice());
    let key = JsFuture::from(import_key("pkcs8", &pkcs8, &ed25519_algorithm()?, false, &usages)?).await?;
    ED25519_KEYS.with(|k| {
        let mut k = k.borrow_mut();
        if k.len() >= KEY_CACHE_MAX {
            k.clear();
        }
        k.insert(*pair.seed(), key.clone());
    });
    Ok(key)
}

/// A new Ed25519 key pair from Web Crypto's generator.
pub async fn generate_key_pair() -> Result<KeyPair, JsValue> {
    let usages = Array::of2(&"sign".into(), &"verify".into());
    let pair = JsFuture::from(generate_key(&ed25519_algorithm()?, true, &usages)?).await?;
    let private = Reflect::get(&pair, &"privateKey".into())?;
    let public = Reflect::get(&pair, &"publicKey".into())?;
    let pkcs8 = Uint8Array::new(&JsFuture::from(export_key("pkcs8", &private)?).await?).to_vec();
    let raw = Uint8Array::new(&JsFuture::from(export_key("raw", &public)?).await?).to_vec();
    KeyPair::from_pkcs8(&pkcs8, &raw).ok_or_else(|| JsValue::from_str("Web Crypto exported an Ed25519 key of another form"))
}

/// `"<webhook-id>.<webhook-timestamp>."` + body, as one JS byte array.
fn standard_message(prefix: &str, body: &Uint8Array) -> Uint8Array {
    let prefix = prefix.as_bytes();
    let message = Uint8Array::new_with_length((prefix.len() + body.length() as usize) as u32);
    message.subarray(0, prefix.len() as u32).copy_from(prefix);
    message.set(body, prefix.len() as u32);
    message
}

/// One Ed25519 signature per key pair of `plan` over the standard message, in plan order.
pub async fn sign_ed25519(plan: &SigningPlan, body: &Uint8Array) -> Result<Vec<[u8; 64]>, JsValue> {
    let message = standard_message(&plan.standard_prefix, body);
    let mut signatures = Vec::with_capacity(plan.ed25519.len());
    for pair in &plan.ed25519 {
        let key = ed25519_key(pair).await?;
        let signature = Uint8Array::new(&JsFuture::from(subtle_sign("Ed25519", &key, &message)?).await?);
        let mut out = [0u8; 64];
        if signature.length() != 64 {
            return Err(JsValue::from_str("Ed25519 signature is not 64 bytes"));
        }
        signature.copy_to(&mut out);
        signatures.push(out);
    }
    Ok(signatures)
}

async fn hmac_key(raw: &[u8]) -> Result<JsValue, JsValue> {
    if let Some(key) = KEYS.with(|k| k.borrow().get(raw).cloned()) {
        return Ok(key);
    }
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"HMAC".into())?;
    Reflect::set(&algorithm, &"hash".into(), &"SHA-256".into())?;
    let usages = Array::of1(&"sign".into());
    let key = JsFuture::from(import_key("raw", &Uint8Array::from(raw), &algorithm, false, &usages)?).await?;
    KEYS.with(|k| {
        let mut k = k.borrow_mut();
        if k.len() >= KEY_CACHE_MAX {
            k.clear();
        }
        k.insert(raw.to_vec(), key.clone());
    });
    Ok(key)
}

async fn tag(raw_key: &[u8], data: &Uint8Array) -> Result<[u8; 32], JsValue> {
    let key = hmac_key(raw_key).await?;
    let mac = JsFuture::from(subtle_sign("HMAC", &key, data)?).await?;
    let mut out = [0u8; 32];
    let mac = Uint8Array::new(&mac);
    if mac.length() != 32 {
        return Err(JsValue::from_str("HMAC-SHA256 tag is not 32 bytes"));
    }
    mac.copy_to(&mut out);
    Ok(out)
}

/// The body as a JS byte array: signed here and sent as the request body (one copy out of
/// wasm memory instead of a UTF-8 decode into a JS string).
pub fn body_bytes(body: &str) -> Uint8Array {
    Uint8Array::from(body.as_bytes())
}

/// Every tag of `plan` over `body`, in the plan's order. One after the other: workerd
/// computes each HMAC before its promise settles, so running them together gains nothing.
pub async fn sign(plan: &SigningPlan, body: &Uint8Array) -> Result<Vec<SecretTags>, JsValue> {
    if plan.keys.is_empty() {
        return Ok(Vec::new());
    }
    let standard_message = standard_message(&plan.standard_prefix, body);
    let mut tags = Vec::with_capacity(plan.keys.len());
    for (legacy, standard) in &plan.keys {
        tags.push((tag(legacy, body).await?, tag(standard, &standard_message).await?));
    }
    Ok(tags)
}
