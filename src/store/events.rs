//! Published events and their fan-out into pending delivery logs (the outbox).
//!
//! Publishing is one D1 batch: store the event (or find the one that holds the same
//! idempotency key), insert one `pending` log per subscribed active webhook with a single
//! `INSERT … SELECT` (ids under one prefix per event), and read back what was created by
//! that prefix; for a direct send, also claim the new deliveries. The queue is fed
//! afterwards.

use serde::Deserialize;
use worker::Result;

use super::deliveries::{claim_statements, read_claim, Claim, ClaimScope, LeaseTerms};
use super::{changes, statement, Db};
use super::schedule::{lane_position_w, scheduled_w, PACED_W, UNPACED_W};
use crate::core::ids::{delivery_id_sql, new_fanout_id_prefix, DELIVERY_RANDOM_SQL, FANOUT_ID_RANGE_END};
use crate::core::outbound::idempotency::same_request;
use crate::core::time::{UnixMillis, MS_PER_DAY};

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    Api,
    Internal,
    Test,
}

impl EventSource {
    fn as_str(self) -> &'static str {
        match self {
            EventSource::Api => "api",
            EventSource::Internal => "internal",
            EventSource::Test => "test",
        }
    }
}

pub struct NewEvent<'a> {
    pub id: &'a str,
    pub workspace: &'a str,
    pub event_type: &'a str,
    pub body: &'a str,
    pub idempotency_key: Option<&'a str>,
    /// `core::outbound::idempotency::fingerprint` of the request, when it has a key.
    pub fingerprint: Option<&'a str>,
    pub source: EventSource,
    pub now: UnixMillis,
}

/// What publishing did: the event that stands (new, or the first with this key).
#[derive(Debug)]
pub struct Published {
    pub event_id: String,
    pub deliveries: u64,
    /// False when an earlier event with the same idempotency key was found.
    pub created: bool,
    /// Logs written by this call, to be enqueued.
    pub new_delivery_ids: Vec<String>,
    /// False when the key was found on an event of another type or data (nothing written).
    pub same_request: bool,
}

#[derive(Deserialize)]
struct StandingEvent {
    id: String,
    deliveries: i64,
    idempotency_fingerprint: Option<String>,
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}

/// Statements in the publish batch (reported by the fan-out's log line).
pub const PUBLISH_STATEMENTS: usize = 6;

/// A direct send's claim, made in the publish batch itself: the new event's deliveries,
/// if at most `max`, leased to `token` (`deliveries::claim_statements`).
pub struct DirectClaim<'a> {
    pub token: &'a str,
    pub max: usize,
    pub lease: &'a LeaseTerms,
}

/// Stores the event and fans it out to subscribed active webhooks, atomically; with
/// `direct`, claims the new deliveries in the same round trip.
pub async fn publish(db: &Db, e: &NewEvent<'_>, direct: Option<&DirectClaim<'_>>) -> Result<(Published, Option<Claim>)> {
    let key_expired_before = e.now - MS_PER_DAY;
    let id_prefix = new_fanout_id_prefix(e.now);
    let mut batch = vec![
        // An API idempotency key is remembered for 24 hours (SPEC §4.4). Keys of internal
        // publishers (e.g. one `invoice.paid` per invoice) are kept while the event is.
        statement(
            db,
            "UPDATE events SET idempotency_key = NULL \
             WHERE workspace_id = ?1 AND idempotency_key = ?2 AND created_at < ?3 AND source = 'api'",
            &[&e.workspace, &e.idempotency_key, &key_expired_before],
        )?,
        statement(
            db,
            "INSERT INTO events (id, workspace_id, type, body, idempotency_key, source, created_at, \
               idempotency_fingerprint) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
            &[&e.id, &e.workspace, &e.event_type, &e.body, &e.idempotency_key, &e.source.as_str(), &e.now,
              &e.fingerprint],
        )?,
        // Run only if the insert above happened (the EXISTS on the new id). Due times stay
        // NULL: a delivery enters the due index only if it has to wait. Webhooks that are
        // not paced first: that insert does not read `delivery_logs`, so SQLite needs no
        // temporary copy of its select (migration 0018).
        fan_out_statement(db, e, &id_prefix, UNPACED_W, "NULL", "")?,
        fan_out_statement(db, e, &id_prefix, PACED_W, &lane_position_w("?3"), "INDEXED BY webhooks_paced")?,
        // What it made: one primary-key range, one row read per log (a `RETURNING` on the
        // insert read two).
        statement(
            db,
            &format!("SELECT id FROM delivery_logs WHERE id > ?1 AND id < ?1 || '{FANOUT_ID_RANGE_END}'"),
            &[&id_prefix],
        )?,
        // A replayed key's event counts its deliveries (made with it: same workspace and
        // time); a new one's are those read back by their prefix.
        statement(
            db,
            "SELECT ev.id, ev.idempotency_fingerprint, CASE WHEN ev.id = ?1 THEN -1 ELSE \
               (SELECT COUNT(*) FROM delivery_logs l INDEXED BY logs_by_workspace WHERE l.workspace_id = ev.workspace_id \
                  AND l.created_at = ev.created_at AND l.event_id = ev.id AND l.redelivery_of IS NULL) END AS deliveries \
             FROM events ev WHERE ev.id = ?1 OR (ev.workspace_id = ?2 AND ev.idempotency_key = ?3) \
             ORDER BY ev.created_at LIMIT 1",
            &[&e.id, &e.workspace, &e.idempotency_key],
        )?,
    ];
    if let Some(d) = direct {
        let scope = ClaimScope::Event { id: e.id, workspace: e.workspace, created_at: e.now, max: d.max };
        batch.extend(claim_statements(db, scope, d.token, e.now, d.lease)?);
    }
    let results = db.batch(batch).await?;
    let claim = match direct {
        Some(_) => Some(read_claim(results.get(PUBLISH_STATEMENTS..).unwrap_or_default())?),
        None => None,
    };
    let created = results.get(1).map(changes).unwrap_or(0) > 0;
    let standing = results
        .get(5)
        .map(|r| r.results::<StandingEvent>())
        .transpose()?
        .and_then(|rows| rows.into_iter().next())
        .ok_or_else(|| worker::Error::RustError("published event not found after insert".into()))?;
    let new_delivery_ids: Vec<String> = match results.get(4) {
        Some(r) if created => r.results::<IdRow>()?.into_iter().map(|r| r.id).collect(),
        _ => Vec::new(),
    };
    let deliveries = if standing.deliveries < 0 { new_delivery_ids.len() as u64 } else { standing.deliveries as u64 };
    let same_request = created || same_request(standing.idempotency_fingerprint.as_deref(), e.fingerprint);
    let published = Published {
        event_id: standing.id,
        deliveries,
        created,
        new_delivery_ids,
        same_request,
    };
    Ok((published, claim))
}

