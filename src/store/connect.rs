//! Stripe Connect state: connected accounts (onboarding, payout failures) and trip
//! payment splits (payments with their application fee, and transfers).
//!
//! Writers return prepared statements for the inbound handler's batch; each upsert is
//! idempotent and guarded by the event version (`core::event_order`). Payout flags have
//! their own version, so an `account.updated` and a `payout.failed` never hide each other.

use serde::Deserialize;
use worker::{D1PreparedStatement, Result};

use super::inbound_events::WorkspaceOf;
use super::{statement, statement_with, Db};
use crate::core::inbound::connect::{transfer_status, OnboardingStatus};
use crate::core::inbound::event_order::{sql_guard, EventVersion};
use crate::core::inbound::views::{
    split_totals, ConnectAccountView, PayoutFailureView, SplitsView, TripPaymentView, TripTransferView,
};
use crate::core::inbound::stripe_events::{Account, Payout, PaymentIntent, Requirements, Transfer};
use crate::core::time::UnixMillis;

/// Stores an `account.updated` snapshot. The workspace is kept once known.
pub fn upsert_account(
    db: &Db,
    a: &Account,
    status: OnboardingStatus,
    version: EventVersion,
    now: UnixMillis,
) -> Result<D1PreparedStatement> {
    let requirements = serde_json::to_string(&a.requirements).map_err(|e| worker::Error::RustError(e.to_string()))?;
    statement(
        db,
        &format!(
            "INSERT INTO connected_accounts (id, workspace_id, onboarding_status, charges_enabled, payouts_enabled, \
               details_submitted, requirements, disconnected_at, event_version, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9, ?9) \
             ON CONFLICT (id) DO UPDATE SET \
               workspace_id = COALESCE(excluded.workspace_id, connected_accounts.workspace_id), \
               onboarding_status = excluded.onboarding_status, charges_enabled = excluded.charges_enabled, \
               payouts_enabled = excluded.payouts_enabled, details_submitted = excluded.details_submitted, \
               requirements = excluded.requirements, disconnected_at = NULL, \
               event_version = excluded.event_version, updated_at = excluded.updated_at \
             WHERE {}",
            sql_guard("connected_accounts")
        ),
        &[&a.id, &a.workspace_id, &status.as_str(), &a.charges_enabled, &a.payouts_enabled, &a.details_submitted,
          &requirements, &version, &now],
    )
}

/// `account.application.deauthorized`.
pub fn disconnect_account(
    db: &Db,
    account: &str,
    at: UnixMillis,
    version: EventVersion,
    now: UnixMillis,
) -> Result<D1PreparedStatement> {
    statement(
        db,
        &format!(
            "INSERT INTO connected_accounts (id, onboarding_status, disconnected_at, event_version, created_at, updated_at) \
             VALUES (?1, 'disconnected', ?2, ?3, ?4, ?4) \
             ON CONFLICT (id) DO UPDATE SET onboarding_status = 'disconnected', \
               disconnected_at = excluded.disconnected_at, event_version = excluded.event_version, \
               updated_at = excluded.updated_at \
             WHERE {}",
            sql_guard("connected_accounts")
        ),
        &[&account, &at, &version, &now],
    )
}

/// `payout.failed` flags the account (with the payout and Stripe's reason);
/// `payout.paid` (`failed = false`) clears it unless a newer failure set it.
pub fn set_payout_result(
    db: &Db,
    account: &str,
    payout: &Payout,
    failed: bool,
    at: UnixMillis,
    version: EventVersion,
    now: UnixMillis,
) -> Result<D1PreparedStatement> {
    if !failed {
        return statement(
            db,
            "UPDATE connected_accounts SET payout_failed = 0, payout_event_version = ?2, updated_at = ?3 \
             WHERE id = ?1 AND payout_failed = 1 AND payout_event_version <= ?2",
            &[&account, &version, &now],
        );
    }
    statement(
        db,
        "INSERT INTO connected_accounts (id, onboarding_status, payout_failed, payout_id, payout_failure_code, \
           payout_failure_message, payout_failed_at, payout_event_version, created_at, updated_at) \
         VALUES (?1, 'pending', 1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
         ON CONFLICT (id) DO UPDATE SET payout_failed = 1, payout_id = excluded.payout_id, \
           payout_failure_code = excluded.payout_failure_code, payout_failure_message = excluded.payout_failure_message, \
           payout_failed_at = excluded.payout_failed_at, payout_event_version = excluded.payout_event_version, \
           updated_at = excluded.updated_at \
         WHERE excluded.payout_event_version >= connected_accounts.payout_event_version",
        &[&account, &payout.id, &payout.failure_code, &payout.failure_message, &at, &version, &now],
    )
}

