//! Pure rules of the service: everything that can be decided without I/O.
//!
//! Nothing in here imports `worker`, so `cargo test` on the host exercises it.
//! The shell (routes, delivery, inbound, store) feeds it values and acts on its answers.

pub mod auth;
pub mod catalog;
pub mod connect;
pub mod delivery;
pub mod delivery_log;
pub mod email_analytics;
pub mod error;
pub mod event_order;
pub mod ids;
pub mod inbound_signature;
pub mod inbound_views;
pub mod json_body;
pub mod jwt;
pub mod payload;
pub mod resend_events;
pub mod retry;
pub mod routes;
pub mod ssrf;
pub mod stripe_events;
pub mod time;
pub mod views;
pub mod webhook;
