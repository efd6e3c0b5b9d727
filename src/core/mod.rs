//! Pure rules of the service: everything that can be decided without I/O.
//!
//! Nothing in here imports `worker`, so `cargo test` on the host exercises it.
//! The shell (routes, delivery, inbound, store) feeds it values and acts on its answers.
//!
//! Grouped by domain: `api` (the HTTP edge: tokens, roles, routes, errors, bodies),
//! `outbound` (webhooks we send: configuration, SSRF, signing, retries, logs) and
//! `inbound` (webhooks we receive: provider signatures and events). The leaves every
//! domain shares (catalog, crypto at rest, ids, time) stay here.

pub mod api;
pub mod catalog;
pub mod cursor;
pub mod crypto;
pub mod ids;
pub mod inbound;
pub mod moves;
pub mod outbound;
pub mod shards;
pub mod time;
