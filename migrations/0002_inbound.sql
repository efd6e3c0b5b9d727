-- Inbound provider webhooks (SPEC section 5): the dedupe record of every provider event, and
-- the billing, Stripe Connect and email state those events change.
-- Times are Unix milliseconds (UTC). `event_version` is the version (core/event_order.rs)
-- of the provider event that last set a row: an older event never overwrites it.

-- One row per provider event ever accepted: (source, event id) makes a redelivery a no-op.
CREATE TABLE inbound_events (
  source       TEXT NOT NULL,               -- stripe | stripe_connect | resend
  event_id     TEXT NOT NULL,               -- Stripe event id, or the svix-id header
  event_type   TEXT NOT NULL,
  outcome      TEXT NOT NULL CHECK (outcome IN ('applied', 'ignored')),
  detail       TEXT,                        -- why an event was ignored
  workspace_id TEXT,
  received_at  INTEGER NOT NULL,
  PRIMARY KEY (source, event_id)
) WITHOUT ROWID;
CREATE INDEX inbound_events_by_received ON inbound_events (received_at);

-- Platform invoices (written by the platform, or created here from a Stripe event that
-- names an unknown invoice) and their payment state.
CREATE TABLE invoices (
  id                         TEXT PRIMARY KEY,
  workspace_id               TEXT NOT NULL,
  status                     TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid')),
  payment_state              TEXT CHECK (payment_state IN ('processing', 'failed', 'succeeded')),
  amount_paid                INTEGER,
  currency                   TEXT,
  paid_at                    INTEGER,
  last_payment_error         TEXT,
  stripe_checkout_session_id TEXT,
  stripe_payment_intent_id   TEXT,
  stripe_customer_id         TEXT,
  -- The open to paid transition publishes invoice.paid: pending until the fan-out stored it.
  paid_event_status          TEXT CHECK (paid_event_status IN ('pending', 'published')),
  paid_event_id              TEXT,
  event_version              INTEGER NOT NULL DEFAULT 0,
  created_at                 INTEGER NOT NULL,
  updated_at                 INTEGER NOT NULL
);
CREATE INDEX invoices_by_payment_intent ON invoices (stripe_payment_intent_id)
  WHERE stripe_payment_intent_id IS NOT NULL;

-- Stripe PaymentIntents seen on the platform endpoint.
CREATE TABLE payments (
  id                 TEXT PRIMARY KEY,       -- pi_...
  workspace_id       TEXT,
  invoice_id         TEXT,
  status             TEXT NOT NULL,
  amount             INTEGER,
  amount_received    INTEGER,
  currency           TEXT,
  stripe_customer_id TEXT,
  latest_charge      TEXT,
  event_version      INTEGER NOT NULL,
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL
);
CREATE INDEX payments_by_invoice ON payments (invoice_id) WHERE invoice_id IS NOT NULL;

