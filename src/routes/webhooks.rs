//! `/api/v1/webhooks` CRUD, `POST /api/v1/webhooks/:id/test` and
//! `POST /api/v1/webhooks/:id/secret/rotate`. An `ed25519` webhook's credential is a key
//! pair from Web Crypto (`delivery::signing`); only its public key is ever shown.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde_json::{json, Map, Value};
use worker::Request;

use crate::http::{header, json_response, no_content, query_pairs, read_body, ApiResult, OrInternal};
use crate::core::outbound::lease::batch_lease_ms;
use crate::http::Ctx;
use crate::core::api::auth::{Principal, Role};
use crate::core::catalog::EventType;
use crate::core::crypto::KeyError;
use crate::core::outbound::sealed::{self, SealedColumns};
use crate::core::outbound::secrets::{self, parse_rotate, SecretSet};
use crate::core::time::format_iso;
use crate::core::outbound::delivery::{envelope, judge_attempt, latest_attempt_headers, NextStep};
use crate::core::outbound::delivery_log::{LogFilter, DeliveryStatus};
use crate::core::api::error::{ApiError, FieldErrors};
use crate::core::ids::{looks_like_id, new_delivery_id, new_id, random_unit, EVENT_PREFIX, WEBHOOK_PREFIX};
use crate::core::api::json_body::{parse_object, reject_unknown_fields, require_object, type_name, MAX_MANAGEMENT_BODY};
use crate::core::cursor::parse_page_request;
use crate::core::outbound::masking::Viewer;
use crate::core::outbound::views::{log_views_for, next_cursor, parse_payload, LogDetailView, Reader, WebhookPage, WebhookView};
use crate::core::outbound::webhook::{parse_create, parse_patch, NewWebhook, SecretStatus, StoredWebhook, WebhookSecret};
use crate::core::outbound::asymmetric::Signing;
use crate::delivery::dispatch::outcome;
use crate::delivery::{lanes, log_event, now_ms, sender, signing};
use crate::store::events::{EventSource, NewEvent, SingleDelivery};
use crate::store::deliveries::ClaimedDelivery;
use crate::store::webhooks::{UserChange, WebhookRecord, Writer};
use crate::store::{deliveries, events, logs, schedule, webhooks};

const RECENT_LOGS: u32 = 20;

/// Loads a webhook of the caller's workspace; another workspace's id is a plain 404.
pub async fn find(ctx: &Ctx<'_>, p: &Principal, id: &str) -> Result<StoredWebhook, ApiError> {
    find_record(ctx, p, id).await.map(|r| r.webhook)
}

