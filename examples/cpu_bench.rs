//! Per-call CPU cost of the crypto on the request path (SPEC §7 "per-request CPU well
//! under 10 ms"): inbound signature verification (Stripe, Svix), outbound signing of a
//! 1 KB and a 256 KB body, JWT verification, the per-delivery SSRF re-check, and what
//! one delivery attempt costs to sign (every header of §4.5/§8.2) with 1 secret and
//! with 6 (current + 5 in grace), plus opening its sealed secrets (AES-256-GCM).
//!
//! It is a benchmark, not a test: nothing here asserts on time.
//!
//! * Host (native code): `cargo run --release --example cpu_bench` prints one JSON line
//!   per case (`{"case", "ns_per_call", "iters", "rounds"}`): the median of several
//!   rounds, each timed with `std::time::Instant` over enough calls to last ~100 ms.
//! * Wasm: `bench/cpu-wasm/` compiles these same cases (this file, by `#[path]`) to a
//!   `wasm32-unknown-unknown` cdylib with the worker's release profile and exports
//!   `bench_run(case, iters)`; `bench/cpu.mjs` times it in V8, the engine workerd embeds
//!   (`Instant` does not exist on that target). A separate crate because examples get
//!   the dev-dependencies, which do not build for wasm32.

use std::hint::black_box;
use std::sync::OnceLock;

use std::collections::BTreeMap;

use planeconnection_webhooks::core::crypto::Keyring;
use planeconnection_webhooks::core::outbound::asymmetric::Signing;
use planeconnection_webhooks::core::outbound::delivery::{request_headers, signature_header, DeliveryHeadersInput};
use planeconnection_webhooks::core::outbound::sealed::RowSecrets;
use planeconnection_webhooks::core::outbound::secrets::SecretSet;
use planeconnection_webhooks::core::inbound::signatures::{
    sign_stripe, sign_svix, verify_stripe, verify_svix, SvixHeaders, DEFAULT_TOLERANCE_SECS,
};
use planeconnection_webhooks::core::api::jwt;
use planeconnection_webhooks::core::outbound::ssrf::check_target_url;
use planeconnection_webhooks::core::outbound::webhook::WebhookSecret;

const NOW: i64 = 1_780_000_000;
const STRIPE_SECRET: &str = "whsec_bench_stripe_secret_0123456789";
/// `whsec_` + base64 of 24 bytes, like a Svix secret.
const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const JWT_SECRET: &[u8] = b"bench-jwt-secret-0123456789abcdef";

/// The cases, in the order `bench_run` numbers them.
pub const CASES: [&str; 11] = [
    "stripe_verify_1k",
    "svix_verify_1k",
    "sign_outbound_1k",
    "sign_outbound_256k",
    "jwt_verify",
    "ssrf_check_url",
    "sign_attempt_1_secret_1k",
    "sign_attempt_6_secrets_1k",
    "sign_attempt_1_secret_256k",
    "sign_attempt_6_secrets_256k",
    "open_sealed_secrets",
];

struct Fixtures {
    body_1k: Vec<u8>,
    body_256k: Vec<u8>,
    stripe_header: String,
    svix_id: String,
    svix_ts: String,
    svix_sig: String,
    outbound_secret: WebhookSecret,
    token: String,
    one_secret: SecretSet,
    six_secrets: SecretSet,
    keys: Keyring,
    sealed: RowSecrets,
}

/// A JSON-looking body of exactly `len` bytes.
fn body(len: usize) -> Vec<u8> {
    let mut s = String::from(r#"{"id":"evt_bench","type":"customer.subscription.updated","data":{"pad":""#);
    while s.len() < len - 3 {
        s.push_str("abcdefghijklmnopqrstuvwxyz0123456789");
    }
    s.truncate(len - 3);
    s.push_str("\"}}");
    s.into_bytes()
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let body_1k = body(1024);
        let svix_id = "msg_2bench0000000000000000000".to_string();
        let svix_sig = sign_svix(SVIX_SECRET, &svix_id, NOW, &body_1k).unwrap_or_default();
        let claims = serde_json::json!({"sub": "usr_bench", "workspace_id": "ws_bench", "role": "admin", "exp": NOW + 600, "iat": NOW});
        Fixtures {
            stripe_header: sign_stripe(STRIPE_SECRET, NOW, &body_1k),
            svix_ts: NOW.to_string(),
            svix_sig,
            svix_id,
            body_256k: body(256 * 1024),
            body_1k,
            outbound_secret: WebhookSecret::from_stored("whsec_outbound_bench_secret_42".into()),
            token: jwt::sign_for_tests(&claims, JWT_SECRET, "HS256"),
            one_secret: SecretSet::new(WebhookSecret::from_stored(GENERATED.into())),
            six_secrets: {
                let mut set = SecretSet::new(WebhookSecret::from_stored(GENERATED.into()));
                for _ in 0..5 {
                    set.rotate(WebhookSecret::from_stored(GENERATED.into()), 3600, NOW * 1000);
                }
                set
            },
            keys: Keyring::from_config(Some(ENCRYPTION_KEY), None),
            sealed: {
                // A fixed nonce: the wasm cases have no randomness (their imports are stubs).
                let keys = Keyring::from_config(Some(ENCRYPTION_KEY), None);
                let set = SecretSet::new(WebhookSecret::from_stored(GENERATED.into()));
                let enc = keys.seal_with_nonce(set.to_json().as_bytes(), b"wh_bench:secrets", [7; 12]).unwrap_or_default();
                let kid = keys.current().map(|k| k.id().to_string()).ok();
                RowSecrets { secrets_enc: Some(enc), enc_key_id: kid, headers: "{}".into(), ..RowSecrets::default() }
            },
        }
    })
}

