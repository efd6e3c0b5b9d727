//! Stripe Connect rules: a connected account's onboarding status and a transfer's state.

use crate::core::inbound::stripe_events::Account;

/// Where an FBO stands in Connect onboarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnboardingStatus {
    /// Onboarding not finished: Stripe has not received the account's details yet.
    Pending,
    /// Details submitted, but Stripe needs more (requirements currently or past due) or
    /// has not enabled both charges and payouts.
    Restricted,
    /// Charges and payouts enabled, details submitted, nothing due.
    Complete,
    /// The account deauthorized the platform (`account.application.deauthorized`).
    Disconnected,
}

impl OnboardingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Restricted => "restricted",
            Self::Complete => "complete",
            Self::Disconnected => "disconnected",
        }
    }
}

/// The onboarding status an `account.updated` snapshot implies.
pub fn onboarding_status(a: &Account) -> OnboardingStatus {
    let r = &a.requirements;
    if !a.details_submitted {
        OnboardingStatus::Pending
    } else if a.charges_enabled && a.payouts_enabled && r.currently_due.is_empty() && r.past_due.is_empty() {
        OnboardingStatus::Complete
    } else {
        OnboardingStatus::Restricted
    }
}

/// `created` (nothing reversed), `partially_reversed` or `reversed`.
pub fn transfer_status(amount: i64, amount_reversed: i64, reversed: bool) -> &'static str {
    if reversed || (amount_reversed > 0 && amount_reversed >= amount) {
        "reversed"
    } else if amount_reversed > 0 {
        "partially_reversed"
    } else {
        "created"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::inbound::stripe_events::Requirements;

    fn account(charges: bool, payouts: bool, submitted: bool, due: &[&str], past: &[&str]) -> Account {
        Account {
            id: "acct_1".into(),
            workspace_id: None,
            charges_enabled: charges,
            payouts_enabled: payouts,
            details_submitted: submitted,
            requirements: Requirements {
                currently_due: due.iter().map(|s| s.to_string()).collect(),
                past_due: past.iter().map(|s| s.to_string()).collect(),
                ..Requirements::default()
            },
        }
    }

    #[test]
    fn onboarding_statuses() {
        use OnboardingStatus::*;
        assert_eq!(onboarding_status(&account(false, false, false, &["business_type"], &["business_type"])), Pending);
        assert_eq!(onboarding_status(&account(true, true, true, &[], &[])), Complete);
        assert_eq!(onboarding_status(&account(true, false, true, &[], &[])), Restricted);
        assert_eq!(onboarding_status(&account(true, true, true, &["external_account"], &[])), Restricted);
        assert_eq!(onboarding_status(&account(true, true, true, &[], &["tos_acceptance.date"])), Restricted);
        assert_eq!(Disconnected.as_str(), "disconnected");
    }

    #[test]
    fn transfer_statuses() {
        assert_eq!(transfer_status(800, 0, false), "created");
        assert_eq!(transfer_status(800, 300, false), "partially_reversed");
        assert_eq!(transfer_status(800, 800, false), "reversed");
        assert_eq!(transfer_status(800, 0, true), "reversed");
        assert_eq!(transfer_status(0, 0, false), "created");
    }
}
