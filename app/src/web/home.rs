//! The landing page: what a revision pack is and costs, from the server's configured terms.
use super::SiteInfoResource;
use leptos::prelude::*;

#[component]
pub fn HomePage() -> impl IntoView {
    let info = expect_context::<SiteInfoResource>();
    view! {
        <h1>"Revision Store"</h1>
        <p>"Artwork revisions for your ad contracts."</p>
        <Suspense fallback=|| view! { <p>"Loading terms…"</p> }>
            {move || info.get().map(|i| match i {
                Ok(i) => view! {
                    <p class="terms">
                        {format!(
                            "Every contract includes {} revisions. Need more? A revision pack adds {} for {}.",
                            i.terms.base_revisions, i.terms.revisions_per_pack, i.terms.price
                        )}
                    </p>
                }.into_any(),
                Err(e) => view! { <p class="error">{format!("Could not load the terms: {e}")}</p> }.into_any(),
            })}
        </Suspense>
    }
}
