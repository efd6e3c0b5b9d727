//! Stripe events (both the platform and the Connect endpoint) parsed into typed values.
//!
//! Only the fields the service acts on are read, each through `core::payload`, so an
//! authentic but odd payload yields `None`s rather than a failure. Handled types become a
//! [`PlatformEvent`] / [`ConnectEvent`]; anything else is `Unhandled` (acknowledged and
//! recorded as ignored). A handled type whose object lacks what it needs is an `Err`
//! with the reason, recorded as ignored too: Stripe would resend the same bytes.

use serde_json::Value;

use crate::core::api::error::ApiError;
use crate::core::inbound::event_order::{version, EventVersion};
use crate::core::inbound::payload::{at, currency, flag, id, id_ref, int, strings, text};

/// The envelope every Stripe event shares.
#[derive(Debug, Clone)]
pub struct StripeEnvelope {
    pub id: String,
    pub event_type: String,
    /// Unix seconds.
    pub created: i64,
    /// Connect events: the connected account the event is about.
    pub account: Option<String>,
    /// `data.object`.
    pub object: Value,
}

impl StripeEnvelope {
    /// The event's order among others (see `core::event_order`).
    pub fn version(&self, ends_something: bool) -> EventVersion {
        version(self.created, ends_something)
    }

    pub fn created_ms(&self) -> i64 {
        self.created.saturating_mul(1000)
    }
}

/// Parses a verified body. Not JSON → `invalid_json`; JSON without an event's `id`,
/// `type` and `created` → `validation_error` (nothing can be recorded without an id).
pub fn parse_envelope(body: &[u8]) -> Result<StripeEnvelope, ApiError> {
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_json(format!("event is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::invalid_json("event must be a JSON object"));
    }
    let event_id = id(&v, &["id"]);
    let event_type = id(&v, &["type"]);
    let created = int(&v, &["created"]);
    let (Some(event_id), Some(event_type), Some(created)) = (event_id.clone(), event_type.clone(), created) else {
        let mut fields = crate::core::api::error::FieldErrors::new();
        for (name, missing) in [("id", event_id.is_none()), ("type", event_type.is_none()), ("created", created.is_none())] {
            if missing {
                fields.insert(name.into(), "is required in a Stripe event".into());
            }
        }
        return Err(ApiError::validation(fields));
    };
    let account = id_ref(&v, &["account"]);
    let object = v.get_mut("data").and_then(|d| d.get_mut("object")).map(Value::take).unwrap_or(Value::Null);
    Ok(StripeEnvelope { id: event_id, event_type, created, account, object })
}

/// Where a Stripe object says it belongs.
fn workspace(obj: &Value) -> Option<String> {
    id(obj, &["metadata", "workspace_id"])
}

/// What a payment signal does to a platform invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoicePayment {
    /// Paid: the invoice becomes `paid` and `invoice.paid` is published (once).
    Succeeded,
    /// Checkout completed with a delayed method (`payment_status: unpaid`): still open.
    Processing,
    /// The delayed payment failed: still open, the failure is recorded.
    Failed,
}

impl InvoicePayment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Processing => "processing",
            Self::Failed => "failed",
        }
    }
}

