//! The browser entry point: cargo-leptos compiles this package to wasm with `hydrate`. The
//! page's hydration script calls `hydrate()`, then hydrates each `#[island]` on the page (their
//! wasm exports come from the `app` crate; `use app as _` below keeps it linked).
#[cfg(feature = "hydrate")]
use app as _;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    // Tells the browser tests (and anyone curious) that the page is interactive now.
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