/// `find` with the webhook's at-rest secret columns.
async fn find_record(ctx: &Ctx<'_>, p: &Principal, id: &str) -> Result<WebhookRecord, ApiError> {
    if !looks_like_id(id, WEBHOOK_PREFIX) {
        return Err(ApiError::not_found("webhook"));
    }
    webhooks::get(&ctx.db, &p.workspace_id, id, &ctx.config.keys)
        .await
        .or_internal("load webhook")?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

/// A write that must seal without a usable key answers 500; the reason is logged once
/// per isolate (not once per request), and nothing is stored in clear.
fn key_unavailable(e: KeyError) -> ApiError {
    static LOGGED: AtomicBool = AtomicBool::new(false);
    if !LOGGED.swap(true, Ordering::Relaxed) {
        log_event(json!({"level": "error", "msg": "cannot store webhook secrets", "reason": e.to_string()}));
    }
    ApiError::internal()
}

fn seal(ctx: &Ctx<'_>, id: &str, set: &SecretSet, headers: &std::collections::BTreeMap<String, String>) -> Result<SealedColumns, ApiError> {
    sealed::seal(&ctx.config.keys, id, set, headers).map_err(key_unavailable)
}

/// The secrets of a loaded webhook; a legacy row without any gets a generated one. A row
/// whose secrets do not open can only be repaired by a rotation (409 otherwise).
fn open_secrets(ctx: &Ctx<'_>, record: &WebhookRecord) -> Result<SecretSet, ApiError> {
    match record.at_rest.open_secrets(&ctx.config.keys, &record.webhook.id) {
        Ok(Some(set)) => Ok(set),
        Ok(None) => Ok(SecretSet::new(secrets::generate())),
        Err(e) => {
            log_event(json!({"level": "error", "msg": "webhook secrets do not open", "webhook": record.webhook.id,
                             "error": e.to_string()}));
            // Without a key nothing could be sealed again either: the deployment, not the row, is broken.
            ctx.config.keys.current().map_err(key_unavailable)?;
            Err(ApiError::conflict(
                "the webhook's sealed secrets cannot be decrypted; rotate its secret \
                 (POST /api/v1/webhooks/{id}/secret/rotate) to repair it",
            ))
        }
    }
}

/// A new credential of the scheme: the caller's secret or a generated `whsec_` one, or a
/// key pair from Web Crypto (`whsk_`, sealed; its public key is in the sealed columns).
async fn new_credential(scheme: Signing, given: Option<WebhookSecret>) -> Result<WebhookSecret, ApiError> {
    match scheme {
        Signing::Hmac => Ok(given.unwrap_or_else(secrets::generate)),
        Signing::Ed25519 => signing::generate_key_pair().await.map(|pair| pair.to_secret()).map_err(|e| {
            log_event(json!({"level": "error", "msg": "Ed25519 key generation failed", "error": format!("{e:?}")}));
            ApiError::internal()
        }),
    }
}

/// The secret to show once: an HMAC secret the server made or was given, never a private key.
fn shown_once(scheme: Signing, set: &SecretSet) -> Option<&str> {
    (scheme == Signing::Hmac).then(|| set.current.expose())
}

async fn body_object(req: &mut Request) -> Result<Map<String, Value>, ApiError> {
    let bytes = read_body(req, MAX_MANAGEMENT_BODY).await?;
    require_object(header(req, "Content-Type").as_deref(), &bytes, MAX_MANAGEMENT_BODY)
}

/// One page of the workspace's webhooks, newest first (`limit`, `cursor`).
pub async fn list(ctx: &Ctx<'_>, req: &Request, p: &Principal) -> ApiResult {
    let pairs = query_pairs(req);
    let page = parse_page_request(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let mut rows = webhooks::list(&ctx.db, &p.workspace_id, &ctx.config.keys, page.limit, page.cursor.as_ref())
        .await
        .or_internal("list webhooks")?;
    let more = rows.len() > page.limit as usize;
    rows.truncate(page.limit as usize);
    let next_cursor = more.then(|| rows.last()).flatten().map(|w| next_cursor(w.created_at, &w.id));
    json_response(200, &WebhookPage { data: rows.iter().map(|w| WebhookView::new(w, Viewer::of(p.role))).collect(), next_cursor })
}

pub async fn get(ctx: &Ctx<'_>, p: &Principal, id: &str) -> ApiResult {
    let webhook = find(ctx, p, id).await?;
    let filter = LogFilter { webhook_id: Some(webhook.id.clone()), limit: RECENT_LOGS, ..LogFilter::default() };
    let recent = logs::page(&ctx.db, &p.workspace_id, &filter).await.or_internal("recent logs")?;
    let viewer = Viewer::of(p.role);
    let mut view = WebhookView::new(&webhook, viewer);
    view.recent_logs = Some(log_views_for(&recent, Reader { custom: &webhook.config.headers, viewer }));
    json_response(200, &view)
}

pub async fn create(ctx: &Ctx<'_>, req: &mut Request, p: &Principal) -> ApiResult {
    let body = body_object(req).await?;
    let NewWebhook { config, secret } = parse_create(&body, ctx.config.allow_private_targets).map_err(ApiError::validation)?;
    let id = new_id(WEBHOOK_PREFIX);
    let set = SecretSet::new(new_credential(config.signing, secret).await?);
    let sealed = seal(ctx, &id, &set, &config.headers)?;
    let max_webhooks = ctx.config.max_webhooks_per_workspace;
    let by = Writer { user: p.user_id.as_deref(), max_webhooks };
    let inserted = webhooks::insert(&ctx.db, &p.workspace_id, &id, &config, &sealed, &by, ctx.now)
        .await
        .or_internal("insert webhook")?;
    if !inserted {
        return Err(ApiError::conflict(format!(
            "this workspace already has the maximum of {max_webhooks} webhooks; delete one first"
        )));
    }
    let created = StoredWebhook {
        id, config, secret_hint: Some(sealed.secret_hint), disabled_reason: None,
        created_by: p.user_id.clone(), updated_by: p.user_id.clone(), created_at: ctx.now, updated_at: ctx.now,
        health: Default::default(), secret_status: SecretStatus::Ok, public_key: sealed.public_key.clone(),
    };
    let mut view = WebhookView::new(&created, Viewer::of(p.role));
    // Shown once, here; no later response carries it.
    view.secret = shown_once(created.config.signing, &set);
    json_response(201, &view)
}

pub async fn update(ctx: &Ctx<'_>, req: &mut Request, p: &Principal, id: &str) -> ApiResult {
    let record = find_record(ctx, p, id).await?;
    let body = body_object(req).await?;
    let mut patch = parse_patch(&body, ctx.config.allow_private_targets, &record.webhook.config)
        .map_err(ApiError::validation)?;
    let reactivated = patch.active == Some(true);
    let new_secret = patch.secret.take();
    // Another scheme: a new credential of its kind replaces every current one at once.
    let scheme_changed = patch.signing.is_some_and(|s| s != record.webhook.config.signing);
    // Sealed columns are rewritten when what they hold changes, and a legacy row is
    // sealed on its first write when a key is configured (otherwise it stays as it is).
    let reseal = new_secret.is_some()
        || scheme_changed
        || patch.headers.is_some()
        || (record.at_rest.is_legacy() && ctx.config.keys.current().is_ok());
    let existing = record.webhook.clone();
    let was_scheduled = existing.config.pacing.is_scheduled();
    let config = existing.config.apply(patch);
    let mut generated = None;
    let sealed = if reseal {
        let set = if scheme_changed {
            let set = SecretSet::new(new_credential(config.signing, new_secret).await?);
            generated = shown_once(config.signing, &set).map(str::to_string);
            set
        } else {
            let mut set = open_secrets(ctx, &record)?;
            if let Some(secret) = new_secret {
                set.replace(secret, ctx.now);
            }
            set.prune(ctx.now);
            set
        };
        Some(seal(ctx, id, &set, &config.headers)?)
    } else {
        None
    };
    let at_rest = sealed.as_ref().map(|s| (&record.at_rest, s));
    let written = webhooks::update(&ctx.db, &p.workspace_id, id, &config, at_rest, reactivated, p.user_id.as_deref(), ctx.now)
        .await
        .or_internal("update webhook")?;
    match (written, &sealed) {
        (true, _) => {}
        (false, None) => return Err(ApiError::not_found("webhook")),
        (false, Some(_)) => return Err(ApiError::conflict("the webhook changed meanwhile; retry")),
    }
    let sealed_written = sealed.is_some();
    // A webhook that becomes scheduled takes its pending deliveries into its lane.
    if config.pacing.is_scheduled() && !was_scheduled {
        schedule::adopt_pending(&ctx.db, id).await.or_internal("adopt pending deliveries")?;
    }
    let disabled_reason = if reactivated || config.active { None } else { existing.disabled_reason };
    let public_key = match &sealed {
        Some(s) => s.public_key.clone(),
        None => existing.public_key,
    };
    let secret_hint = sealed.map(|s| s.secret_hint).or(existing.secret_hint);
    // `active: true` starts the webhook's health afresh (SPEC §8.4).
    let health = if reactivated { Default::default() } else { existing.health };
    let updated = StoredWebhook {
        id: existing.id, config, secret_hint, disabled_reason, created_by: existing.created_by,
        updated_by: p.user_id.clone(), created_at: existing.created_at, updated_at: ctx.now, health,
        secret_status: if sealed_written { SecretStatus::Ok } else { existing.secret_status }, public_key,
    };
    let mut view = WebhookView::new(&updated, Viewer::of(p.role));
    // A switch to `hmac` made a secret: shown once, here.
    view.secret = generated.as_deref();
    json_response(200, &view)
}

#[derive(Serialize)]
struct Rotated<'a> {
    /// An `hmac` webhook's new secret, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
    /// An `ed25519` webhook's new public key.
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<&'a str>,
    previous_expires_at: Option<String>,
}

/// `POST /api/v1/webhooks/:id/secret/rotate`: the new secret (given or generated), or a
/// new key pair for an `ed25519` webhook, signs at once; the previous one keeps signing
/// for `grace_seconds`.
pub async fn rotate_secret(ctx: &Ctx<'_>, req: &mut Request, p: &Principal, id: &str) -> ApiResult {
    let record = find_record(ctx, p, id).await?;
    let bytes = read_body(req, MAX_MANAGEMENT_BODY).await?;
    let body = parse_object(header(req, "Content-Type").as_deref(), &bytes, MAX_MANAGEMENT_BODY)?;
    let scheme = record.webhook.config.signing;
    let request = parse_rotate(body.as_ref(), scheme).map_err(ApiError::validation)?;
    let legacy_without_secret = record.at_rest.is_legacy() && record.at_rest.secret.is_none();
    // A row whose sealed values do not open starts afresh: the new secret alone, and the
    // header values that did open (those that did not are dropped; see `secret_status`).
    let undecryptable = record.webhook.secret_status == SecretStatus::Undecryptable;
    let new_secret = new_credential(scheme, request.secret).await?;
    let mut set = if undecryptable { SecretSet::new(new_secret.clone()) } else { open_secrets(ctx, &record)? };
    if undecryptable {
        log_event(json!({"level": "warn", "msg": "undecryptable webhook repaired by rotation", "webhook": id}));
    }
    let expires_at = if legacy_without_secret || undecryptable {
        // Nothing signed before: there is no previous secret to keep.
        set.replace(new_secret, ctx.now);
        None
    } else {
        Some(set.rotate(new_secret, request.grace_seconds, ctx.now))
    };
    let sealed = seal(ctx, id, &set, &record.webhook.config.headers)?;
    let change = UserChange { at: ctx.now, by: p.user_id.as_deref() };
    let written = webhooks::replace_sealed(&ctx.db, id, &record.at_rest, &sealed, Some(change))
        .await
        .or_internal("rotate secret")?;
    if !written {
        return Err(ApiError::conflict("the webhook's secrets changed meanwhile; retry the rotation"));
    }
    log_event(json!({"msg": "secret rotated", "webhook": id, "grace_seconds": request.grace_seconds}));
    let rotated = Rotated {
        secret: shown_once(scheme, &set),
        public_key: sealed.public_key.as_deref(),
        previous_expires_at: expires_at.map(format_iso),
    };
    json_response(200, &rotated)
}

pub async fn delete(ctx: &Ctx<'_>, p: &Principal, id: &str) -> ApiResult {
    if !looks_like_id(id, WEBHOOK_PREFIX) {
        return Err(ApiError::not_found("webhook"));
    }
    match webhooks::delete(&ctx.db, &p.workspace_id, id).await.or_internal("delete webhook")? {
        true => no_content(),
        false => Err(ApiError::not_found("webhook")),
    }
}

/// `{"event_type"?, "payload"?}` of a test request.
struct TestRequest {
    event_type: EventType,
    payload_json: String,
}

/// The event type must be one the webhook subscribes to (default: its first); a custom
/// payload is for admins only, everyone else's test carries the catalog's example.
fn parse_test_request(body: Option<Map<String, Value>>, webhook: &StoredWebhook, role: Role) -> Result<TestRequest, ApiError> {
    let body = body.unwrap_or_default();
    let mut errors = FieldErrors::new();
    reject_unknown_fields(&body, &["event_type", "payload"], &mut errors);
    let subscribed = &webhook.config.events;
    let event_type = match body.get("event_type") {
        None | Some(Value::Null) => subscribed.first().copied(),
        Some(Value::String(s)) => match EventType::parse(s) {
            Some(t) if subscribed.contains(&t) => Some(t),
            Some(_) => {
                let names: Vec<&str> = subscribed.iter().map(|t| t.as_str()).collect();
                errors.insert("event_type".into(), format!("the webhook does not subscribe to {s:?}; it subscribes to {}", names.join(", ")));
                None
            }
            None => {
                errors.insert("event_type".into(), format!("unknown event type {s:?}"));
                None
            }
        },
        Some(other) => {
            errors.insert("event_type".into(), format!("must be a string, not {}", type_name(other)));
            None
        }
    };
    let payload_json = match body.get("payload") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.to_string()),
        Some(other) => {
            errors.insert("payload".into(), format!("must be an object, not {}", type_name(other)));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if payload_json.is_some() && role != Role::Admin {
        return Err(ApiError::forbidden_because(
            "only admins may send a custom payload; leave `payload` out to send the catalog's example",
        ));
    }
    let event_type = event_type.ok_or_else(|| ApiError::field("event_type", "the webhook has no event types; name one"))?;
    let payload_json = payload_json.unwrap_or_else(|| event_type.example().to_string());
    Ok(TestRequest { event_type, payload_json })
}

#[derive(Serialize)]
struct TestResult<'a> {
    #[serde(flatten)]
    log: LogDetailView<'a>,
    success: bool,
}

