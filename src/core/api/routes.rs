//! The route table: which (method, path) pairs exist and what they are called.
//!
//! Static segments win over `:id` (so `/webhooks/events` and `/webhooks/logs` are never
//! taken for ids). A known path with the wrong method is a 405 with `Allow`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    OpenApi,
    EventCatalog,
    ListWebhooks,
    CreateWebhook,
    GetWebhook,
    UpdateWebhook,
    DeleteWebhook,
    TestWebhook,
    RotateSecret,
    RecoverWebhook,
    WebhookStats,
    QueryLogs,
    GetLog,
    Redeliver,
    PublishEvent,
    InboundStripe,
    InboundStripeConnect,
    InboundResend,
    GetInvoice,
    GetBilling,
    GetConnectAccount,
    GetConnectSplits,
    GetEmailAnalytics,
    GetEmailSuppressions,
    Portal,
    OpsShards,
    OpsWorkspace,
    OpsMoveWorkspace,
    OpsMove,
}

/// Which database a route's handler works in (SPEC §9.2): the directory database `DB`
/// (inbound provider state, the operator API, health), or the shard of the caller's
/// workspace: read (a workspace never written is not placed by a read) or written
/// (placing it on its first write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataHome {
    Directory,
    WorkspaceRead,
    WorkspaceWrite,
}

