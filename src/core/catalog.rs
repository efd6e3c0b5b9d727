//! The catalog of platform event types that outbound webhooks can subscribe to, each
//! with an example `data` object (what a manager's test event carries, SPEC §8.5).

use serde::ser::{Error as _, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// One group of related event types, as `GET /api/v1/webhooks/events` lists them.
#[derive(Debug, Serialize)]
pub struct EventGroup {
    pub name: &'static str,
    pub events: &'static [EventDescription],
}

#[derive(Debug)]
pub struct EventDescription {
    pub event_type: &'static str,
    pub description: &'static str,
    /// JSON text of an example `data` object (a host test checks each one parses).
    pub example: &'static str,
}

const fn event(event_type: &'static str, description: &'static str, example: &'static str) -> EventDescription {
    EventDescription { event_type, description, example }
}

impl Serialize for EventDescription {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Rendered as JSON, not as a string holding JSON.
        let example: &RawValue = serde_json::from_str(self.example).map_err(S::Error::custom)?;
        let mut out = s.serialize_struct("EventDescription", 3)?;
        out.serialize_field("type", self.event_type)?;
        out.serialize_field("description", self.description)?;
        out.serialize_field("example", example)?;
        out.end()
    }
}

pub const CATALOG: &[EventGroup] = &[
    EventGroup {
        name: "Reservations",
        events: &[
            event(
                "reservation.created",
                "New reservation created",
                r#"{"reservation_id":"res_8f2k41","status":"confirmed","customer_id":"cus_4410","aircraft":{"tail_number":"N512PC","type":"Cessna Citation CJ3"},"arrival_at":"2026-12-04T15:30:00Z","departure_at":"2026-12-06T11:00:00Z","services":["hangar","fuel_jet_a","ground_power"],"notes":"Crew of 2, 4 passengers; rental car on arrival"}"#,
            ),
            event(
                "reservation.updated",
                "Reservation details updated",
                r#"{"reservation_id":"res_8f2k41","status":"confirmed","changes":{"arrival_at":{"from":"2026-12-04T15:30:00Z","to":"2026-12-04T17:10:00Z"}},"aircraft":{"tail_number":"N512PC","type":"Cessna Citation CJ3"},"updated_by":"usr_ops_12"}"#,
            ),
            event(
                "reservation.cancelled",
                "Reservation cancelled",
                r#"{"reservation_id":"res_8f2k41","status":"cancelled","cancelled_at":"2026-12-02T09:12:00Z","reason":"Trip postponed by operator","cancellation_fee":{"amount":15000,"currency":"usd"}}"#,
            ),
            event(
                "reservation.checked_in",
                "Guest checked in",
                r#"{"reservation_id":"res_8f2k41","status":"checked_in","checked_in_at":"2026-12-04T17:14:00Z","aircraft":{"tail_number":"N512PC"},"parking_spot":"Ramp B-7","crew_count":2,"passenger_count":4}"#,
            ),
            event(
                "reservation.checked_out",
                "Guest checked out",
                r#"{"reservation_id":"res_8f2k41","status":"checked_out","checked_out_at":"2026-12-06T10:48:00Z","aircraft":{"tail_number":"N512PC"},"fuel_uplift_gallons":310,"invoice_id":"inv_20261206_031"}"#,
            ),
        ],
    },
    EventGroup {
        name: "Billing",
        events: &[
            event(
                "invoice.created",
                "Invoice generated",
                r#"{"invoice_id":"inv_20261206_031","customer_id":"cus_4410","reservation_id":"res_8f2k41","status":"open","currency":"usd","amount_due":284350,"due_date":"2026-12-20","line_items":[{"description":"Jet A fuel, 310 gal","amount":201500},{"description":"Hangar, 2 nights","amount":60000},{"description":"Ramp fee","amount":22850}]}"#,
            ),
            event(
                "invoice.paid",
                "Invoice payment received",
                r#"{"invoice_id":"inv_20261206_031","status":"paid","amount_paid":284350,"currency":"usd","paid_at":"2026-12-06T11:02:00Z","payment_provider":"stripe","stripe_checkout_session_id":"cs_test_a1B2c3D4","stripe_payment_intent_id":"pi_3Qx7Yz8Lk2"}"#,
            ),
            event(
                "invoice.overdue",
                "Invoice past due date",
                r#"{"invoice_id":"inv_20261115_007","customer_id":"cus_3981","status":"open","amount_due":96200,"currency":"usd","due_date":"2026-11-29","days_overdue":3}"#,
            ),
        ],
    },
    EventGroup {
        name: "Flights",
        events: &[
            event(
                "flight.scheduled",
                "Flight scheduled",
                r#"{"flight_id":"flt_77c1","tail_number":"N512PC","callsign":"PCX512","origin":"KTEB","destination":"KAPA","scheduled_departure_at":"2026-12-06T11:00:00Z","scheduled_arrival_at":"2026-12-06T15:45:00Z","passenger_count":4}"#,
            ),
            event(
                "flight.departed",
                "Flight departed",
                r#"{"flight_id":"flt_77c1","tail_number":"N512PC","callsign":"PCX512","origin":"KTEB","destination":"KAPA","departed_at":"2026-12-06T11:06:00Z","fuel_on_board_gallons":560}"#,
            ),
            event(
                "flight.arrived",
                "Flight arrived",
                r#"{"flight_id":"flt_77c1","tail_number":"N512PC","callsign":"PCX512","origin":"KTEB","destination":"KAPA","arrived_at":"2026-12-06T15:38:00Z","block_time_minutes":272}"#,
            ),
            event(
                "flight.cancelled",
                "Flight cancelled",
                r#"{"flight_id":"flt_77c1","tail_number":"N512PC","callsign":"PCX512","origin":"KTEB","destination":"KAPA","cancelled_at":"2026-12-06T08:20:00Z","reason":"Weather below minimums at destination"}"#,
            ),
        ],
    },
    EventGroup {
        name: "Maintenance",
        events: &[
            event(
                "maintenance.due",
                "Maintenance item becoming due",
                r#"{"item_id":"mnt_5521","tail_number":"N512PC","description":"Phase 3 inspection","due_at":"2026-12-20T00:00:00Z","due_hours":1850.0,"current_hours":1832.4,"severity":"upcoming"}"#,
            ),
            event(
                "maintenance.completed",
                "Maintenance completed",
                r#"{"item_id":"mnt_5521","tail_number":"N512PC","description":"Phase 3 inspection","completed_at":"2026-12-18T16:40:00Z","hours_at_completion":1848.9,"technician":"A&P 3318842","work_order":"WO-2026-1142"}"#,
            ),
        ],
    },
    EventGroup {
        name: "Customers",
        events: &[
            event(
                "customer.created",
                "New customer profile created",
                r#"{"customer_id":"cus_4410","name":"Skyline Charter LLC","email":"ops@skylinecharter.example","phone":"+1-303-555-0142","aircraft":["N512PC","N77SK"],"created_at":"2026-11-30T14:05:00Z"}"#,
            ),
            event(
                "customer.updated",
                "Customer profile updated",
                r#"{"customer_id":"cus_4410","name":"Skyline Charter LLC","changes":{"email":{"from":"ops@skylinecharter.example","to":"dispatch@skylinecharter.example"}},"updated_at":"2026-12-01T09:30:00Z"}"#,
            ),
        ],
    },
    // Operational events about the webhooks themselves (SPEC §8.4), published by the
    // service only, never to the webhook they are about.
    EventGroup {
        name: "Webhooks",
        events: &[
            event(
                "webhook.disabled",
                "A webhook was disabled (410 Gone or failing too long)",
                r#"{"webhook_id":"wh_3f9a0c1d2e4b5a6978877665","name":"Dispatch board (KAPA)","url":"https://ops.skylinecharter.example/hooks/planeconnection","reason":"every attempt failed since 2026-11-26T08:00:00.000Z (14 consecutive failures); webhook disabled"}"#,
            ),
            event(
                "delivery.exhausted",
                "A delivery failed its last attempt",
                r#"{"log_id":"dlv_8c1d2e3f4a5b6c7d8e9f0a1b","webhook_id":"wh_3f9a0c1d2e4b5a6978877665","event_id":"evt_5e6f7a8b9c0d1e2f3a4b5c6d","event_type":"flight.departed","attempts":4,"last_error":"receiver answered 503"}"#,
            ),
        ],
    },
];

