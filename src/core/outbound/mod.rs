//! Webhooks we send: a webhook's configuration (`webhook`), where it may point
//! (`ssrf`), what one delivery looks like and how its outcome is judged (`delivery`),
//! when to try again (`retry`), log filters (`delivery_log`) and renderings (`views`);
//! signing secrets and their rotation (`secrets`), Ed25519 key pairs (`asymmetric`) and how
//! they are kept at rest (`sealed`);
//! endpoint health and the breaker (`health`), recovery windows (`recover`) and stats
//! (`stats`); publish idempotency keys and fingerprints (`idempotency`); consumer leases
//! (`lease`) and how many deliveries a message and an invocation carry (`packing`); an
//! endpoint's rate limit and ordering (`pacing`, `rate_limit`, `fifo`).

pub mod asymmetric;
pub mod delivery;
pub mod delivery_log;
pub mod fifo;
pub mod health;
pub mod idempotency;
pub mod lease;
pub mod masking;
pub mod pacing;
pub mod packing;
pub mod rate_limit;
pub mod recover;
pub mod rollup;
pub mod retry;
pub mod sealed;
pub mod secrets;
pub mod ssrf;
pub mod stats;
pub mod views;
pub mod webhook;
