//! The Leptos web layer: the HTML shell, the router and the pages. Rendered on the server and
//! hydrated in the browser.
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

pub mod home;

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
    let svc = expect_context::<crate::services::Services>();
    Ok(SiteInfo { terms: svc.terms.clone(), simulated: svc.simulated })
}

/// The site info, loaded once per page and shared through context.
pub type SiteInfoResource = Resource<Result<SiteInfo, ServerFnError>>;

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
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
            <main>
                <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                    <Route path=path!("") view=home::HomePage/>
                </Routes>
            </main>
        </Router>
    }
}
