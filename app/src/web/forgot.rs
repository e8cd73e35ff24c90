//! "Forgot your password?": an email field, and one answer for every address
//! (`services::forgot`). The form is an island posting to a server function, which works before
//! the wasm loads too; the answer is a page of its own (`?sent=1`), fixed words whatever was
//! typed. With email off the page says to ask the publisher, and shows no form.
use crate::domain::people::forgot::{ANSWER, MAIL_OFF};
use crate::web::error::AppError;
use crate::web::ErrorView;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// Whether the store sends email (the form is shown only then).
#[server]
pub async fn forgot_mail_on() -> Result<bool, AppError> {
    let svc = crate::web::services()?;
    Ok(crate::services::mail::enabled(&svc))
}

/// Asks for a set-password link for `email`. Answers the same (a redirect to the answer page)
/// for an address with an account, one without, and a throttled request.
#[server]
pub async fn request_password_link(email: String) -> Result<(), AppError> {
    use crate::services::forgot::{request_link, Outcome};
    let svc = crate::web::services()?;
    let address = crate::web::auth::server::client_address(&svc).await.map(crate::domain::throttle::address_group);
    let outcome = request_link(&svc, &email, address.as_deref().unwrap_or("unknown"), chrono::Utc::now())
        .await
        .map_err(|e| AppError::unavailable("The link could not be sent right now", e))?;
    // The log says what happened, never to which address (that is the database's to know).
    tracing::info!(?outcome, "forgot-password request");
    if outcome == Outcome::MailOff {
        return Err(AppError::Invalid(MAIL_OFF.into()).with_status());
    }
    leptos_axum::redirect("/forgot-password?sent=1");
    Ok(())
}

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let sent = use_query_map().with_untracked(|q| q.get("sent").is_some_and(|v| v == "1"));
    let mail_on = Resource::new(|| (), |_| forgot_mail_on());
    view! {
        <h1>"Forgot your password?"</h1>
        {if sent {
            view! {
                <p class="notice" role="status" data-testid="forgot-answer">{ANSWER}</p>
                <p><a href="/login">"Sign in"</a></p>
            }.into_any()
        } else {
            view! {
                <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                    {move || mail_on.get().map(|r| match r {
                        Err(e) => view! { <ErrorView error=e/> }.into_any(),
                        Ok(false) => view! { <p class="notice" role="status" data-testid="forgot-mail-off">{MAIL_OFF}</p> }.into_any(),
                        Ok(true) => view! { <ForgotForm/> }.into_any(),
                    })}
                </Suspense>
            }.into_any()
        }}
    }
}

/// The email field (an island: it hydrates to post in the background and show errors in place).
#[island]
fn ForgotForm() -> impl IntoView {
    let action = ServerAction::<RequestPasswordLink>::new();
    view! {
        <ActionForm action attr:class="stack narrow" attr:data-testid="forgot-form">
            <p>"Type the address you sign in with: we email it a link to choose a new password."</p>
            <label for="forgot-email">"Email"</label>
            <input id="forgot-email" name="email" type="email" autocomplete="username" required maxlength="254"/>
            {move || action.value().get().and_then(Result::err).map(|e| view! {
                <p class="error" role="alert">{e.to_string()}</p>
            })}
            <button type="submit" class="primary" disabled=move || action.pending().get()>"Email me a link"</button>
        </ActionForm>
    }
}
