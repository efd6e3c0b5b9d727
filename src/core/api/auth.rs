//! Who is calling: roles, the authenticated `Principal`, and which role may do what.

use crate::core::api::error::ApiError;
use crate::core::api::routes::Route;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Manager,
    Member,
    Service,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "manager" => Some(Role::Manager),
            "member" => Some(Role::Member),
            "service" => Some(Role::Service),
            _ => None,
        }
    }
}

/// An authenticated caller. Only `jwt::verify` builds one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Option<String>,
    pub workspace_id: String,
    pub role: Role,
}

/// Which roles may call a route (SPEC §2). `None`: the route takes no bearer token.
pub fn allowed_roles(route: Route) -> Option<&'static [Role]> {
    use Role::*;
    const READERS: &[Role] = &[Admin, Manager];
    const WRITERS: &[Role] = &[Admin];
    const ANYONE: &[Role] = &[Admin, Manager, Member, Service];
    const PUBLISHERS: &[Role] = &[Admin, Service];
    match route {
        Route::Health | Route::OpenApi | Route::InboundStripe | Route::InboundStripeConnect
        | Route::InboundResend | Route::Portal => None,
        // The operator API has its own key (`core::api::ops`), never a workspace token.
        Route::OpsShards | Route::OpsWorkspace | Route::OpsMoveWorkspace | Route::OpsMove => None,
        Route::EventCatalog => Some(ANYONE),
        Route::ListWebhooks | Route::GetWebhook | Route::QueryLogs | Route::GetLog | Route::TestWebhook
        | Route::Redeliver | Route::WebhookStats | Route::GetInvoice | Route::GetBilling | Route::GetConnectAccount
        | Route::GetConnectSplits | Route::GetEmailAnalytics | Route::GetEmailSuppressions => {
            Some(READERS)
        }
        Route::CreateWebhook | Route::UpdateWebhook | Route::DeleteWebhook | Route::RotateSecret
        | Route::RecoverWebhook => Some(WRITERS),
        Route::PublishEvent => Some(PUBLISHERS),
    }
}

/// 403 unless the principal's role may call the route.
pub fn authorize(principal: &Principal, route: Route) -> Result<(), ApiError> {
    match allowed_roles(route) {
        Some(roles) if !roles.contains(&principal.role) => Err(ApiError::forbidden()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    fn can(role: Role, route: Route) -> bool {
        let p = Principal { user_id: None, workspace_id: "ws".into(), role };
        authorize(&p, route).is_ok()
    }

    #[test]
    fn role_table_matches_the_spec() {
        // (route, admin, manager, member, service)
        let table = [
            (Route::ListWebhooks, true, true, false, false),
            (Route::GetWebhook, true, true, false, false),
            (Route::QueryLogs, true, true, false, false),
            (Route::GetLog, true, true, false, false),
            (Route::TestWebhook, true, true, false, false),
            (Route::Redeliver, true, true, false, false),
            (Route::CreateWebhook, true, false, false, false),
            (Route::UpdateWebhook, true, false, false, false),
            (Route::DeleteWebhook, true, false, false, false),
            (Route::RotateSecret, true, false, false, false),
            (Route::RecoverWebhook, true, false, false, false),
            (Route::WebhookStats, true, true, false, false),
            (Route::EventCatalog, true, true, true, true),
            (Route::PublishEvent, true, false, false, true),
            (Route::GetInvoice, true, true, false, false),
            (Route::GetBilling, true, true, false, false),
            (Route::GetConnectAccount, true, true, false, false),
            (Route::GetConnectSplits, true, true, false, false),
            (Route::GetEmailAnalytics, true, true, false, false),
            (Route::GetEmailSuppressions, true, true, false, false),
        ];
        for (route, admin, manager, member, service) in table {
            assert_eq!(can(Admin, route), admin, "admin {route:?}");
            assert_eq!(can(Manager, route), manager, "manager {route:?}");
            assert_eq!(can(Member, route), member, "member {route:?}");
            assert_eq!(can(Service, route), service, "service {route:?}");
        }
    }

    #[test]
    fn public_routes_need_no_token() {
        for route in [Route::Health, Route::OpenApi, Route::InboundStripe, Route::InboundStripeConnect, Route::InboundResend, Route::Portal,
                      Route::OpsShards, Route::OpsWorkspace, Route::OpsMoveWorkspace, Route::OpsMove] {
            assert!(allowed_roles(route).is_none(), "{route:?}");
            for role in [Admin, Manager, Member, Service] {
                assert!(can(role, route), "{role:?} on {route:?}");
            }
        }
    }

    #[test]
    fn roles_are_the_four_lowercase_names_of_the_spec() {
        assert_eq!(Role::parse("admin"), Some(Admin));
        assert_eq!(Role::parse("manager"), Some(Manager));
        assert_eq!(Role::parse("member"), Some(Member));
        assert_eq!(Role::parse("service"), Some(Service));
        for other in ["", "Admin", "ADMIN", " admin", "admin ", "owner", "superadmin", "managers", "root"] {
            assert_eq!(Role::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn forbidden_is_403() {
        let p = Principal { user_id: None, workspace_id: "ws".into(), role: Member };
        assert_eq!(authorize(&p, Route::CreateWebhook).unwrap_err().status, 403);
    }
}
