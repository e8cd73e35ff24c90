//! The whole router: leptos' pages and server functions with the server's own routes
//! (`routes`), sessions and the cross-site check on what browsers use, and the middleware every
//! request passes.
use super::middleware::{body_deadline, guard, request_id, security_headers, timed};
use super::AppState;
use app::web::{shell, App};
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list_with_exclusions_and_ssg_and_context, LeptosRoutes};

/// How the app meets browsers.
#[derive(Debug, Clone, Default)]
pub struct WebPolicy {
    /// Users reach the app over https: the session cookie is Secure (https only) and HSTS is sent.
    pub secure: bool,
    /// `PUBLIC_URL`'s origin: forms must come from it (behind a proxy that rewrites Host).
    pub public_origin: Option<String>,
    /// How long a request body may stall between chunks.
    pub body_timeout: std::time::Duration,
    /// How long a whole request body may take.
    pub body_deadlines: body_deadline::BodyDeadlines,
}

/// The app's routes, discovered once per process. Discovery renders the app with resource
/// loading suppressed through a process-wide flag (leptos_server 0.8.8), and a resource whose
/// future is first polled while that flag is up waits for ever, so a page rendering for one
/// server while another server in the same process starts (the tests, the benchmark) would never
/// answer (leptos issue #4773). The routes depend on the `App` alone, never on a server's state.
static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> = std::sync::OnceLock::new();

pub fn router(state: AppState, simulator: Option<app::stripe::simulator::Simulator>, web: WebPolicy) -> Router {
    let stats = state.services.stats.clone();
    let context = {
        let services = state.services.clone();
        move || provide_context(services.clone())
    };
    let routes = ROUTES
        .get_or_init(|| {
            // Route discovery renders the app once; with the services in context, resources it
            // starts can find them.
            generate_route_list_with_exclusions_and_ssg_and_context(App, None, context.clone()).0
        })
        .clone();
    // Pages, server functions and form posts: sessions and the cross-site check.
    let site = crate::routes::site()
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
        .layer(axum::middleware::from_fn_with_state(
            guard::Origins::new(web.public_origin.clone()),
            guard::same_origin_writes,
        ))
        .layer(axum::middleware::from_fn(guard::session_snapshot))
        .layer(sessions(&state, web.secure));
    let mut machines = crate::routes::machines();
    if let Some(sim) = simulator {
        machines = machines.nest_service(app::stripe::simulator::MOUNT, app::stripe::simulator::router(sim));
    }
    let router = machines.with_state(state.clone()).merge(site.with_state(state));
    security_headers(router, web.secure)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(web.body_timeout))
        .layer(axum::middleware::from_fn_with_state(web.body_deadlines, body_deadline::enforce))
        .layer(axum::middleware::from_fn(guard::close_after_refused_body))
        .layer(axum::middleware::from_fn_with_state(stats, timed))
        .layer(axum::middleware::from_fn(request_id::tag))
}

/// Sessions live in our database. HttpOnly: scripts cannot read the cookie. SameSite=Lax:
/// other sites' forms and scripts cannot send it with a POST (with the Origin check in
/// `guard`, that is the cross-site request defence). Signed out after 12 idle hours.
fn sessions(state: &AppState, secure: bool) -> tower_sessions::SessionManagerLayer<app::store::Db> {
    use tower_sessions::cookie::SameSite;
    use tower_sessions::{Expiry, SessionManagerLayer};
    SessionManagerLayer::new(state.services.db.clone())
        .with_name("revision_store_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        // Saved only when it changes: saving on every request (assets included) wrote a row
        // through SQLite's one writer per request. An active user's session is still extended:
        // `guard::session_snapshot` touches it at most once an hour, so it ends after 11 to 12
        // idle hours.
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(12)))
}
