//! What the read routes of SPEC §5.4 render: the state inbound webhooks changed.
//!
//! Times are stored as Unix milliseconds and rendered as ISO 8601 (UTC) here.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::core::api::error::{ApiError, FieldErrors};
use crate::core::inbound::stripe_events::Requirements;
use crate::core::time::{format_iso, UnixMillis};

fn iso<S: Serializer>(ms: &UnixMillis, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_iso(*ms))
}

fn iso_opt<S: Serializer>(ms: &Option<UnixMillis>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&format_iso(*ms)),
        None => s.serialize_none(),
    }
}

/// `GET /api/v1/invoices/:id`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InvoiceView {
    pub id: String,
    /// `open` | `paid`.
    pub status: String,
    /// The last payment signal: `processing` | `failed` | `succeeded`, or null.
    pub payment_state: Option<String>,
    #[serde(serialize_with = "iso_opt")]
    pub paid_at: Option<UnixMillis>,
    pub amount_paid: Option<i64>,
    pub currency: Option<String>,
    pub last_payment_error: Option<String>,
    pub stripe: StripeRefs,
    #[serde(serialize_with = "iso")]
    pub created_at: UnixMillis,
    #[serde(serialize_with = "iso")]
    pub updated_at: UnixMillis,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StripeRefs {
    pub checkout_session_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub customer_id: Option<String>,
}

/// The `data` of the `invoice.paid` event published when a Stripe payment marks a
/// platform invoice paid.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InvoicePaidData<'a> {
    pub invoice_id: &'a str,
    pub status: &'static str,
    pub amount_paid: Option<i64>,
    pub currency: Option<&'a str>,
    #[serde(serialize_with = "iso_opt")]
    pub paid_at: Option<UnixMillis>,
    pub payment_provider: &'static str,
    pub stripe_checkout_session_id: Option<&'a str>,
    pub stripe_payment_intent_id: Option<&'a str>,
}