/// A trip payment (the charge a split starts from).
pub fn upsert_trip_payment(
    db: &Db,
    p: &PaymentIntent,
    workspace: &WorkspaceOf<'_>,
    trip_id: &str,
    account: Option<&str>,
    version: EventVersion,
    now: UnixMillis,
) -> Result<D1PreparedStatement> {
    let (row, ws_args) = workspace.row(14);
    statement_with(
        db,
        &format!(
            "INSERT INTO trip_payments (id, workspace_id, trip_id, account_id, status, amount, amount_received, \
               application_fee_amount, currency, transfer_group, latest_charge, event_version, created_at, updated_at) \
             SELECT ?1, r.ws, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13 FROM {row} WHERE r.ws IS NOT NULL \
             ON CONFLICT (id) DO UPDATE SET account_id = COALESCE(excluded.account_id, trip_payments.account_id), \
               status = excluded.status, amount = excluded.amount, amount_received = excluded.amount_received, \
               application_fee_amount = excluded.application_fee_amount, currency = excluded.currency, \
               transfer_group = excluded.transfer_group, latest_charge = excluded.latest_charge, \
               event_version = excluded.event_version, updated_at = excluded.updated_at \
             WHERE {}",
            sql_guard("trip_payments")
        ),
        &[&p.id, &None::<&str>, &trip_id, &account, &p.status, &p.amount, &p.amount_received, &p.application_fee_amount,
          &p.currency, &p.transfer_group, &p.latest_charge, &version, &now],
        ws_args,
    )
}

/// A transfer to a connected account, with its running reversal total.
pub fn upsert_transfer(
    db: &Db,
    t: &Transfer,
    workspace: &WorkspaceOf<'_>,
    trip_id: &str,
    version: EventVersion,
    now: UnixMillis,
) -> Result<D1PreparedStatement> {
    let (row, ws_args) = workspace.row(13);
    statement_with(
        db,
        &format!(
            "INSERT INTO trip_transfers (id, workspace_id, trip_id, destination_account, status, amount, \
               amount_reversed, currency, source_transaction, transfer_group, event_version, created_at, updated_at) \
             SELECT ?1, r.ws, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12 FROM {row} WHERE r.ws IS NOT NULL \
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, amount = excluded.amount, \
               amount_reversed = excluded.amount_reversed, currency = excluded.currency, \
               destination_account = COALESCE(excluded.destination_account, trip_transfers.destination_account), \
               source_transaction = COALESCE(excluded.source_transaction, trip_transfers.source_transaction), \
               event_version = excluded.event_version, updated_at = excluded.updated_at \
             WHERE {}",
            sql_guard("trip_transfers")
        ),
        &[&t.id, &None::<&str>, &trip_id, &t.destination, &transfer_status(t.amount, t.amount_reversed, t.reversed),
          &t.amount, &t.amount_reversed, &t.currency, &t.source_transaction, &t.transfer_group, &version, &now],
        ws_args,
    )
}

#[derive(Deserialize)]
struct AccountRow {
    id: String,
    onboarding_status: String,
    charges_enabled: i64,
    payouts_enabled: i64,
    details_submitted: i64,
    requirements: String,
    disconnected_at: Option<i64>,
    payout_failed: i64,
    payout_id: Option<String>,
    payout_failure_code: Option<String>,
    payout_failure_message: Option<String>,
    payout_failed_at: Option<i64>,
    updated_at: i64,
}

