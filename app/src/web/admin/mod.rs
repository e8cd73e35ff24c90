//! The admin pages, one file per feature: contracts, Stripe events, refunds (money moving back),
//! reconciliation, revenue, people, webhook sources and alerts. What every admin page shares lives here: the admin
//! navigation with its findings banner, and the one-time message an action leaves for the next
//! page. The feature files use this module; it uses none of them.
use crate::web::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

pub mod alerts;
pub mod contracts;
pub mod destinations;
pub mod events;
pub mod people;
pub mod reconciliation;
pub mod refunds;
pub mod revenue;
pub mod sources;

#[cfg(feature = "ssr")]
use crate::web::access::{caller, AdminUser};
#[cfg(feature = "ssr")]
use crate::web::session_keys::FLASH_KEY;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flash {
    pub class: String,
    pub text: String,
}

/// The message a money action left for this page, once.
#[server]
pub async fn take_flash() -> Result<Option<Flash>, AppError> {
    caller::<AdminUser>(&crate::web::services()?).await?;
    let flash: Option<(String, String)> = match crate::web::auth::server::snapshot().await {
        Some(snapshot) => snapshot.flash,
        None => crate::web::auth::server::session().await?.remove(FLASH_KEY).await.unwrap_or(None),
    };
    Ok(flash
        .map(|(class, text)| Flash { class: if class == "error" { "error".into() } else { "notice".into() }, text }))
}

#[component]
pub fn FlashMessage() -> impl IntoView {
    let flash = Resource::new(|| (), |_| take_flash());
    view! {
        <Suspense fallback=|| ()>
            {move || flash.get().and_then(Result::ok).flatten().map(|f| view! {
                <p class=f.class.clone() role=if f.class == "error" { "alert" } else { "status" } data-testid="flash">{f.text}</p>
            })}
        </Suspense>
    }
}

/// Open findings of the last reconciliation, for the banner.
#[server]
pub async fn open_findings() -> Result<i64, AppError> {
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    crate::store::reconciliation::open_findings(&svc.db)
        .await
        .map_err(|e| AppError::unavailable("Reconciliation could not be read", e))
}

/// Shown on every admin page while the last reconciliation left findings open.
#[component]
pub fn FindingsBanner() -> impl IntoView {
    let open = Resource::new(|| (), |_| open_findings());
    view! {
        <Suspense fallback=|| ()>
            {move || open.get().and_then(Result::ok).filter(|n| *n > 0).map(|n| view! {
                <p class="banner warn" role="alert" data-testid="findings-banner">
                    {format!("Reconciliation left {n} finding{} open: Stripe and our books disagree. ", if n == 1 { "" } else { "s" })}
                    <a href="/admin/reconciliation">"See what and why"</a>
                </p>
            })}
        </Suspense>
    }
}

#[component]
pub fn AdminNav() -> impl IntoView {
    view! {
        <nav class="subnav" aria-label="Admin">
            <a href="/admin">"Contracts"</a>
            <a href="/admin/events">"Events"</a>
            <a href="/admin/reconciliation">"Reconciliation"</a>
            <a href="/admin/revenue">"Revenue"</a>
            <a href="/admin/people">"People"</a>
            <a href="/admin/sources">"Sources"</a>
            <a href="/admin/destinations">"Forwarding"</a>
            <a href="/admin/alerts">"Alerts"</a>
        </nav>
        <FindingsBanner/>
    }
}