-- Stripe customer to workspace, learned from objects carrying both.
CREATE TABLE stripe_customers (
  customer_id  TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  updated_at   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE subscriptions (
  id                   TEXT PRIMARY KEY,     -- sub_...
  workspace_id         TEXT NOT NULL,
  customer_id          TEXT,
  status               TEXT NOT NULL,
  price_id             TEXT,
  product_id           TEXT,
  unit_amount          INTEGER,
  currency             TEXT,
  interval             TEXT,
  quantity             INTEGER,
  cancel_at_period_end INTEGER NOT NULL DEFAULT 0,
  current_period_end   INTEGER,
  canceled_at          INTEGER,
  event_version        INTEGER NOT NULL,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL
);
CREATE INDEX subscriptions_by_workspace ON subscriptions (workspace_id, updated_at DESC);

-- The workspace's billing status, from Stripe invoice.paid / invoice.payment_failed.
CREATE TABLE billing_status (
  workspace_id           TEXT PRIMARY KEY,
  status                 TEXT NOT NULL CHECK (status IN ('ok', 'paid', 'payment_failed')),
  attempt_count          INTEGER,
  next_payment_attempt   INTEGER,
  stripe_invoice_id      TEXT,
  stripe_subscription_id TEXT,
  amount_due             INTEGER,
  amount_paid            INTEGER,
  currency               TEXT,
  event_version          INTEGER NOT NULL,
  updated_at             INTEGER NOT NULL
) WITHOUT ROWID;

-- Stripe Connect accounts (FBOs) and their onboarding status.
CREATE TABLE connected_accounts (
  id                     TEXT PRIMARY KEY,   -- acct_...
  workspace_id           TEXT,               -- unknown until an event names it
  onboarding_status      TEXT NOT NULL CHECK (onboarding_status IN ('pending', 'restricted', 'complete', 'disconnected')),
  charges_enabled        INTEGER NOT NULL DEFAULT 0,
  payouts_enabled        INTEGER NOT NULL DEFAULT 0,
  details_submitted      INTEGER NOT NULL DEFAULT 0,
  requirements           TEXT NOT NULL DEFAULT '{}',  -- JSON
  disconnected_at        INTEGER,
  event_version          INTEGER NOT NULL DEFAULT 0,
  payout_failed          INTEGER NOT NULL DEFAULT 0,
  payout_id              TEXT,
  payout_failure_code    TEXT,
  payout_failure_message TEXT,
  payout_failed_at       INTEGER,
  payout_event_version   INTEGER NOT NULL DEFAULT 0,
  created_at             INTEGER NOT NULL,
  updated_at             INTEGER NOT NULL
);
CREATE INDEX connected_accounts_by_workspace ON connected_accounts (workspace_id, updated_at DESC);

-- Trip payment splits: the payment (with the application fee) and the transfers.
CREATE TABLE trip_payments (
  id                     TEXT PRIMARY KEY,   -- pi_...
  workspace_id           TEXT NOT NULL,
  trip_id                TEXT NOT NULL,
  account_id             TEXT,
  status                 TEXT NOT NULL,
  amount                 INTEGER,
  amount_received        INTEGER,
  application_fee_amount INTEGER,
  currency               TEXT,
  transfer_group         TEXT,
  latest_charge          TEXT,
  event_version          INTEGER NOT NULL,
  created_at             INTEGER NOT NULL,
  updated_at             INTEGER NOT NULL
);
CREATE INDEX trip_payments_by_trip ON trip_payments (workspace_id, trip_id);

CREATE TABLE trip_transfers (
  id                  TEXT PRIMARY KEY,      -- tr_...
  workspace_id        TEXT NOT NULL,
  trip_id             TEXT NOT NULL,
  destination_account TEXT,
  status              TEXT NOT NULL CHECK (status IN ('created', 'partially_reversed', 'reversed')),
  amount              INTEGER NOT NULL,
  amount_reversed     INTEGER NOT NULL,
  currency            TEXT,
  source_transaction  TEXT,
  transfer_group      TEXT,
  event_version       INTEGER NOT NULL,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL
);
CREATE INDEX trip_transfers_by_trip ON trip_transfers (workspace_id, trip_id);

-- Resend email events, one per svix-id.
CREATE TABLE email_events (
  id               TEXT PRIMARY KEY,         -- svix-id
  workspace_id     TEXT NOT NULL,
  email_id         TEXT,
  event_type       TEXT NOT NULL,
  recipients       TEXT NOT NULL,            -- JSON array of addresses
  sender           TEXT,
  subject          TEXT,
  occurred_at      INTEGER NOT NULL,
  email_created_at INTEGER,
  bounce_type      TEXT CHECK (bounce_type IN ('hard', 'soft')),
  tags             TEXT NOT NULL DEFAULT '{}',  -- JSON object
  detail           TEXT NOT NULL DEFAULT '{}',  -- JSON object: bounce, click, open...
  received_at      INTEGER NOT NULL
);
-- Analytics scan a workspace's events by time.
CREATE INDEX email_events_by_time ON email_events (workspace_id, occurred_at);

CREATE TABLE email_suppressions (
  workspace_id  TEXT NOT NULL,
  email         TEXT NOT NULL,              -- normalized address
  reason        TEXT NOT NULL CHECK (reason IN ('hard_bounce', 'complaint', 'suppressed')),
  detail        TEXT,
  email_id      TEXT,
  suppressed_at INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, email)
) WITHOUT ROWID;
CREATE INDEX email_suppressions_by_time ON email_suppressions (workspace_id, suppressed_at DESC);