/// Sends one signed delivery now (no retries, also to an inactive webhook) and returns
/// its log entry. A test never disables the webhook, whatever the receiver answers.
pub async fn test(ctx: &Ctx<'_>, req: &mut Request, p: &Principal, id: &str) -> ApiResult {
    let record = find_record(ctx, p, id).await?;
    let webhook = &record.webhook;
    let bytes = read_body(req, MAX_MANAGEMENT_BODY).await?;
    let body = parse_object(header(req, "Content-Type").as_deref(), &bytes, MAX_MANAGEMENT_BODY)?;
    let test = parse_test_request(body, webhook, p.role)?;

    let event_id = new_id(EVENT_PREFIX);
    let log_id = new_delivery_id(ctx.now);
    let event_body = envelope(&event_id, test.event_type, ctx.now, &test.payload_json);
    let event = NewEvent {
        id: &event_id, workspace: &p.workspace_id, event_type: test.event_type.as_str(), body: &event_body,
        idempotency_key: None, fingerprint: None, source: EventSource::Test, now: ctx.now,
    };
    // Leased and claimed from the start: the cron leaves it alone while this request sends
    // it, and everything the send needs is already in hand (no reload from D1).
    let lease = ctx.now + batch_lease_ms(1, 1, webhook.config.timeout_ms, ctx.config.lease_margin_ms);
    let token = new_id("clm_");
    let single = SingleDelivery {
        log_id: &log_id, workspace: &p.workspace_id, webhook_id: &webhook.id, event_id: &event_id,
        event_type: test.event_type.as_str(), max_attempts: 1, redelivery_of: None, leased_until: Some(lease),
        claim_token: Some(&token), test: true, now: ctx.now,
    };
    events::insert_test_delivery(&ctx.db, &event, &single).await.or_internal("insert test delivery")?;
    let claimed = ClaimedDelivery {
        log_id: log_id.clone(),
        webhook_id: webhook.id.clone(),
        event_type: test.event_type.as_str().to_string(),
        attempt: 1,
        max_attempts: 1,
        url: webhook.config.url.clone(),
        at_rest: record.at_rest.clone(),
        timeout_ms: webhook.config.timeout_ms,
        test: true,
        legacy_signature: webhook.config.legacy_signature,
        signing: webhook.config.signing,
        scheduled: false,
        body: Rc::from(event_body.as_str()),
    };
    // A test delivery counts against the rate limit (SPEC §9.3): it takes its token.
    if let Some(rate) = webhook.config.pacing.rate_limit_per_second {
        match lanes::reserve(ctx.env, &ctx.shard, &webhook.id, rate).await {
            Ok(at) => lanes::sleep_until(at).await,
            Err(e) => log_event(json!({"level": "warn", "msg": "test delivery sent without a rate-limit token",
                                       "webhook": webhook.id, "error": e.to_string()})),
        }
    }
    let report = sender::send(&claimed, ctx.config.allow_private_targets, &ctx.config.keys).await;
    let finished = now_ms();
    let step = match judge_attempt(&report.result, 1, 1, &ctx.config.retry_schedule, finished, random_unit()) {
        NextStep::Succeeded => NextStep::Succeeded,
        _ => NextStep::GiveUp,
    };
    let result = outcome(&claimed, &report, step, finished);
    deliveries::record(&ctx.db, &token, std::slice::from_ref(&result), finished).await.or_internal("record test delivery")?;
    let log = logs::get(&ctx.db, &p.workspace_id, &log_id).await.or_internal("read test log")?.ok_or_else(ApiError::internal)?;
    let success = log.status == DeliveryStatus::Success;
    let headers = latest_attempt_headers(&log, &webhook);
    let reader = Reader { custom: &webhook.config.headers, viewer: Viewer::of(p.role) };
    json_response(200, &TestResult { log: LogDetailView::new(&log, parse_payload(&log), &headers, reader), success })
}

