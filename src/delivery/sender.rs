//! One HTTP attempt: open the webhook's sealed secrets and headers, sign (`delivery::signing`
//! says how), POST with `redirect: manual`, enforce `timeout_ms` with an abort signal, keep
//! the first 2 KiB of the answer. Used by queued deliveries, test events and redeliveries alike.

use std::time::Duration;

use futures_util::future::{select, Either};
use wasm_bindgen::prelude::wasm_bindgen;
use worker::js_sys::Uint8Array;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{web_sys, AbortController, Delay, Fetch, Headers, Request, ResponseBody};

use super::{log_event, now_ms, signing};
use crate::core::crypto::Keyring;
use crate::core::outbound::asymmetric::Signing;
use crate::core::outbound::delivery::{signed_headers, signing_plan, AttemptResult, DeliveryHeadersInput, Signatures, RESPONSE_EXCERPT_BYTES};
use crate::core::outbound::ssrf::check_target_url;
use crate::core::time::UnixMillis;
use crate::store::deliveries::ClaimedDelivery;

pub struct SendReport {
    pub result: AttemptResult,
    pub response_excerpt: Option<String>,
    pub attempted_at: UnixMillis,
    pub duration_ms: u32,
    /// Whether a request went out (a subrequest); blocked targets make none.
    pub fetched: bool,
}

/// Sends one delivery; never fails: every failure is an `AttemptResult`.
pub async fn send(d: &ClaimedDelivery, allow_private: bool, keys: &Keyring) -> SendReport {
    let attempted_at = now_ms();
    let (result, response_excerpt) = attempt(d, allow_private, keys, attempted_at).await;
    let duration_ms = (now_ms() - attempted_at).clamp(0, i64::from(u32::MAX)) as u32;
    // Blocked targets and deliveries whose secrets could not be opened make no request.
    let fetched = !matches!(result, AttemptResult::Blocked(_) | AttemptResult::NotSent(_));
    SendReport { result, response_excerpt, attempted_at, duration_ms, fetched }
}

async fn attempt(d: &ClaimedDelivery, allow_private: bool, keys: &Keyring, attempted_at: UnixMillis) -> (AttemptResult, Option<String>) {
    // The URL passed the SSRF rules when saved; rules or the flag may have changed since.
    if let Err(why) = check_target_url(&d.url, allow_private) {
        return (AttemptResult::Blocked(why.to_string()), None);
    }
    // Nothing leaves unsigned or without its headers because a ciphertext did not open.
    let opened = d.at_rest.open_secrets(keys, &d.webhook_id).and_then(|secrets| {
        d.at_rest.open_headers(keys, &d.webhook_id).map(|headers| (secrets, headers))
    });
    let (secrets, custom) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            log_event(serde_json::json!({"level": "error", "msg": "delivery not sent: sealed webhook fields do not open",
                                         "delivery": d.log_id, "webhook": d.webhook_id, "error": e.to_string()}));
            return (AttemptResult::NotSent(format!("the webhook's secrets or headers could not be decrypted ({e})")), None);
        }
    };
    let headers_input = DeliveryHeadersInput {
        event_type: &d.event_type,
        webhook_id: &d.webhook_id,
        delivery_id: &d.log_id,
        attempt_at: attempted_at,
        secrets: secrets.as_ref(),
        test: d.test,
        legacy_signature: d.legacy_signature,
        signing: d.signing,
        custom: &custom,
    };
    // Small bodies are signed in wasm, larger ones by Web Crypto (see `signing`); the Rust
    // HMAC also if Web Crypto ever fails. Ed25519 is signed by Web Crypto only: an
    // `ed25519` delivery that no key signs is not sent.
    let plan = signing_plan(&headers_input);
    let body = signing::body_bytes(&d.body);
    let tags = if d.signing == Signing::Ed25519 {
        let signed = match plan.ed25519.is_empty() {
            true => Err("the webhook has no Ed25519 key pair".to_string()),
            false => signing::sign_ed25519(&plan, &body).await.map_err(|e| format!("Ed25519 signing failed: {e:?}")),
        };
        match signed {
            Ok(ed25519) => Signatures { hmac: Vec::new(), ed25519 },
            Err(why) => {
                log_event(serde_json::json!({"level": "error", "msg": "delivery not sent: not signed",
                                             "delivery": d.log_id, "webhook": d.webhook_id, "error": why}));
                return (AttemptResult::NotSent(why), None);
            }
        }
    } else if d.body.len() < signing::WEB_CRYPTO_FROM_BYTES {
        plan.sign(d.body.as_bytes())
    } else {
        match signing::sign(&plan, &body).await {
            Ok(hmac) => Signatures { hmac, ed25519: Vec::new() },
            Err(e) => {
                log_event(serde_json::json!({"level": "warn", "msg": "Web Crypto signing failed; signed in wasm",
                                             "delivery": d.log_id, "error": format!("{e:?}")}));
                plan.sign(d.body.as_bytes())
            }
        }
    };
    let request = match build_request(d, &signed_headers(&headers_input, &tags), body) {
        Ok(r) => r,
        Err(e) => return (AttemptResult::NetworkError(format!("could not build the request: {e}")), None),
    };
    let controller = AbortController::default();
    let signal = controller.signal();
    let timeout = Duration::from_millis(u64::from(d.timeout_ms));
    let fetch = Fetch::Request(request);
    let response = {
        let sending = std::pin::pin!(fetch.send_with_signal(&signal));
        match select(sending, Delay::from(timeout)).await {
            Either::Left((Ok(response), _)) => response,
            Either::Left((Err(e), _)) => return (AttemptResult::NetworkError(e.to_string()), None),
            Either::Right(_) => {
                controller.abort();
                return (AttemptResult::Timeout { timeout_ms: d.timeout_ms }, None);
            }
        }
    };
    let status = response.status_code();
    let retry_after = response.headers().get("Retry-After").ok().flatten();
    let elapsed = (now_ms() - attempted_at).max(0) as u64;
    let remaining = u64::from(d.timeout_ms).saturating_sub(elapsed).max(250);
    let (excerpt, complete) = read_excerpt(response, Duration::from_millis(remaining)).await;
    // Cancels the rest of an answer not read to its end. A finished one needs nothing, and
    // `abort()` is not free: it builds an AbortError with a stack trace (≈ 2 % of the
    // workerd CPU of a fan-out, measured with perf).
    if !complete {
        controller.abort();
    }
    (AttemptResult::Response { status, retry_after }, excerpt)
}

