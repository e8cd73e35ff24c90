//! The landing page: what a revision pack is and costs, from the server's configured terms.
use crate::domain::PackTerms;
use leptos::prelude::*;

/// The commercial terms, as the server is configured (price, pack size, included revisions).
#[server]
pub async fn get_pack_terms() -> Result<PackTerms, ServerFnError> {
    let svc = expect_context::<crate::services::Services>();
    Ok(svc.terms.clone())
}

#[component]
pub fn HomePage() -> impl IntoView {
    let terms = Resource::new(|| (), |_| get_pack_terms());
    view! {
        <h1>"Revision Store"</h1>
        <p>"Artwork revisions for your ad contracts."</p>
        <Suspense fallback=|| view! { <p>"Loading terms…"</p> }>
            {move || terms.get().map(|t| match t {
                Ok(t) => view! {
                    <p class="terms">
                        {format!(
                            "Every contract includes {} revisions. Need more? A revision pack adds {} for {}.",
                            t.base_revisions, t.revisions_per_pack, t.price
                        )}
                    </p>
                }.into_any(),
                Err(e) => view! { <p class="error">{format!("Could not load the terms: {e}")}</p> }.into_any(),
            })}
        </Suspense>
    }
}
