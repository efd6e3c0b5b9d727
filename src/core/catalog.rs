//! The catalog of platform event types that outbound webhooks can subscribe to.

use serde::Serialize;

/// One group of related event types, as `GET /api/v1/webhooks/events` lists them.
#[derive(Debug, Serialize)]
pub struct EventGroup {
    pub name: &'static str,
    pub events: &'static [EventDescription],
}

#[derive(Debug, Serialize)]
pub struct EventDescription {
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub description: &'static str,
}

const fn event(event_type: &'static str, description: &'static str) -> EventDescription {
    EventDescription { event_type, description }
}

pub const CATALOG: &[EventGroup] = &[
    EventGroup {
        name: "Reservations",
        events: &[
            event("reservation.created", "New reservation created"),
            event("reservation.updated", "Reservation details updated"),
            event("reservation.cancelled", "Reservation cancelled"),
            event("reservation.checked_in", "Guest checked in"),
            event("reservation.checked_out", "Guest checked out"),
        ],
    },
    EventGroup {
        name: "Billing",
        events: &[
            event("invoice.created", "Invoice generated"),
            event("invoice.paid", "Invoice payment received"),
            event("invoice.overdue", "Invoice past due date"),
        ],
    },
    EventGroup {
        name: "Flights",
        events: &[
            event("flight.scheduled", "Flight scheduled"),
            event("flight.departed", "Flight departed"),
            event("flight.arrived", "Flight arrived"),
            event("flight.cancelled", "Flight cancelled"),
        ],
    },
    EventGroup {
        name: "Maintenance",
        events: &[
            event("maintenance.due", "Maintenance item becoming due"),
            event("maintenance.completed", "Maintenance completed"),
        ],
    },
    EventGroup {
        name: "Customers",
        events: &[
            event("customer.created", "New customer profile created"),
            event("customer.updated", "Customer profile updated"),
        ],
    },
    // Operational events about the webhooks themselves (SPEC §8.4), published by the
    // service only, never to the webhook they are about.
    EventGroup {
        name: "Webhooks",
        events: &[
            event("webhook.disabled", "A webhook was disabled (410 Gone or failing too long)"),
            event("delivery.exhausted", "A delivery failed its last attempt"),
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
    fn parses_only_known_types() {
        assert_eq!(EventType::parse("invoice.paid"), Some(EventType::INVOICE_PAID));
        assert!(EventType::parse("Invoice.Paid").is_none());
        assert!(EventType::parse("invoice.*").is_none());
        assert!(EventType::parse("").is_none());
    }
}
