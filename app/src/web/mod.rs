//! The Leptos web layer: the HTML shell, the router and the pages. Pages render on the server
//! (islands mode); only the interactive parts, marked `#[island]` (the sign-in form and the
//! contract page with its payment modals), are compiled to wasm and hydrate in the browser.
//! Everything else is plain HTML: links and forms that work without JavaScript.
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Redirect, Route, Router, Routes};
use leptos_router::hooks::use_location;
use leptos_router::{path, SsrMode};

#[cfg(feature = "ssr")]
pub mod access;
pub mod admin;
pub mod auth;
pub mod browser;
pub mod checkout;
pub mod contracts;
pub mod error;
pub mod forgot;
pub mod home;
pub mod login;
pub mod password;
pub mod security;
pub mod session;
pub mod session_keys;

use auth::SignOut;
use error::AppError;

use crate::domain::PackTerms;

/// What every page needs to know about this deployment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SiteInfo {
    pub terms: PackTerms,
    /// Payments go to the built-in Stripe simulator.
    pub simulated: bool,
}

#[server]
pub async fn get_site_info() -> Result<SiteInfo, ServerFnError> {
    let svc = services().map_err(|e| ServerFnError::new(e.to_string()))?;
    Ok(SiteInfo { terms: svc.terms.clone(), simulated: svc.simulated })
}

/// The app's services, which the server provides to every request. A missing context is a
/// server error, not a panic (the router's route discovery renders the app without a request).
#[cfg(feature = "ssr")]
pub fn services() -> Result<crate::services::Services, AppError> {
    use_context::<crate::services::Services>()
        .ok_or_else(|| AppError::Unavailable("The server is not ready to answer this yet.".into()))
}

/// The site info, loaded once per page and shared through context.
pub type SiteInfoResource = Resource<Result<SiteInfo, ServerFnError>>;

/// Percent-encodes a value for a URL's query string or path (RFC 3986 unreserved characters,
/// plus `/` so a `next=/contracts/1` stays readable).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Times as pages show them: UTC, to the minute.
/// An amount in a currency's minor units as people read it ("$150.00"); as stored when the
/// currency is not one we know.
pub fn money_text(amount: i64, currency: &str) -> String {
    match crate::domain::Currency::parse(currency) {
        Ok(c) => crate::domain::Money::new(amount, c).to_string(),
        Err(_) => format!("{amount} {currency}"),
    }
}

pub fn fmt_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// How a page shows a failed load: sign-in goes to the login page (and back), the rest in words.
#[component]
pub fn ErrorView(error: AppError) -> impl IntoView {
    let location = use_location();
    match error {
        AppError::NotSignedIn => {
            let (path, query) = (location.pathname.get_untracked(), location.search.get_untracked());
            let next = if query.is_empty() { path } else { format!("{path}?{query}") };
            // The server function said 401; for a page the answer is a redirect to sign in.
            #[cfg(feature = "ssr")]
            if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
                res.set_status(axum::http::StatusCode::SEE_OTHER);
            }
            view! { <Redirect path=format!("/login?next={}", url_encode(&next))/> }.into_any()
        }
        AppError::NotFound => view! {
            <h1>"Not found"</h1>
            <p>"There is nothing here, or it is not yours to see."</p>
        }
        .into_any(),
        other => view! { <p class="error" role="alert">{other.to_string()}</p> }.into_any(),
    }
}

pub fn shell(options: LeptosOptions) -> impl IntoView {
    send_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Sends this page's Content-Security-Policy with the nonce Leptos put on its inline scripts
/// (leptos_axum makes a fresh one for every response). Headers set while the shell renders go
/// out with the first chunk.
fn send_security_policy() {
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>()) {
        use security::{content_security_policy, PaymentScripts};
        let simulated = use_context::<crate::services::Services>().is_some_and(|s| s.simulated);
        let scripts = if simulated { PaymentScripts::SameOrigin } else { PaymentScripts::Stripe };
        if let Ok(value) = axum::http::HeaderValue::from_str(&content_security_policy(&nonce, scripts)) {
            response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
        }
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let info: SiteInfoResource = Resource::new(|| (), |_| get_site_info());
    provide_context(info);

    view! {
        <Stylesheet id="leptos" href="/pkg/revision-store.css"/>
        <Title text="Revision Store"/>
        <Suspense fallback=|| ()>
            {move || {
                info.get().and_then(Result::ok).filter(|i| i.simulated).map(|_| view! {
                    <div class="sim-banner" role="status">"Simulated payments — no money moves"</div>
                })
            }}
        </Suspense>
        <Router>
            <Header/>
            <main>
                <Routes fallback=|| view! { <h1>"Not found"</h1><p>"There is no such page."</p> }>
                    <Route path=path!("") view=home::HomePage/>
                    <Route path=path!("/login") view=login::LoginPage/>
                    <Route path=path!("/forgot-password") view=forgot::ForgotPasswordPage ssr=SsrMode::Async/>
                    // Data pages render whole on the server (Async): readable before the wasm
                    // loads, and a 404 or a sign-in redirect can still set the HTTP status.
                    <Route path=path!("/contracts") view=contracts::ContractsPage ssr=SsrMode::Async/>
                    <Route path=path!("/contracts/:id") view=contracts::ContractPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin") view=admin::contracts::AdminContractsPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/contracts/:id") view=admin::contracts::AdminContractPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/contracts/:id/refund") view=admin::refunds::RefundConfirmPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/reconciliation") view=admin::reconciliation::ReconciliationPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/reconciliation/:id") view=admin::reconciliation::ReconciliationRunPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/revenue") view=admin::revenue::RevenuePage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/events") view=admin::events::AdminEventsPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/events/:id") view=admin::events::AdminEventPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/people") view=admin::people::AdminPeoplePage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/people/:id") view=admin::people::AdminPersonPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/alerts") view=admin::alerts::AlertsPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/sources") view=admin::sources::AdminSourcesPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/sources/:source/events/:id") view=admin::sources::AdminSourceEventPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/destinations") view=admin::destinations::AdminDestinationsPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/destinations/:name") view=admin::destinations::AdminDestinationPage ssr=SsrMode::Async/>
                    <Route path=path!("/password/:token") view=password::SetPasswordPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn Header() -> impl IntoView {
    // Rendered on the server for every page (islands mode: each navigation is a page load), so
    // it always shows who the session says is signed in.
    let me = Resource::new(|| (), |_| auth::get_me());
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <header class="site">
            <a class="brand" href="/">"Revision Store"</a>
            <Suspense fallback=|| ()>
                {move || me.get().map(|r| match r {
                    Ok(Some(user)) => view! {
                        <nav aria-label="Main">
                            <a href=user.home()>{if user.is_admin { "Admin" } else { "My contracts" }}</a>
                            <span class="who">{user.email.clone()}</span>
                            <ActionForm action=sign_out attr:class="inline">
                                <button type="submit" class="link">"Sign out"</button>
                            </ActionForm>
                        </nav>
                    }.into_any(),
                    _ => view! { <nav aria-label="Main"><a href="/login">"Sign in"</a></nav> }.into_any(),
                })}
            </Suspense>
        </header>
    }
}