/// `whsec_` + base64 of 32 bytes, like a generated secret.
const GENERATED: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=";
const ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Every header of one attempt, as `sender` builds them; returns the header count.
fn sign_attempt(secrets: &SecretSet, body: &[u8]) -> usize {
    let custom = BTreeMap::new();
    let input = DeliveryHeadersInput {
        event_type: "flight.departed", webhook_id: "wh_bench", delivery_id: "dlv_0123456789abcdef01234567",
        attempt_at: NOW * 1000, secrets: Some(secrets), test: false, custom: &custom,
        legacy_signature: true, signing: Signing::Hmac,
    };
    request_headers(&input, body).len()
}

/// One call of case `case`; returns 1 when it succeeded (so the work is observable).
fn call(case: usize) -> u32 {
    let f = fixtures();
    let ok = match case {
        0 => verify_stripe(STRIPE_SECRET, Some(&f.stripe_header), black_box(&f.body_1k), NOW, DEFAULT_TOLERANCE_SECS).is_ok(),
        1 => {
            let h = SvixHeaders { id: Some(&f.svix_id), timestamp: Some(&f.svix_ts), signature: Some(&f.svix_sig) };
            verify_svix(SVIX_SECRET, &h, black_box(&f.body_1k), NOW, DEFAULT_TOLERANCE_SECS).is_ok()
        }
        2 => signature_header(&f.outbound_secret, black_box(&f.body_1k)).len() == 71,
        3 => signature_header(&f.outbound_secret, black_box(&f.body_256k)).len() == 71,
        4 => jwt::verify(black_box(&f.token), JWT_SECRET, NOW).is_ok(),
        5 => check_target_url(black_box("https://hooks.customer.example.com/planeconnection?x=1"), false).is_ok(),
        6 => sign_attempt(&f.one_secret, black_box(&f.body_1k)) == 10,
        7 => sign_attempt(&f.six_secrets, black_box(&f.body_1k)) == 11,
        8 => sign_attempt(&f.one_secret, black_box(&f.body_256k)) == 10,
        9 => sign_attempt(&f.six_secrets, black_box(&f.body_256k)) == 11,
        10 => black_box(&f.sealed).open_secrets(&f.keys, "wh_bench").is_ok_and(|s| s.is_some()),
        _ => false,
    };
    u32::from(ok)
}

/// Runs case `case` `iters` times; returns how many calls succeeded.
pub fn run(case: usize, iters: u32) -> u32 {
    let mut ok = 0u32;
    for _ in 0..iters {
        ok = ok.wrapping_add(black_box(call(case)));
    }
    ok
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use std::time::Instant;
    const ROUNDS: usize = 7;
    for (case, name) in CASES.iter().enumerate() {
        assert_eq!(run(case, 1), 1, "case {name} does not succeed on its fixture");
        // Calibrate: enough calls for a round of ~100 ms.
        let mut iters: u32 = 1;
        loop {
            let t = Instant::now();
            run(case, iters);
            if t.elapsed().as_millis() >= 20 || iters >= 1 << 26 {
                break;
            }
            iters *= 2;
        }
        iters = iters.saturating_mul(5);
        let mut per_call: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                black_box(run(case, iters));
                t.elapsed().as_nanos() as f64 / f64::from(iters)
            })
            .collect();
        per_call.sort_by(f64::total_cmp);
        println!(
            "{{\"case\":\"{name}\",\"ns_per_call\":{:.1},\"iters\":{iters},\"rounds\":{ROUNDS}}}",
            per_call[ROUNDS / 2]
        );
    }
}
