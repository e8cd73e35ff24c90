//! Sign-in: email and password. A plain form post that works before the wasm loads; hydrated,
//! it posts in the background and shows the error in place.
use super::auth::SignIn;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    view! {
        <h1>"Sign in"</h1>
        <ActionForm action attr:class="stack narrow">
            <label for="email">"Email"</label>
            <input id="email" name="email" type="email" autocomplete="username" required/>
            <label for="password">"Password"</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required/>
            <input type="hidden" name="next" value=next/>
            {move || action.value().get().and_then(Result::err).map(|e| view! {
                <p class="error" role="alert">{e.to_string()}</p>
            })}
            <button type="submit" class="primary" disabled=move || action.pending().get()>"Sign in"</button>
        </ActionForm>
    }
}
