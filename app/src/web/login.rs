//! Sign-in: email and password. A plain form post that works before the wasm loads; hydrated,
//! it posts in the background and shows the error in place.
use super::auth::SignIn;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    // Where to go after signing in, from the address; the server checks it is a local path.
    let next = use_query_map().with_untracked(|q| q.get("next").unwrap_or_default());
    // Set by the set-password page on success; a fixed message, whatever else the address says.
    let password_set = use_query_map().with_untracked(|q| q.get("password").is_some_and(|v| v == "set"));
    view! {
        <h1>"Sign in"</h1>
        {password_set.then(|| view! { <p class="notice" role="status" data-testid="password-set">"Your password is set. Sign in with it."</p> })}
        <LoginForm next/>
        <p class="narrow"><a href="/forgot-password" data-testid="forgot-link">"Forgot your password?"</a></p>
    }
}

/// The sign-in form (an island: it hydrates to post in the background and show errors in place).
#[island]
fn LoginForm(next: String) -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    view! {
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
