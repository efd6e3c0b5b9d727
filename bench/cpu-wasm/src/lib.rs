//! Wasm exports over the cases of `examples/cpu_bench.rs` (timed by `bench/cpu.mjs`).

#[path = "../../../examples/cpu_bench.rs"]
#[allow(dead_code)]
mod cases;

/// Number of cases (their names are `cases::CASES`, in this order).
#[no_mangle]
pub extern "C" fn bench_cases() -> u32 {
    cases::CASES.len() as u32
}

/// Runs case `case` `iters` times; returns the number of successful calls.
#[no_mangle]
pub extern "C" fn bench_run(case: u32, iters: u32) -> u32 {
    cases::run(case as usize, iters)
}

/// One attempt's HMACs in Rust (`SigningPlan::sign`, what the sender did before Web
/// Crypto): a `body_bytes` body, `secrets` signing secrets, `iters` times. Returns the
/// first tag byte (so the work is observable). Timed against Web Crypto by
/// `bench/sign-crossover.mjs`.
#[no_mangle]
pub extern "C" fn bench_sign(body_bytes: u32, secrets: u32, iters: u32) -> u32 {
    use planeconnection_webhooks::core::outbound::delivery::{signing_plan, DeliveryHeadersInput};
    use planeconnection_webhooks::core::outbound::secrets::SecretSet;
    use planeconnection_webhooks::core::outbound::webhook::WebhookSecret;
    const GENERATED: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=";
    let now = 1_780_000_000_000;
    let mut set = SecretSet::new(WebhookSecret::from_stored(GENERATED.into()));
    for _ in 1..secrets {
        set.rotate(WebhookSecret::from_stored(GENERATED.into()), 3600, now);
    }
    let body = vec![b'a'; body_bytes as usize];
    let custom = Default::default();
    let input = DeliveryHeadersInput {
        event_type: "flight.departed", webhook_id: "wh_bench", delivery_id: "dlv_0123456789abcdef01234567",
        attempt_at: now, secrets: Some(&set), test: false, custom: &custom,
        legacy_signature: true, signing: planeconnection_webhooks::core::outbound::asymmetric::Signing::Hmac,
    };
    let mut out = 0u32;
    for _ in 0..iters {
        let plan = signing_plan(&input);
        let tags = plan.sign(std::hint::black_box(&body));
        out = out.wrapping_add(u32::from(tags.hmac[0].0[0]));
    }
    out
}
