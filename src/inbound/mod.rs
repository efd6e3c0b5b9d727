//! Inbound provider webhooks (Stripe, Stripe Connect, Resend) and the read routes over
//! the state they change (SPEC §5).
//!
//! Each endpoint: secret configured → raw body (≤ 1 MiB) → signature verified before
//! anything is parsed → event parsed (`core`) → one D1 batch (`store`): the dedupe record
//! first (a duplicate fails it), look-ups as subqueries, the state written → 200. One
//! round trip per event. A storage failure answers 500 so the provider retries; every
//! write is idempotent, so the retry is safe.

pub mod connect;
pub mod invoice_paid;
mod pipeline;
pub mod reads;
pub mod resend;
pub mod stripe;