impl Route {
    pub fn data_home(self) -> DataHome {
        match self {
            Route::ListWebhooks | Route::GetWebhook | Route::QueryLogs | Route::GetLog | Route::WebhookStats => {
                DataHome::WorkspaceRead
            }
            Route::CreateWebhook | Route::UpdateWebhook | Route::DeleteWebhook | Route::TestWebhook | Route::RotateSecret
            | Route::RecoverWebhook | Route::Redeliver | Route::PublishEvent => DataHome::WorkspaceWrite,
            Route::Health | Route::OpenApi | Route::EventCatalog | Route::InboundStripe | Route::InboundStripeConnect
            | Route::InboundResend | Route::GetInvoice | Route::GetBilling | Route::GetConnectAccount
            | Route::GetConnectSplits | Route::GetEmailAnalytics | Route::GetEmailSuppressions | Route::Portal
            | Route::OpsShards | Route::OpsWorkspace | Route::OpsMoveWorkspace | Route::OpsMove => DataHome::Directory,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum RouteMiss {
    NotFound,
    MethodNotAllowed(&'static [&'static str]),
}

/// A matched route with its one path parameter, if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Matched<'a> {
    pub route: Route,
    pub id: Option<&'a str>,
}

/// Every route, as (method, path) — used to check the OpenAPI document covers them all.
pub const ALL: &[(&str, &str, Route)] = &[
    ("GET", "/api/v1/health", Route::Health),
    ("GET", "/api/v1/openapi.json", Route::OpenApi),
    ("GET", "/api/v1/webhooks/events", Route::EventCatalog),
    ("GET", "/api/v1/webhooks", Route::ListWebhooks),
    ("POST", "/api/v1/webhooks", Route::CreateWebhook),
    ("GET", "/api/v1/webhooks/{id}", Route::GetWebhook),
    ("PUT", "/api/v1/webhooks/{id}", Route::UpdateWebhook),
    ("DELETE", "/api/v1/webhooks/{id}", Route::DeleteWebhook),
    ("POST", "/api/v1/webhooks/{id}/test", Route::TestWebhook),
    ("POST", "/api/v1/webhooks/{id}/secret/rotate", Route::RotateSecret),
    ("POST", "/api/v1/webhooks/{id}/recover", Route::RecoverWebhook),
    ("GET", "/api/v1/webhooks/{id}/stats", Route::WebhookStats),
    ("GET", "/api/v1/webhooks/logs", Route::QueryLogs),
    ("GET", "/api/v1/webhooks/logs/{id}", Route::GetLog),
    ("POST", "/api/v1/webhooks/logs/{id}/redeliver", Route::Redeliver),
    ("POST", "/api/v1/events", Route::PublishEvent),
    ("POST", "/api/webhooks/stripe", Route::InboundStripe),
    ("POST", "/api/webhooks/stripe-connect", Route::InboundStripeConnect),
    ("POST", "/api/webhooks/resend", Route::InboundResend),
    ("GET", "/api/v1/invoices/{id}", Route::GetInvoice),
    ("GET", "/api/v1/billing", Route::GetBilling),
    ("GET", "/api/v1/connect/account", Route::GetConnectAccount),
    ("GET", "/api/v1/connect/splits", Route::GetConnectSplits),
    ("GET", "/api/v1/email/analytics", Route::GetEmailAnalytics),
    ("GET", "/api/v1/email/suppressions", Route::GetEmailSuppressions),
    ("GET", "/portal", Route::Portal),
    ("GET", "/api/v1/ops/shards", Route::OpsShards),
    ("GET", "/api/v1/ops/workspaces/{id}", Route::OpsWorkspace),
    ("POST", "/api/v1/ops/workspaces/{id}/move", Route::OpsMoveWorkspace),
    ("GET", "/api/v1/ops/moves/{id}", Route::OpsMove),
];

/// Matches a request line. `path` is the URL path without the query string.
pub fn match_route<'a>(method: &str, path: &'a str) -> Result<Matched<'a>, RouteMiss> {
    let trimmed = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    let candidates: &[(&'static str, Route)] = match segments.as_slice() {
        ["api", "v1", "health"] => &[("GET", Route::Health)],
        ["api", "v1", "openapi.json"] => &[("GET", Route::OpenApi)],
        ["api", "v1", "webhooks"] => &[("GET", Route::ListWebhooks), ("POST", Route::CreateWebhook)],
        ["api", "v1", "webhooks", "events"] => &[("GET", Route::EventCatalog)],
        ["api", "v1", "webhooks", "logs"] => &[("GET", Route::QueryLogs)],
        ["api", "v1", "webhooks", "logs", _] => &[("GET", Route::GetLog)],
        ["api", "v1", "webhooks", "logs", _, "redeliver"] => &[("POST", Route::Redeliver)],
        ["api", "v1", "webhooks", _] => &[
            ("GET", Route::GetWebhook),
            ("PUT", Route::UpdateWebhook),
            ("DELETE", Route::DeleteWebhook),
        ],
        ["api", "v1", "webhooks", _, "test"] => &[("POST", Route::TestWebhook)],
        ["api", "v1", "webhooks", _, "secret", "rotate"] => &[("POST", Route::RotateSecret)],
        ["api", "v1", "webhooks", _, "recover"] => &[("POST", Route::RecoverWebhook)],
        ["api", "v1", "webhooks", _, "stats"] => &[("GET", Route::WebhookStats)],
        ["api", "v1", "events"] => &[("POST", Route::PublishEvent)],
        ["api", "webhooks", "stripe"] => &[("POST", Route::InboundStripe)],
        ["api", "webhooks", "stripe-connect"] => &[("POST", Route::InboundStripeConnect)],
        ["api", "webhooks", "resend"] => &[("POST", Route::InboundResend)],
        ["api", "v1", "invoices", _] => &[("GET", Route::GetInvoice)],
        ["api", "v1", "billing"] => &[("GET", Route::GetBilling)],
        ["api", "v1", "connect", "account"] => &[("GET", Route::GetConnectAccount)],
        ["api", "v1", "connect", "splits"] => &[("GET", Route::GetConnectSplits)],
        ["api", "v1", "email", "analytics"] => &[("GET", Route::GetEmailAnalytics)],
        ["api", "v1", "email", "suppressions"] => &[("GET", Route::GetEmailSuppressions)],
        ["portal"] => &[("GET", Route::Portal)],
        ["api", "v1", "ops", "shards"] => &[("GET", Route::OpsShards)],
        ["api", "v1", "ops", "workspaces", _] => &[("GET", Route::OpsWorkspace)],
        ["api", "v1", "ops", "workspaces", _, "move"] => &[("POST", Route::OpsMoveWorkspace)],
        ["api", "v1", "ops", "moves", _] => &[("GET", Route::OpsMove)],
        _ => return Err(RouteMiss::NotFound),
    };
    let id = match segments.as_slice() {
        ["api", "v1", "webhooks", "logs", id, "redeliver"] | ["api", "v1", "webhooks", "logs", id] => Some(*id),
        ["api", "v1", "webhooks", id]
        | ["api", "v1", "webhooks", id, "test"]
        | ["api", "v1", "webhooks", id, "secret", "rotate"]
        | ["api", "v1", "webhooks", id, "recover"]
        | ["api", "v1", "webhooks", id, "stats"]
            if *id != "events" && *id != "logs" =>
        {
            Some(*id)
        }
        ["api", "v1", "invoices", id]
        | ["api", "v1", "ops", "workspaces", id]
        | ["api", "v1", "ops", "workspaces", id, "move"]
        | ["api", "v1", "ops", "moves", id] => Some(*id),
        _ => None,
    };
    if id == Some("") {
        return Err(RouteMiss::NotFound);
    }
    // HEAD is answered like GET by nobody here: a webhook API has no use for it.
    match candidates.iter().find(|(m, _)| *m == method) {
        Some((_, route)) => Ok(Matched { route: *route, id }),
        None => Err(RouteMiss::MethodNotAllowed(allowed_methods(candidates))),
    }
}

