//! The page a set-password link opens (an invitation or a reset an admin made): who it is for,
//! and the form, or why the link cannot be used. The form posts to a plain route
//! (`server::people`) so it works without JavaScript.
use crate::web::error::AppError;
use crate::web::ErrorView;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

/// The email a set-password link is for; the refusal in words when it cannot be used.
#[server]
pub async fn password_link(token: String) -> Result<String, AppError> {
    let svc = crate::web::services()?;
    crate::services::people::open_link(&svc, &token)
        .await
        .map_err(|e| AppError::unavailable("The link could not be checked", e))?
        .map_err(|why| AppError::Invalid(why.into()).with_status())
}

/// The page a set-password link opens: who it is for, and the form (or why it cannot be used).
#[component]
pub fn SetPasswordPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let problem =
        move || query.with(|q| q.get("error")).and_then(|c| crate::domain::people::PasswordProblem::from_code(&c));
    let link = Resource::new(token, password_link);
    view! {
        <h1>"Set your password"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || link.get().map(|r| match r {
                Err(AppError::Invalid(why)) => view! {
                    <p class="error" role="alert" data-testid="link-refused">{why}</p>
                    <p><a href="/login">"Sign in"</a></p>
                }.into_any(),
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(email) => view! {
                    <form method="post" action=format!("/password/{}", token()) class="stack narrow" data-testid="set-password-form">
                        <p>"For " <strong>{email.clone()}</strong></p>
                        // Lets password managers file the new password under the right account.
                        <input type="hidden" name="username" autocomplete="username" value=email/>
                        {problem().map(|p| view! { <p class="error" role="alert">{p.message()}</p> })}
                        <label for="new-password">{format!("New password (at least {} characters)", crate::domain::people::MIN_PASSWORD_LEN)}</label>
                        <input id="new-password" name="password" type="password" autocomplete="new-password" required
                            minlength=crate::domain::people::MIN_PASSWORD_LEN.to_string()/>
                        <label for="confirm-password">"The same again"</label>
                        <input id="confirm-password" name="confirm" type="password" autocomplete="new-password" required/>
                        <button type="submit" class="primary">"Set password"</button>
                    </form>
                }.into_any(),
            })}
        </Suspense>
    }
}
