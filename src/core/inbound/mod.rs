//! Webhooks we receive from Stripe, Stripe Connect and Resend: their signature schemes
//! (`signatures`), the events they carry (`stripe_events`, `connect`, `resend_events`),
//! ordering (`event_order`), safe JSON readers (`payload`), email analytics and the
//! read routes' renderings (`views`).

pub mod connect;
pub mod email_analytics;
pub mod event_order;
pub mod payload;
pub mod resend_events;
pub mod signatures;
pub mod stripe_events;
pub mod views;