fn allowed_methods(candidates: &[(&'static str, Route)]) -> &'static [&'static str] {
    match candidates.len() {
        3 => &["GET", "PUT", "DELETE"],
        2 => &["GET", "POST"],
        _ if candidates.first().map(|c| c.0) == Some("POST") => &["POST"],
        _ => &["GET"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_segments_win_over_ids() {
        // The static routes carry no id: "events" and "logs" are never taken for one.
        let catalog = Matched { route: Route::EventCatalog, id: None };
        assert_eq!(match_route("GET", "/api/v1/webhooks/events"), Ok(catalog));
        assert_eq!(match_route("GET", "/api/v1/webhooks/logs"), Ok(Matched { route: Route::QueryLogs, id: None }));
        let m = match_route("GET", "/api/v1/invoices/in_42").unwrap();
        assert_eq!((m.route, m.id), (Route::GetInvoice, Some("in_42")));
        assert_eq!(match_route("GET", "/api/v1/invoices/"), Err(RouteMiss::NotFound));
        let m = match_route("GET", "/api/v1/webhooks/wh_1").unwrap();
        assert_eq!((m.route, m.id), (Route::GetWebhook, Some("wh_1")));
        assert_eq!(
            match_route("DELETE", "/api/v1/webhooks/logs"),
            Err(RouteMiss::MethodNotAllowed(&["GET"]))
        );
    }

    #[test]
    fn ids_in_nested_routes() {
        let m = match_route("POST", "/api/v1/webhooks/logs/dlv_9/redeliver").unwrap();
        assert_eq!((m.route, m.id), (Route::Redeliver, Some("dlv_9")));
        let m = match_route("POST", "/api/v1/webhooks/wh_2/test").unwrap();
        assert_eq!((m.route, m.id), (Route::TestWebhook, Some("wh_2")));
        let m = match_route("POST", "/api/v1/webhooks/wh_3/secret/rotate").unwrap();
        assert_eq!((m.route, m.id), (Route::RotateSecret, Some("wh_3")));
        assert_eq!(match_route("GET", "/api/v1/webhooks/wh_3/secret/rotate"), Err(RouteMiss::MethodNotAllowed(&["POST"])));
        assert_eq!(match_route("POST", "/api/v1/webhooks/wh_3/secret"), Err(RouteMiss::NotFound));
        let m = match_route("POST", "/api/v1/webhooks/wh_4/recover").unwrap();
        assert_eq!((m.route, m.id), (Route::RecoverWebhook, Some("wh_4")));
        let m = match_route("GET", "/api/v1/webhooks/wh_5/stats").unwrap();
        assert_eq!((m.route, m.id), (Route::WebhookStats, Some("wh_5")));
        assert_eq!(match_route("GET", "/api/v1/webhooks/wh_4/recover"), Err(RouteMiss::MethodNotAllowed(&["POST"])));
        assert_eq!(match_route("POST", "/api/v1/webhooks/wh_5/stats"), Err(RouteMiss::MethodNotAllowed(&["GET"])));
    }

    #[test]
    fn unknown_paths_and_methods() {
        assert_eq!(match_route("GET", "/nope"), Err(RouteMiss::NotFound));
        assert_eq!(match_route("GET", "/api/v1/webhooks/a/b/c"), Err(RouteMiss::NotFound));
        assert_eq!(match_route("GET", "/api/v1/webhooks//test"), Err(RouteMiss::NotFound));
        assert_eq!(
            match_route("PATCH", "/api/v1/webhooks/wh_1"),
            Err(RouteMiss::MethodNotAllowed(&["GET", "PUT", "DELETE"]))
        );
        assert_eq!(
            match_route("GET", "/api/webhooks/stripe"),
            Err(RouteMiss::MethodNotAllowed(&["POST"]))
        );
        assert_eq!(match_route("DELETE", "/api/v1/webhooks"), Err(RouteMiss::MethodNotAllowed(&["GET", "POST"])));
    }

    #[test]
    fn every_listed_route_matches_itself() {
        for (method, path, route) in ALL {
            let concrete = path.replace("{id}", "x_1");
            assert_eq!(match_route(method, &concrete).map(|m| m.route), Ok(*route), "{method} {path}");
        }
    }

    #[test]
    fn outbound_routes_work_in_the_workspace_shard_and_writes_place_it() {
        use DataHome::*;
        for (method, path, route) in ALL {
            let expected = if path.starts_with("/api/v1/webhooks") && *path != "/api/v1/webhooks/events" {
                if *method == "GET" { WorkspaceRead } else { WorkspaceWrite }
            } else if *path == "/api/v1/events" {
                WorkspaceWrite
            } else {
                Directory
            };
            assert_eq!(route.data_home(), expected, "{method} {path}");
        }
    }

    #[test]
    fn operator_routes() {
        assert_eq!(match_route("GET", "/api/v1/ops/shards"), Ok(Matched { route: Route::OpsShards, id: None }));
        let m = match_route("GET", "/api/v1/ops/workspaces/ws_1").unwrap();
        assert_eq!((m.route, m.id), (Route::OpsWorkspace, Some("ws_1")));
        assert_eq!(match_route("GET", "/api/v1/ops/workspaces/"), Err(RouteMiss::NotFound));
        assert_eq!(match_route("POST", "/api/v1/ops/shards"), Err(RouteMiss::MethodNotAllowed(&["GET"])));
        assert_eq!(match_route("GET", "/api/v1/ops"), Err(RouteMiss::NotFound));
    }

    #[test]
    fn trailing_slash_is_tolerated() {
        assert_eq!(match_route("GET", "/api/v1/webhooks/").unwrap().route, Route::ListWebhooks);
    }
}
