//! Pure rules of the service: everything that can be decided without I/O.
//!
//! Nothing in here imports `worker`, so `cargo test` on the host exercises it.
//! The shell (routes, delivery, inbound, store) feeds it values and acts on its answers.

pub mod auth;
pub mod catalog;
pub mod delivery;
pub mod delivery_log;
pub mod error;
pub mod ids;
pub mod inbound_signature;
pub mod json_body;
pub mod jwt;
pub mod retry;
pub mod routes;
pub mod ssrf;
pub mod time;
pub mod views;
pub mod webhook;