/// `GET /api/v1/billing`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BillingView {
    /// `ok` (nothing known or no failure), `paid` (last subscription invoice paid) or
    /// `payment_failed`.
    pub billing_status: String,
    pub attempt_count: Option<i64>,
    #[serde(serialize_with = "iso_opt")]
    pub next_payment_attempt: Option<UnixMillis>,
    pub last_invoice: Option<StripeInvoiceRef>,
    pub subscription: Option<SubscriptionView>,
    #[serde(serialize_with = "iso_opt")]
    pub updated_at: Option<UnixMillis>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StripeInvoiceRef {
    pub id: String,
    pub subscription_id: Option<String>,
    pub amount_due: Option<i64>,
    pub amount_paid: Option<i64>,
    pub currency: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SubscriptionView {
    pub id: String,
    pub status: String,
    pub price_id: Option<String>,
    pub product_id: Option<String>,
    pub unit_amount: Option<i64>,
    pub currency: Option<String>,
    pub interval: Option<String>,
    pub quantity: Option<i64>,
    #[serde(serialize_with = "iso_opt")]
    pub current_period_end: Option<UnixMillis>,
    pub cancel_at_period_end: bool,
    #[serde(serialize_with = "iso_opt")]
    pub canceled_at: Option<UnixMillis>,
    pub customer_id: Option<String>,
    #[serde(serialize_with = "iso")]
    pub updated_at: UnixMillis,
}

/// `GET /api/v1/connect/account`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConnectAccountView {
    pub id: String,
    /// `pending` | `restricted` | `complete` | `disconnected`.
    pub onboarding_status: String,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    pub requirements: RequirementsView,
    pub payout_failed: bool,
    pub payout_failure: Option<PayoutFailureView>,
    #[serde(serialize_with = "iso_opt")]
    pub disconnected_at: Option<UnixMillis>,
    #[serde(serialize_with = "iso")]
    pub updated_at: UnixMillis,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequirementsView {
    pub currently_due: Vec<String>,
    pub past_due: Vec<String>,
    pub eventually_due: Vec<String>,
    pub pending_verification: Vec<String>,
    pub disabled_reason: Option<String>,
    #[serde(serialize_with = "iso_opt")]
    pub current_deadline: Option<UnixMillis>,
}

impl From<Requirements> for RequirementsView {
    fn from(r: Requirements) -> Self {
        RequirementsView {
            currently_due: r.currently_due,
            past_due: r.past_due,
            eventually_due: r.eventually_due,
            pending_verification: r.pending_verification,
            disabled_reason: r.disabled_reason,
            current_deadline: r.current_deadline.map(|s| s.saturating_mul(1000)),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PayoutFailureView {
    pub payout_id: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    #[serde(serialize_with = "iso_opt")]
    pub failed_at: Option<UnixMillis>,
}

/// `GET /api/v1/connect/splits?trip_id=`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SplitsView {
    pub trip_id: String,
    pub payments: Vec<TripPaymentView>,
    pub transfers: Vec<TripTransferView>,
    /// One entry per currency.
    pub totals: Vec<SplitTotals>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TripPaymentView {
    pub payment_intent_id: String,
    pub status: String,
    /// The connected account the payment is split with.
    pub account_id: Option<String>,
    pub amount: Option<i64>,
    pub amount_received: Option<i64>,
    pub application_fee_amount: Option<i64>,
    pub currency: Option<String>,
    pub transfer_group: Option<String>,
    pub latest_charge: Option<String>,
    #[serde(serialize_with = "iso")]
    pub updated_at: UnixMillis,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TripTransferView {
    pub id: String,
    /// `created` | `partially_reversed` | `reversed`.
    pub status: String,
    pub destination_account: Option<String>,
    pub amount: i64,
    pub amount_reversed: i64,
    pub currency: Option<String>,
    pub source_transaction: Option<String>,
    pub transfer_group: Option<String>,
    #[serde(serialize_with = "iso")]
    pub updated_at: UnixMillis,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SplitTotals {
    pub currency: Option<String>,
    pub amount_received: i64,
    pub application_fee_amount: i64,
    pub transferred: i64,
    pub reversed: i64,
    /// `transferred - reversed`.
    pub net_transferred: i64,
}

/// Sums a trip's payments and transfers per currency (ordered by currency code).
pub fn split_totals(payments: &[TripPaymentView], transfers: &[TripTransferView]) -> Vec<SplitTotals> {
    let mut totals: BTreeMap<Option<String>, SplitTotals> = BTreeMap::new();
    let empty = |currency: &Option<String>| SplitTotals {
        currency: currency.clone(), amount_received: 0, application_fee_amount: 0, transferred: 0, reversed: 0,
        net_transferred: 0,
    };
    for p in payments {
        let t = totals.entry(p.currency.clone()).or_insert_with(|| empty(&p.currency));
        t.amount_received = t.amount_received.saturating_add(p.amount_received.unwrap_or(0));
        t.application_fee_amount = t.application_fee_amount.saturating_add(p.application_fee_amount.unwrap_or(0));
    }
    for tr in transfers {
        let t = totals.entry(tr.currency.clone()).or_insert_with(|| empty(&tr.currency));
        t.transferred = t.transferred.saturating_add(tr.amount);
        t.reversed = t.reversed.saturating_add(tr.amount_reversed);
    }
    totals
        .into_values()
        .map(|mut t| {
            t.net_transferred = t.transferred.saturating_sub(t.reversed);
            t
        })
        .collect()
}

/// The `trip_id` query parameter of `GET /api/v1/connect/splits` (required).
pub fn parse_trip_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<String, ApiError> {
    let mut trip = None;
    let mut errors = FieldErrors::new();
    for (key, value) in pairs {
        match key {
            "trip_id" if trip.is_some() => { errors.insert(key.into(), "given more than once".into()); }
            "trip_id" => match crate::core::inbound::payload::clean_id(value) {
                Some(t) => trip = Some(t),
                None => { errors.insert(key.into(), "must be a trip id of 1 to 255 characters".into()); }
            },
            _ => { errors.insert(key.to_string(), "unknown query parameter".into()); }
        }
    }
    if trip.is_none() && !errors.contains_key("trip_id") {
        errors.insert("trip_id".into(), "is required".into());
    }
    match trip {
        Some(t) if errors.is_empty() => Ok(t),
        _ => Err(ApiError::validation(errors)),
    }
}

/// One entry of `GET /api/v1/email/suppressions`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SuppressionView {
    pub email: String,
    /// `hard_bounce` | `complaint` | `suppressed` (the latest reason).
    pub reason: String,
    pub detail: Option<String>,
    /// The email whose event suppressed the address.
    pub email_id: Option<String>,
    #[serde(serialize_with = "iso")]
    pub suppressed_at: UnixMillis,
    #[serde(serialize_with = "iso")]
    pub updated_at: UnixMillis,
}

/// `GET /api/v1/email/suppressions`: the newest [`MAX_SUPPRESSIONS_LISTED`] entries and
/// the list's full size (`total` > `data.len()` says there are more).
#[derive(Debug, Serialize)]
pub struct SuppressionList {
    pub data: Vec<SuppressionView>,
    pub total: u64,
}

pub const MAX_SUPPRESSIONS_LISTED: u32 = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(currency: &str, received: i64, fee: i64) -> TripPaymentView {
        TripPaymentView {
            payment_intent_id: "pi".into(), status: "succeeded".into(), account_id: None, amount: Some(received),
            amount_received: Some(received), application_fee_amount: Some(fee), currency: Some(currency.into()),
            transfer_group: None, latest_charge: None, updated_at: 0,
        }
    }

    fn transfer(currency: &str, amount: i64, reversed: i64) -> TripTransferView {
        TripTransferView {
            id: "tr".into(), status: "created".into(), destination_account: None, amount, amount_reversed: reversed,
            currency: Some(currency.into()), source_transaction: None, transfer_group: None, updated_at: 0,
        }
    }

    #[test]
    fn totals_per_currency() {
        let totals = split_totals(&[payment("usd", 1000, 150), payment("eur", 50, 5)],
                                  &[transfer("usd", 850, 0), transfer("usd", 100, 40)]);
        assert_eq!(totals.len(), 2);
        assert_eq!(totals[0].currency.as_deref(), Some("eur"));
        assert_eq!(totals[1], SplitTotals { currency: Some("usd".into()), amount_received: 1000, application_fee_amount: 150,
                                            transferred: 950, reversed: 40, net_transferred: 910 });
        assert_eq!(totals[0].transferred, 0);
        assert!(split_totals(&[], &[]).is_empty());
    }

    #[test]
    fn times_render_as_iso() {
        let v = serde_json::to_value(PayoutFailureView { payout_id: None, code: None, message: None, failed_at: Some(0) }).unwrap();
        assert_eq!(v["failed_at"], "1970-01-01T00:00:00.000Z");
        let r = RequirementsView::from(Requirements { current_deadline: Some(1), ..Requirements::default() });
        assert_eq!(r.current_deadline, Some(1000));
    }

    #[test]
    fn trip_query() {
        assert_eq!(parse_trip_query([("trip_id", "trip_1")]).unwrap(), "trip_1");
        let missing = parse_trip_query([]).unwrap_err();
        assert_eq!(missing.fields.unwrap().get("trip_id").map(String::as_str), Some("is required"));
        assert!(parse_trip_query([("trip_id", "")]).unwrap_err().fields.unwrap().contains_key("trip_id"));
        let extra = parse_trip_query([("trip_id", "t"), ("x", "1")]).unwrap_err().fields.unwrap();
        assert!(extra.contains_key("x") && !extra.contains_key("trip_id"));
        let twice = parse_trip_query([("trip_id", "a"), ("trip_id", "b")]).unwrap_err().fields.unwrap();
        assert_eq!(twice.get("trip_id").map(String::as_str), Some("given more than once"));
    }
}
