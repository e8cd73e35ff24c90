//! The browser entry point: cargo-leptos compiles this package to wasm with `hydrate`,
//! and the page's hydration script calls `hydrate()` to attach Leptos to the server-rendered HTML.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::web::App);
    // Tells the browser tests (and anyone curious) that the page is interactive now.
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