/// Stripe's fulfilment rule for Checkout: a completed session is paid unless its
/// `payment_status` is `unpaid` (a delayed method such as a bank debit, settled later by
/// `async_payment_succeeded` / `_failed`).
pub fn checkout_payment(event_type: &str, payment_status: Option<&str>) -> Option<InvoicePayment> {
    match (event_type, payment_status) {
        ("checkout.session.completed", Some("paid" | "no_payment_required")) => Some(InvoicePayment::Succeeded),
        ("checkout.session.completed", Some("unpaid")) => Some(InvoicePayment::Processing),
        ("checkout.session.async_payment_succeeded", _) => Some(InvoicePayment::Succeeded),
        ("checkout.session.async_payment_failed", _) => Some(InvoicePayment::Failed),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutSession {
    pub id: String,
    /// The platform invoice: `metadata.invoice_id`, else (payment mode only)
    /// `client_reference_id`.
    pub invoice_id: Option<String>,
    pub workspace_id: Option<String>,
    pub customer: Option<String>,
    pub payment_intent: Option<String>,
    pub payment_status: Option<String>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
}

impl CheckoutSession {
    fn parse(o: &Value) -> Result<Self, String> {
        Ok(CheckoutSession {
            id: id(o, &["id"]).ok_or("checkout session without id")?,
            invoice_id: id(o, &["metadata", "invoice_id"]).or_else(|| {
                // A subscription or setup Checkout pays no platform invoice: its
                // client_reference_id names something else (a user, a cart).
                matches!(id(o, &["mode"]).as_deref(), None | Some("payment"))
                    .then(|| id(o, &["client_reference_id"]))
                    .flatten()
            }),
            workspace_id: workspace(o),
            customer: id_ref(o, &["customer"]),
            payment_intent: id_ref(o, &["payment_intent"]),
            payment_status: id(o, &["payment_status"]),
            amount_total: int(o, &["amount_total"]),
            currency: currency(o, &["currency"]),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PaymentIntent {
    pub id: String,
    pub status: String,
    pub amount: Option<i64>,
    pub amount_received: Option<i64>,
    pub currency: Option<String>,
    pub customer: Option<String>,
    pub workspace_id: Option<String>,
    pub invoice_id: Option<String>,
    /// `metadata.trip_id`, else the `transfer_group` (Connect splits).
    pub trip_id: Option<String>,
    pub application_fee_amount: Option<i64>,
    /// `transfer_data.destination`, else `on_behalf_of`.
    pub destination: Option<String>,
    pub transfer_group: Option<String>,
    pub latest_charge: Option<String>,
}

impl PaymentIntent {
    fn parse(o: &Value) -> Result<Self, String> {
        Ok(PaymentIntent {
            id: id(o, &["id"]).ok_or("payment intent without id")?,
            status: id(o, &["status"]).unwrap_or_else(|| "succeeded".into()),
            amount: int(o, &["amount"]),
            amount_received: int(o, &["amount_received"]),
            currency: currency(o, &["currency"]),
            customer: id_ref(o, &["customer"]),
            workspace_id: workspace(o),
            invoice_id: id(o, &["metadata", "invoice_id"]),
            trip_id: trip_id(o),
            application_fee_amount: int(o, &["application_fee_amount"]),
            destination: id_ref(o, &["transfer_data", "destination"]).or_else(|| id_ref(o, &["on_behalf_of"])),
            transfer_group: id(o, &["transfer_group"]),
            latest_charge: id_ref(o, &["latest_charge"]),
        })
    }
}

fn trip_id(o: &Value) -> Option<String> {
    id(o, &["metadata", "trip_id"]).or_else(|| id(o, &["transfer_group"]))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub id: String,
    pub customer: Option<String>,
    pub workspace_id: Option<String>,
    pub status: String,
    pub price_id: Option<String>,
    pub product_id: Option<String>,
    pub unit_amount: Option<i64>,
    pub currency: Option<String>,
    pub interval: Option<String>,
    pub quantity: Option<i64>,
    pub cancel_at_period_end: bool,
    /// Unix seconds: the latest of the items' periods (Stripe API 2025-03-31 moved it
    /// there), else the legacy top-level field.
    pub current_period_end: Option<i64>,
    pub canceled_at: Option<i64>,
}

impl Subscription {
    fn parse(o: &Value, deleted: bool) -> Result<Self, String> {
        let items: &[Value] = at(o, &["items", "data"]).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let first = items.first();
        let price = |path: &[&str]| first.and_then(|item| id_ref(item, path));
        let status = if deleted { Some("canceled".to_string()) } else { id(o, &["status"]) };
        Ok(Subscription {
            id: id(o, &["id"]).ok_or("subscription without id")?,
            customer: id_ref(o, &["customer"]),
            workspace_id: workspace(o),
            status: status.ok_or("subscription without status")?,
            price_id: price(&["price", "id"]).or_else(|| price(&["plan", "id"])),
            product_id: price(&["price", "product"]),
            unit_amount: first.and_then(|i| int(i, &["price", "unit_amount"])),
            currency: first.and_then(|i| currency(i, &["price", "currency"])).or_else(|| currency(o, &["currency"])),
            interval: first.and_then(|i| id(i, &["price", "recurring", "interval"])),
            quantity: first.and_then(|i| int(i, &["quantity"])),
            cancel_at_period_end: flag(o, &["cancel_at_period_end"]),
            current_period_end: period_end(o, items),
            canceled_at: int(o, &["canceled_at"]).or_else(|| int(o, &["ended_at"])),
        })
    }
}

/// The subscription's current period end: the latest item's, else the top-level field.
pub fn period_end(subscription: &Value, items: &[Value]) -> Option<i64> {
    items
        .iter()
        .filter_map(|item| int(item, &["current_period_end"]))
        .max()
        .or_else(|| int(subscription, &["current_period_end"]))
}

/// A Stripe (subscription) invoice, not a platform invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct StripeInvoice {
    pub id: String,
    pub customer: Option<String>,
    pub subscription: Option<String>,
    pub workspace_id: Option<String>,
    pub attempt_count: Option<i64>,
    /// Unix seconds.
    pub next_payment_attempt: Option<i64>,
    pub amount_due: Option<i64>,
    pub amount_paid: Option<i64>,
    pub currency: Option<String>,
}

impl StripeInvoice {
    fn parse(o: &Value) -> Result<Self, String> {
        Ok(StripeInvoice {
            id: id(o, &["id"]).ok_or("invoice without id")?,
            customer: id_ref(o, &["customer"]),
            subscription: id_ref(o, &["subscription"])
                .or_else(|| id_ref(o, &["parent", "subscription_details", "subscription"])),
            workspace_id: workspace(o)
                .or_else(|| id(o, &["parent", "subscription_details", "metadata", "workspace_id"]))
                .or_else(|| id(o, &["subscription_details", "metadata", "workspace_id"])),
            attempt_count: int(o, &["attempt_count"]),
            next_payment_attempt: int(o, &["next_payment_attempt"]),
            amount_due: int(o, &["amount_due"]),
            amount_paid: int(o, &["amount_paid"]),
            currency: currency(o, &["currency"]),
        })
    }
}

/// Events of `POST /api/webhooks/stripe`.
#[derive(Debug, Clone, PartialEq)]
pub enum PlatformEvent {
    /// `checkout.session.completed` / `.async_payment_succeeded` / `.async_payment_failed`.
    Checkout { session: CheckoutSession, payment: InvoicePayment },
    PaymentIntentSucceeded(PaymentIntent),
    /// `customer.subscription.created` / `.updated`.
    SubscriptionSynced(Subscription),
    SubscriptionDeleted(Subscription),
    InvoicePaid(StripeInvoice),
    InvoicePaymentFailed(StripeInvoice),
    Unhandled,
}

impl PlatformEvent {
    /// `Err(reason)`: a handled type whose object cannot be acted on.
    pub fn from_envelope(e: &StripeEnvelope) -> Result<Self, String> {
        let o = &e.object;
        Ok(match e.event_type.as_str() {
            t @ ("checkout.session.completed"
            | "checkout.session.async_payment_succeeded"
            | "checkout.session.async_payment_failed") => {
                let session = CheckoutSession::parse(o)?;
                let payment = checkout_payment(t, session.payment_status.as_deref()).ok_or_else(|| {
                    format!("unexpected payment_status {:?}", session.payment_status.as_deref().unwrap_or(""))
                })?;
                PlatformEvent::Checkout { session, payment }
            }
            "payment_intent.succeeded" => PlatformEvent::PaymentIntentSucceeded(PaymentIntent::parse(o)?),
            "customer.subscription.created" | "customer.subscription.updated" => {
                PlatformEvent::SubscriptionSynced(Subscription::parse(o, false)?)
            }
            "customer.subscription.deleted" => PlatformEvent::SubscriptionDeleted(Subscription::parse(o, true)?),
            "invoice.paid" => PlatformEvent::InvoicePaid(StripeInvoice::parse(o)?),
            "invoice.payment_failed" => PlatformEvent::InvoicePaymentFailed(StripeInvoice::parse(o)?),
            _ => PlatformEvent::Unhandled,
        })
    }
}

/// A connected account's `requirements`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Requirements {
    pub currently_due: Vec<String>,
    pub past_due: Vec<String>,
    pub eventually_due: Vec<String>,
    pub pending_verification: Vec<String>,
    pub disabled_reason: Option<String>,
    /// Unix seconds.
    pub current_deadline: Option<i64>,
}

/// How many requirement names of each list are kept.
const MAX_REQUIREMENTS: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: String,
    pub workspace_id: Option<String>,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    pub requirements: Requirements,
}

impl Account {
    fn parse(o: &Value, event_account: Option<&str>) -> Result<Self, String> {
        let list = |name: &str| strings(o, &["requirements", name], MAX_REQUIREMENTS);
        Ok(Account {
            id: id(o, &["id"]).or_else(|| event_account.map(str::to_string)).ok_or("account without id")?,
            workspace_id: workspace(o),
            charges_enabled: flag(o, &["charges_enabled"]),
            payouts_enabled: flag(o, &["payouts_enabled"]),
            details_submitted: flag(o, &["details_submitted"]),
            requirements: Requirements {
                currently_due: list("currently_due"),
                past_due: list("past_due"),
                eventually_due: list("eventually_due"),
                pending_verification: list("pending_verification"),
                disabled_reason: id(o, &["requirements", "disabled_reason"]),
                current_deadline: int(o, &["requirements", "current_deadline"]),
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub id: String,
    pub amount: i64,
    pub amount_reversed: i64,
    pub reversed: bool,
    pub currency: Option<String>,
    pub destination: Option<String>,
    pub trip_id: Option<String>,
    pub workspace_id: Option<String>,
    pub transfer_group: Option<String>,
    pub source_transaction: Option<String>,
}

impl Transfer {
    fn parse(o: &Value) -> Result<Self, String> {
        Ok(Transfer {
            id: id(o, &["id"]).ok_or("transfer without id")?,
            amount: int(o, &["amount"]).unwrap_or(0),
            amount_reversed: int(o, &["amount_reversed"]).unwrap_or(0),
            reversed: flag(o, &["reversed"]),
            currency: currency(o, &["currency"]),
            destination: id_ref(o, &["destination"]),
            trip_id: trip_id(o),
            workspace_id: workspace(o),
            transfer_group: id(o, &["transfer_group"]),
            source_transaction: id_ref(o, &["source_transaction"]),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Payout {
    pub id: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
}

impl Payout {
    fn parse(o: &Value) -> Result<Self, String> {
        Ok(Payout {
            id: id(o, &["id"]).ok_or("payout without id")?,
            amount: int(o, &["amount"]),
            currency: currency(o, &["currency"]),
            failure_code: id(o, &["failure_code"]),
            failure_message: text(o, &["failure_message"]),
        })
    }
}

/// Events of `POST /api/webhooks/stripe-connect`.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectEvent {
    AccountUpdated(Account),
    /// `account.application.deauthorized`: the platform lost access to the account.
    Deauthorized { account: String },
    /// A trip payment (split): `payment_intent.succeeded`.
    PaymentSucceeded(PaymentIntent),
    /// `transfer.created` / `transfer.reversed`: the object carries the running totals.
    Transfer(Transfer),
    PayoutFailed { account: String, payout: Payout },
    /// `payout.paid` clears an earlier payout failure flag.
    PayoutPaid { account: String, payout: Payout },
    Unhandled,
}

impl ConnectEvent {
    pub fn from_envelope(e: &StripeEnvelope) -> Result<Self, String> {
        let o = &e.object;
        let account = || e.account.clone().ok_or_else(|| format!("{} without a top-level account", e.event_type));
        Ok(match e.event_type.as_str() {
            "account.updated" => ConnectEvent::AccountUpdated(Account::parse(o, e.account.as_deref())?),
            "account.application.deauthorized" => ConnectEvent::Deauthorized { account: account()? },
            "payment_intent.succeeded" => ConnectEvent::PaymentSucceeded(PaymentIntent::parse(o)?),
            "transfer.created" | "transfer.reversed" => ConnectEvent::Transfer(Transfer::parse(o)?),
            "payout.failed" => ConnectEvent::PayoutFailed { account: account()?, payout: Payout::parse(o)? },
            "payout.paid" => ConnectEvent::PayoutPaid { account: account()?, payout: Payout::parse(o)? },
            _ => ConnectEvent::Unhandled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(v: Value) -> StripeEnvelope {
        parse_envelope(v.to_string().as_bytes()).unwrap()
    }

    fn event(kind: &str, object: Value) -> StripeEnvelope {
        envelope(json!({"id": "evt_1", "object": "event", "type": kind, "created": 1_700_000_000, "data": {"object": object}}))
    }

    #[test]
    fn envelope_needs_id_type_and_created() {
        assert_eq!(parse_envelope(b"nope").unwrap_err().code, "invalid_json");
        assert_eq!(parse_envelope(b"[1]").unwrap_err().code, "invalid_json");
        let e = parse_envelope(br#"{"type":"x"}"#).unwrap_err();
        assert_eq!(e.code, "validation_error");
        let fields = e.fields.unwrap();
        assert!(fields.contains_key("id") && fields.contains_key("created") && !fields.contains_key("type"));
        let ok = envelope(json!({"id": "evt_1", "type": "x", "created": 5, "account": "acct_9"}));
        assert_eq!((ok.account.as_deref(), ok.object.is_null(), ok.created_ms()), (Some("acct_9"), true, 5000));
    }

    #[test]
    fn an_event_orders_by_created_and_an_ending_event_wins_its_second() {
        let e = event("customer.subscription.updated", json!({}));
        assert_eq!(e.version(false), 3_400_000_000);
        assert_eq!(e.version(true), 3_400_000_001);
    }

    #[test]
    fn payment_intents_and_payouts_are_handled() {
        let pi = json!({"id": "pi_1", "amount": 900, "currency": "usd", "metadata": {"invoice_id": "inv_1", "workspace_id": "ws_a"}});
        let PlatformEvent::PaymentIntentSucceeded(p) = PlatformEvent::from_envelope(&event("payment_intent.succeeded", pi)).unwrap() else { panic!() };
        assert_eq!((p.id.as_str(), p.invoice_id.as_deref(), p.amount), ("pi_1", Some("inv_1"), Some(900)));
        let mut paid = event("payout.paid", json!({"id": "po_1", "amount": 5000, "currency": "usd"}));
        paid.account = Some("acct_1".into());
        let ConnectEvent::PayoutPaid { account, payout } = ConnectEvent::from_envelope(&paid).unwrap() else { panic!() };
        assert_eq!((account.as_str(), payout.id.as_str(), payout.amount), ("acct_1", "po_1", Some(5000)));
    }

    #[test]
    fn payment_states_as_stored() {
        // The invoice's `payment_state` (docs/inbound.md).
        assert_eq!(InvoicePayment::Succeeded.as_str(), "succeeded");
        assert_eq!(InvoicePayment::Processing.as_str(), "processing");
        assert_eq!(InvoicePayment::Failed.as_str(), "failed");
    }

    #[test]
    fn the_vector_payload_parses_as_an_unhandled_connect_event() {
        let body = include_str!("../../../vectors/stripe_payload_invoiceitem_created.json");
        let e = parse_envelope(body.as_bytes()).unwrap();
        assert_eq!((e.id.as_str(), e.event_type.as_str(), e.account.as_deref()), ("evt_123", "invoiceitem.created", Some("acct_123")));
        assert_eq!(ConnectEvent::from_envelope(&e), Ok(ConnectEvent::Unhandled));
        assert_eq!(PlatformEvent::from_envelope(&e), Ok(PlatformEvent::Unhandled));
    }

    #[test]
    fn checkout_rules_follow_stripe_fulfilment() {
        use InvoicePayment::*;
        let c = "checkout.session.completed";
        assert_eq!(checkout_payment(c, Some("paid")), Some(Succeeded));
        assert_eq!(checkout_payment(c, Some("no_payment_required")), Some(Succeeded));
        assert_eq!(checkout_payment(c, Some("unpaid")), Some(Processing));
        assert_eq!(checkout_payment(c, Some("weird")), None);
        assert_eq!(checkout_payment(c, None), None);
        assert_eq!(checkout_payment("checkout.session.async_payment_succeeded", Some("paid")), Some(Succeeded));
        assert_eq!(checkout_payment("checkout.session.async_payment_failed", Some("unpaid")), Some(Failed));
        assert_eq!(checkout_payment("checkout.session.expired", Some("unpaid")), None);
    }

    #[test]
    fn checkout_session_names_the_invoice_by_metadata_or_reference() {
        let obj = json!({"id": "cs_1", "object": "checkout.session", "payment_status": "paid", "amount_total": 5000,
            "currency": "usd", "customer": "cus_1", "payment_intent": "pi_1", "client_reference_id": "inv_ref",
            "metadata": {"invoice_id": "inv_1", "workspace_id": "ws_a"}});
        let PlatformEvent::Checkout { session, payment } = PlatformEvent::from_envelope(&event("checkout.session.completed", obj.clone())).unwrap() else { panic!() };
        assert_eq!(payment, InvoicePayment::Succeeded);
        assert_eq!(session.invoice_id.as_deref(), Some("inv_1"));
        assert_eq!((session.amount_total, session.currency.as_deref()), (Some(5000), Some("usd")));
        assert_eq!(session.workspace_id.as_deref(), Some("ws_a"));
        let mut no_meta = obj;
        no_meta["metadata"] = json!({});
        let PlatformEvent::Checkout { session, .. } = PlatformEvent::from_envelope(&event("checkout.session.completed", no_meta.clone())).unwrap() else { panic!() };
        assert_eq!(session.invoice_id.as_deref(), Some("inv_ref"));
        let mut subscription_mode = no_meta.clone();
        subscription_mode["mode"] = json!("subscription");
        let PlatformEvent::Checkout { session, .. } = PlatformEvent::from_envelope(&event("checkout.session.completed", subscription_mode)).unwrap() else { panic!() };
        assert_eq!(session.invoice_id, None);
        assert!(PlatformEvent::from_envelope(&event("checkout.session.completed", json!({"id": "cs_2", "payment_status": "?"}))).is_err());
        assert!(PlatformEvent::from_envelope(&event("checkout.session.completed", json!({"payment_status": "paid"}))).is_err());
    }

    #[test]
    fn subscription_period_end_comes_from_the_items() {
        let obj = json!({"id": "sub_1", "status": "active", "customer": "cus_1", "cancel_at_period_end": true,
            "current_period_end": 100,
            "metadata": {"workspace_id": "ws_a"},
            "items": {"data": [
                {"id": "si_1", "quantity": 2, "current_period_end": 1_800_000_000,
                 "price": {"id": "price_1", "product": "prod_1", "unit_amount": 900, "currency": "usd", "recurring": {"interval": "month"}}},
                {"id": "si_2", "current_period_end": 1_800_000_500, "price": {"id": "price_2"}}]}});
        let PlatformEvent::SubscriptionSynced(s) = PlatformEvent::from_envelope(&event("customer.subscription.updated", obj)).unwrap() else { panic!() };
        assert_eq!(s.current_period_end, Some(1_800_000_500));
        assert_eq!((s.price_id.as_deref(), s.product_id.as_deref(), s.quantity), (Some("price_1"), Some("prod_1"), Some(2)));
        assert_eq!((s.interval.as_deref(), s.unit_amount, s.cancel_at_period_end), (Some("month"), Some(900), true));

        let legacy = json!({"id": "sub_2", "status": "past_due", "current_period_end": 1_700_000_123, "items": {"data": [{"price": {"id": "price_9"}}]}});
        let PlatformEvent::SubscriptionSynced(s) = PlatformEvent::from_envelope(&event("customer.subscription.created", legacy)).unwrap() else { panic!() };
        assert_eq!((s.current_period_end, s.status.as_str()), (Some(1_700_000_123), "past_due"));

        let deleted = json!({"id": "sub_2", "status": "active", "ended_at": 1_700_000_999});
        let PlatformEvent::SubscriptionDeleted(s) = PlatformEvent::from_envelope(&event("customer.subscription.deleted", deleted)).unwrap() else { panic!() };
        assert_eq!((s.status.as_str(), s.canceled_at), ("canceled", Some(1_700_000_999)));
    }

    #[test]
    fn stripe_invoices_find_their_subscription_and_workspace_in_either_api_shape() {
        let new_api = json!({"id": "in_1", "customer": "cus_1", "attempt_count": 2, "next_payment_attempt": 1_700_086_400,
            "amount_due": 900, "amount_paid": 0, "currency": "usd",
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_1", "metadata": {"workspace_id": "ws_a"}}}});
        let PlatformEvent::InvoicePaymentFailed(i) = PlatformEvent::from_envelope(&event("invoice.payment_failed", new_api)).unwrap() else { panic!() };
        assert_eq!((i.subscription.as_deref(), i.workspace_id.as_deref()), (Some("sub_1"), Some("ws_a")));
        assert_eq!((i.attempt_count, i.next_payment_attempt), (Some(2), Some(1_700_086_400)));
        let old_api = json!({"id": "in_2", "subscription": "sub_2", "subscription_details": {"metadata": {"workspace_id": "ws_b"}}});
        let PlatformEvent::InvoicePaid(i) = PlatformEvent::from_envelope(&event("invoice.paid", old_api)).unwrap() else { panic!() };
        assert_eq!((i.subscription.as_deref(), i.workspace_id.as_deref()), (Some("sub_2"), Some("ws_b")));
    }

    #[test]
    fn connect_events() {
        let mut e = event("account.updated", json!({"id": "acct_1", "charges_enabled": true, "payouts_enabled": false,
            "details_submitted": true, "metadata": {"workspace_id": "ws_a"},
            "requirements": {"currently_due": ["external_account"], "past_due": [], "disabled_reason": "requirements.past_due"}}));
        let ConnectEvent::AccountUpdated(a) = ConnectEvent::from_envelope(&e).unwrap() else { panic!() };
        assert_eq!(a.requirements.currently_due, vec!["external_account"]);
        assert_eq!(a.requirements.disabled_reason.as_deref(), Some("requirements.past_due"));

        e.event_type = "account.application.deauthorized".into();
        assert!(ConnectEvent::from_envelope(&e).is_err(), "needs the top-level account");
        e.account = Some("acct_1".into());
        assert_eq!(ConnectEvent::from_envelope(&e), Ok(ConnectEvent::Deauthorized { account: "acct_1".into() }));

        let t = event("transfer.reversed", json!({"id": "tr_1", "amount": 800, "amount_reversed": 800, "reversed": true,
            "destination": "acct_1", "transfer_group": "trip_9", "currency": "usd"}));
        let ConnectEvent::Transfer(t) = ConnectEvent::from_envelope(&t).unwrap() else { panic!() };
        assert_eq!((t.trip_id.as_deref(), t.amount_reversed, t.reversed), (Some("trip_9"), 800, true));

        let pi = event("payment_intent.succeeded", json!({"id": "pi_1", "amount": 1000, "amount_received": 1000,
            "application_fee_amount": 150, "transfer_data": {"destination": "acct_2"}, "metadata": {"trip_id": "trip_1"}}));
        let ConnectEvent::PaymentSucceeded(p) = ConnectEvent::from_envelope(&pi).unwrap() else { panic!() };
        assert_eq!((p.trip_id.as_deref(), p.destination.as_deref(), p.application_fee_amount), (Some("trip_1"), Some("acct_2"), Some(150)));

        let mut payout = event("payout.failed", json!({"id": "po_1", "failure_code": "account_closed", "failure_message": "closed"}));
        assert!(ConnectEvent::from_envelope(&payout).is_err());
        payout.account = Some("acct_1".into());
        let ConnectEvent::PayoutFailed { payout: p, .. } = ConnectEvent::from_envelope(&payout).unwrap() else { panic!() };
        assert_eq!(p.failure_code.as_deref(), Some("account_closed"));
    }

    #[test]
    fn odd_objects_never_panic() {
        for object in [json!(null), json!([]), json!("x"), json!({"id": 5}), json!({"id": "x", "items": {"data": "no"}}),
                       json!({"id": "x", "status": "active", "items": {"data": [null, 1]}})] {
            for kind in ["checkout.session.completed", "payment_intent.succeeded", "customer.subscription.updated",
                         "customer.subscription.deleted", "invoice.paid", "invoice.payment_failed", "account.updated",
                         "transfer.created", "payout.failed", "account.application.deauthorized"] {
                let e = event(kind, object.clone());
                let _ = PlatformEvent::from_envelope(&e);
                let _ = ConnectEvent::from_envelope(&e);
            }
        }
    }
}
