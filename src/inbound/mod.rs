//! Inbound provider webhooks (Stripe, Stripe Connect, Resend) and the read routes over
//! the state they change (SPEC §5).

pub mod connect;
pub mod reads;
pub mod resend;
pub mod stripe;