fn build_request(d: &ClaimedDelivery, headers: &[(String, String)], body: worker::js_sys::Uint8Array) -> worker::Result<Request> {
    let h = Headers::new();
    for (name, value) in headers {
        h.set(name, value)?;
    }
    // web_sys's RequestInit, not worker's: the same request, without the conversion of
    // worker's `cf` properties (≈ 4 KB gzip of wasm that no request here uses).
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&h.0);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    init.set_body(&body);
    web_sys::Request::new_with_str_and_init(&d.url, &init).map(Request::from).map_err(|e| {
        worker::Error::JsError(e.as_string().unwrap_or_else(|| "invalid URL or options for Request".to_string()))
    })
}

#[wasm_bindgen]
extern "C" {
    /// What a stream reader's `read()` resolves to, read by property (no key string is
    /// made in wasm and passed over for each look-up, as `Reflect::get` needs).
    type ReadResult;
    #[wasm_bindgen(method, getter)]
    fn done(this: &ReadResult) -> bool;
    #[wasm_bindgen(method, getter)]
    fn value(this: &ReadResult) -> JsValue;
}

/// The first 2 KiB of the body, read within `budget`; the rest is never downloaded.
/// Also says whether the body was read to its end.
///
/// Read with the stream's reader directly: the reader is let go without `releaseLock()`,
/// which in workerd builds a `TypeError` with a stack trace for the reader's `closed`
/// promise whether or not anyone listens (≈ 50–80 µs per delivery, about a tenth of the
/// worker's CPU per delivery in a fan-out, measured by `bench/delivery-cpu.mjs`). Nothing
/// else reads the body: a finished one needs nothing, an unfinished one is cancelled by
/// the attempt's `abort()`.
async fn read_excerpt(response: worker::Response, budget: Duration) -> (Option<String>, bool) {
    let ResponseBody::Stream(stream) = response.body() else { return (None, false) };
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut bytes: Vec<u8> = Vec::new();
    let mut complete = false;
    {
        let reading = std::pin::pin!(async {
            while bytes.len() < RESPONSE_EXCERPT_BYTES {
                let Ok(read) = JsFuture::from(reader.read()).await else { break };
                let read: ReadResult = read.unchecked_into();
                if read.done() {
                    complete = true;
                    break;
                }
                match read.value().dyn_into::<Uint8Array>().ok() {
                    Some(chunk) => bytes.extend_from_slice(&chunk.to_vec()),
                    None => break,
                }
            }
        });
        let _ = select(reading, Delay::from(budget)).await;
    }
    bytes.truncate(RESPONSE_EXCERPT_BYTES);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (Some(text), complete)
}