/// A new event's `pending` logs, one per active webhook `w` of its workspace subscribed to
/// its type and matching `which` (paced or not), in `scheduled` position `scheduled`, with
/// ids under `id_prefix`.
fn fan_out_statement(db: &Db, e: &NewEvent<'_>, id_prefix: &str, which: &str, scheduled: &str, index: &str)
    -> Result<worker::D1PreparedStatement> {
    statement(
        db,
        &format!("INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, \
           attempts, max_attempts, created_at, updated_at, scheduled) \
         SELECT ?5 || {DELIVERY_RANDOM_SQL}, w.workspace_id, w.id, ?1, ?2, 'pending', 0, w.retry_count + 1, ?3, ?3, \
           {scheduled} \
         FROM webhooks w {index} \
         WHERE w.workspace_id = ?4 AND {which} AND w.active = 1 \
           AND instr(w.events, json_quote(?2)) > 0 \
           AND EXISTS (SELECT 1 FROM events WHERE id = ?1)"),
        &[&e.id, &e.event_type, &e.now, &e.workspace, &id_prefix],
    )
}

/// One `pending` log (created with its event, at the event's time) per row of webhook `w`
/// and event `ev` the query's `FROM` and `WHERE` name; the ids made are returned.
fn pending_logs_for_events(from_where: &str) -> String {
    format!(
        "INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, \
           status, attempts, max_attempts, created_at, updated_at, scheduled) \
         SELECT {}, w.workspace_id, w.id, ev.id, \
           ev.type, 'pending', 0, w.retry_count + 1, ev.created_at, ev.created_at, {} {from_where} RETURNING id",
        delivery_id_sql("ev.created_at"),
        scheduled_w("ev.created_at")
    )
}

/// Webhook `w` subscribes to event `ev`'s type: its quoted name is in the webhook's JSON
/// array of types (names are `[a-z_.]`: no escapes, and the quotes rule out a prefix). A
/// search in the text instead of `json_each` saves a row read per webhook.
const SUBSCRIBED: &str = "instr(w.events, json_quote(ev.type)) > 0";

/// The fan-out of an event stored earlier in the same batch: one `pending` log per
/// active webhook of its workspace subscribed to its type; nothing when the event is not
/// there (the guarded insert before it did not happen).
pub fn fan_out(db: &Db, event_id: &str) -> Result<worker::D1PreparedStatement> {
    statement(
        db,
        &pending_logs_for_events(&format!(
            "FROM events ev JOIN webhooks w ON w.workspace_id = ev.workspace_id AND w.active = 1 \
             WHERE ev.id = ?1 AND {SUBSCRIBED}"
        )),
        &[&event_id],
    )
}

/// The ids a [`fan_out`] statement returned.
pub fn delivery_ids(result: Option<&worker::D1Result>) -> Result<Vec<String>> {
    Ok(result.map(|r| r.results::<IdRow>()).transpose()?.unwrap_or_default().into_iter().map(|r| r.id).collect())
}

/// A single delivery outside the fan-out: a test event (sent at once, so it is leased
/// from the start) or a redelivery (queued like any other).
pub struct SingleDelivery<'a> {
    pub log_id: &'a str,
    pub workspace: &'a str,
    pub webhook_id: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub max_attempts: u32,
    pub redelivery_of: Option<&'a str>,
    pub leased_until: Option<UnixMillis>,
    /// Who holds the lease (test events are recorded by the request that sends them).
    pub claim_token: Option<&'a str>,
    /// Sent by the test route (rendered `"test": true`).
    pub test: bool,
    pub now: UnixMillis,
}