/// The workspace's connected account: the latest one still connected, else the latest.
pub async fn account(db: &Db, workspace: &str) -> Result<Option<ConnectAccountView>> {
    let row: Option<AccountRow> = db.first(statement(
        db,
        "SELECT id, onboarding_status, charges_enabled, payouts_enabled, details_submitted, requirements, \
           disconnected_at, payout_failed, payout_id, payout_failure_code, payout_failure_message, payout_failed_at, \
           updated_at \
         FROM connected_accounts WHERE workspace_id = ?1 \
         ORDER BY onboarding_status = 'disconnected' ASC, updated_at DESC LIMIT 1",
        &[&workspace],
    )?).await?;
    Ok(row.map(|r| ConnectAccountView {
        id: r.id,
        onboarding_status: r.onboarding_status,
        charges_enabled: r.charges_enabled != 0,
        payouts_enabled: r.payouts_enabled != 0,
        details_submitted: r.details_submitted != 0,
        requirements: serde_json::from_str::<Requirements>(&r.requirements).unwrap_or_default().into(),
        payout_failed: r.payout_failed != 0,
        payout_failure: (r.payout_failed != 0).then_some(PayoutFailureView {
            payout_id: r.payout_id,
            code: r.payout_failure_code,
            message: r.payout_failure_message,
            failed_at: r.payout_failed_at,
        }),
        disconnected_at: r.disconnected_at,
        updated_at: r.updated_at,
    }))
}

#[derive(Deserialize)]
struct TripPaymentRow {
    id: String,
    status: String,
    account_id: Option<String>,
    amount: Option<i64>,
    amount_received: Option<i64>,
    application_fee_amount: Option<i64>,
    currency: Option<String>,
    transfer_group: Option<String>,
    latest_charge: Option<String>,
    updated_at: i64,
}

#[derive(Deserialize)]
struct TransferRow {
    id: String,
    status: String,
    destination_account: Option<String>,
    amount: i64,
    amount_reversed: i64,
    currency: Option<String>,
    source_transaction: Option<String>,
    transfer_group: Option<String>,
    updated_at: i64,
}

/// A trip's payments and transfers, oldest first, with totals.
pub async fn splits(db: &Db, workspace: &str, trip_id: &str) -> Result<SplitsView> {
    let results = db
        .batch(vec![
            statement(
                db,
                "SELECT id, status, account_id, amount, amount_received, application_fee_amount, currency, \
                   transfer_group, latest_charge, updated_at \
                 FROM trip_payments WHERE workspace_id = ?1 AND trip_id = ?2 ORDER BY created_at, id",
                &[&workspace, &trip_id],
            )?,
            statement(
                db,
                "SELECT id, status, destination_account, amount, amount_reversed, currency, source_transaction, \
                   transfer_group, updated_at \
                 FROM trip_transfers WHERE workspace_id = ?1 AND trip_id = ?2 ORDER BY created_at, id",
                &[&workspace, &trip_id],
            )?,
        ])
        .await?;
    let payments: Vec<TripPaymentView> = results
        .first()
        .map(|r| r.results::<TripPaymentRow>())
        .transpose()?
        .unwrap_or_default()
        .into_iter()
        .map(|p| TripPaymentView {
            payment_intent_id: p.id,
            status: p.status,
            account_id: p.account_id,
            amount: p.amount,
            amount_received: p.amount_received,
            application_fee_amount: p.application_fee_amount,
            currency: p.currency,
            transfer_group: p.transfer_group,
            latest_charge: p.latest_charge,
            updated_at: p.updated_at,
        })
        .collect();
    let transfers: Vec<TripTransferView> = results
        .get(1)
        .map(|r| r.results::<TransferRow>())
        .transpose()?
        .unwrap_or_default()
        .into_iter()
        .map(|t| TripTransferView {
            id: t.id,
            status: t.status,
            destination_account: t.destination_account,
            amount: t.amount,
            amount_reversed: t.amount_reversed,
            currency: t.currency,
            source_transaction: t.source_transaction,
            transfer_group: t.transfer_group,
            updated_at: t.updated_at,
        })
        .collect();
    let totals = split_totals(&payments, &transfers);
    Ok(SplitsView { trip_id: trip_id.to_string(), payments, transfers, totals })
}