/// A type that is in the catalog. Only [`EventType::parse`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventType(&'static str);

impl EventType {
    pub const INVOICE_PAID: EventType = EventType("invoice.paid");
    pub const WEBHOOK_DISABLED: EventType = EventType("webhook.disabled");
    pub const DELIVERY_EXHAUSTED: EventType = EventType("delivery.exhausted");

    /// An operational event (the `Webhooks` group): only the service publishes these.
    pub fn is_operational(event_type: &str) -> bool {
        event_type == Self::WEBHOOK_DISABLED.0 || event_type == Self::DELIVERY_EXHAUSTED.0
    }

    pub fn parse(candidate: &str) -> Option<EventType> {
        CATALOG
            .iter()
            .flat_map(|group| group.events.iter())
            .find(|e| e.event_type == candidate)
            .map(|e| EventType(e.event_type))
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The catalog's example `data` for this type, as JSON text.
    pub fn example(self) -> &'static str {
        CATALOG
            .iter()
            .flat_map(|group| group.events.iter())
            .find(|e| e.event_type == self.0)
            .map_or("{}", |e| e.example)
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

pub fn all_types() -> impl Iterator<Item = &'static str> {
    CATALOG.iter().flat_map(|g| g.events.iter()).map(|e| e.event_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_eighteen_types_in_six_groups() {
        assert_eq!(CATALOG.len(), 6);
        assert_eq!(all_types().count(), 18);
        let mut types: Vec<_> = all_types().collect();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), 18, "no duplicates");
        for t in [EventType::WEBHOOK_DISABLED, EventType::DELIVERY_EXHAUSTED] {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert!(EventType::is_operational(t.as_str()));
        }
        assert!(!EventType::is_operational("invoice.paid"));
    }

    #[test]
    fn every_type_has_an_example_data_object() {
        for e in CATALOG.iter().flat_map(|g| g.events.iter()) {
            let v: serde_json::Value = serde_json::from_str(e.example).unwrap_or_else(|err| panic!("{}: {err}", e.event_type));
            assert!(v.as_object().is_some_and(|o| !o.is_empty()), "{}: a non-empty object", e.event_type);
        }
        let rendered = serde_json::to_value(CATALOG).unwrap();
        assert_eq!(rendered[1]["events"][1]["type"], "invoice.paid");
        assert_eq!(rendered[1]["events"][1]["example"]["invoice_id"], "inv_20261206_031");
    }

    #[test]
    fn example_lookup() {
        assert!(EventType::INVOICE_PAID.example().contains("\"amount_paid\""));
    }

    #[test]
    fn parses_only_known_types() {
        assert_eq!(EventType::parse("invoice.paid"), Some(EventType::INVOICE_PAID));
        assert!(EventType::parse("Invoice.Paid").is_none());
        assert!(EventType::parse("invoice.*").is_none());
        assert!(EventType::parse("").is_none());
    }
}