fn insert_single_statement(db: &Db, d: &SingleDelivery<'_>) -> Result<worker::D1PreparedStatement> {
    let attempts: u32 = if d.leased_until.is_some() { 1 } else { 0 };
    statement(
        db,
        // A test delivery is sent by its request, outside the lane (its rate limit token
        // is reserved there); a redelivery joins its endpoint's lane.
        &format!("INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, \
           max_attempts, lease_until, claim_token, redelivery_of, created_at, updated_at, test, scheduled) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?9, ?10, ?11, ?8, ?8, ?12, \
           CASE WHEN ?12 = 0 THEN (SELECT {} FROM webhooks w WHERE w.id = ?3) END)", scheduled_w("?8")),
        &[&d.log_id, &d.workspace, &d.webhook_id, &d.event_id, &d.event_type, &attempts, &d.max_attempts,
          &d.now, &d.leased_until, &d.claim_token, &d.redelivery_of, &d.test],
    )
}

/// Stores a test event and its one delivery log in one batch.
pub async fn insert_test_delivery(db: &Db, event: &NewEvent<'_>, d: &SingleDelivery<'_>) -> Result<()> {
    db.batch(vec![
        statement(
            db,
            "INSERT INTO events (id, workspace_id, type, body, idempotency_key, source, created_at) \
             VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6)",
            &[&event.id, &event.workspace, &event.event_type, &event.body, &event.source.as_str(), &event.now],
        )?,
        insert_single_statement(db, d)?,
    ])
    .await
    .map(|_| ())
}

/// Stores a redelivery log (the event row already exists, and is kept as long as this
/// log: `last_log_at`).
pub async fn insert_redelivery(db: &Db, d: &SingleDelivery<'_>) -> Result<()> {
    db.batch(vec![
        insert_single_statement(db, d)?,
        statement(db, "UPDATE events SET last_log_at = ?2 WHERE id = ?1", &[&d.event_id, &d.now])?,
    ])
    .await
    .map(|_| ())
}

/// An operational event (SPEC §8.4) to store and fan out, never to the webhook it is about.
#[derive(serde::Serialize)]
pub struct OperationalEvent {
    pub id: String,
    pub workspace: String,
    #[serde(rename = "type")]
    pub event_type: &'static str,
    /// The `data` object's JSON text; `fanout::publish_operational` wraps it in the
    /// envelope (with a fresh `id`) before storing.
    pub body: String,
    /// Makes a retried consumer batch publish the same event once.
    pub key: String,
    /// The webhook the event is about: excluded from the fan-out.
    pub about: String,
}

/// Stores several operational events and fans each out to its workspace's active webhooks
/// subscribed to its type, except the one it is about: one D1 round trip of two
/// statements however many events. Returns the new delivery ids, to be enqueued.
pub async fn publish_operational(db: &Db, events: &[OperationalEvent], now: UnixMillis) -> Result<Vec<String>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let json = serde_json::to_string(events).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let results = db
        .batch(vec![
            // `WHERE true` lets SQLite parse the upsert clause after a SELECT.
            statement(
                db,
                "INSERT INTO events (id, workspace_id, type, body, idempotency_key, source, created_at) \
                 SELECT json_extract(e.value, '$.id'), json_extract(e.value, '$.workspace'), \
                   json_extract(e.value, '$.type'), json_extract(e.value, '$.body'), json_extract(e.value, '$.key'), \
                   'internal', ?2 \
                 FROM json_each(?1) e WHERE true ON CONFLICT DO NOTHING",
                &[&json, &now],
            )?,
            // Only events inserted just now (an event whose key was taken kept its old id).
            statement(
                db,
                &pending_logs_for_events(&format!(
                    "FROM json_each(?1) e \
                     JOIN events ev ON ev.id = json_extract(e.value, '$.id') AND ev.created_at = ?2 \
                     JOIN webhooks w ON w.workspace_id = ev.workspace_id AND w.active = 1 \
                       AND w.id <> json_extract(e.value, '$.about') \
                     WHERE {SUBSCRIBED}"
                )),
                &[&json, &now],
            )?,
        ])
        .await?;
    match results.get(1) {
        Some(r) => Ok(r.results::<IdRow>()?.into_iter().map(|r| r.id).collect()),
        None => Ok(Vec::new()),
    }
}
