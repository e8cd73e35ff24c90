//! Buying a revision pack: the BuyRevisionModal (server creates the PaymentIntent, the browser
//! mounts Stripe's Payment Element and confirms with `redirect: 'if_required'`) and the
//! PendingPaymentModal (the server confirms with Stripe and credits through the webhook's own
//! fulfilment; the modal polls with backoff until the credit is on the contract).
use super::browser::{self, Checkout, ConfirmResult};
use super::error::AppError;
use crate::domain::accounting::{poll_delay_ms, PENDING_PATIENCE_MS};
#[cfg(feature = "ssr")]
use crate::web::access::{caller, Advertiser};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::{Deserialize, Serialize};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckoutStart {
    pub payment_intent_id: String,
    pub client_secret: String,
    pub publishable_key: String,
    pub stripe_js_url: String,
    /// "$150.00": shown before paying.
    pub price: String,
    pub revisions: i64,
}

/// Where a payment stands, as the pending modal shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PaymentView {
    Credited { available: i64, added: i64 },
    Pending,
    Failed { message: String },
}

#[server]
pub async fn buy_pack(contract_id: i64) -> Result<CheckoutStart, AppError> {
    use crate::services::purchase::{start_purchase, PurchaseError};
    let svc = super::services()?;
    let Advertiser(user) = caller::<Advertiser>(&svc).await?;
    // Starting a purchase always calls Stripe (it creates the PaymentIntent), so it spends the
    // budget up front; `confirm_purchase` spends it only when its answer needs Stripe.
    svc.stripe_call_allowed(user.id).map_err(|wait| AppError::SlowDown(wait).with_status())?;
    let publishable_key = svc
        .publishable_key
        .clone()
        .ok_or_else(|| AppError::Unavailable("Payments are not configured on this server.".into()).with_status())?;
    let started = start_purchase(&svc, user.id, contract_id).await.map_err(|e| match e {
        PurchaseError::NotFound => AppError::NotFound.with_status(),
        PurchaseError::PaymentsUnavailable => {
            AppError::Unavailable("Payments are not configured on this server.".into()).with_status()
        }
        other => AppError::unavailable("The payment could not be started", other).with_status(),
    })?;
    Ok(CheckoutStart {
        payment_intent_id: started.payment_intent_id,
        client_secret: started.client_secret,
        publishable_key,
        stripe_js_url: svc.stripe_js_url.clone(),
        price: svc.terms.price.to_string(),
        revisions: started.revisions,
    })
}

#[server]
pub async fn confirm_payment(payment_intent_id: String) -> Result<PaymentView, AppError> {
    use crate::services::confirm::{confirm_purchase, ConfirmError, PaymentState};
    let svc = super::services()?;
    let Advertiser(user) = caller::<Advertiser>(&svc).await?;
    let confirmation = confirm_purchase(&svc, user.id, &payment_intent_id).await.map_err(|e| match e {
        ConfirmError::NotFound => AppError::NotFound.with_status(),
        ConfirmError::SlowDown(wait) => AppError::SlowDown(wait).with_status(),
        ConfirmError::Rejected(reason) => {
            // Loud: Stripe took money we will not credit automatically. An admin must look.
            tracing::error!(payment_intent_id, reason, "a succeeded payment was refused at confirmation");
            AppError::NeedsReview(
                "This payment needs a look from our team before it is credited. You will not be charged twice.".into(),
            )
            .with_status()
        }
        other => AppError::unavailable("The payment could not be checked", other).with_status(),
    })?;
    Ok(match confirmation.state {
        PaymentState::Credited => {
            PaymentView::Credited { available: confirmation.balance.available(), added: svc.terms.revisions_per_pack }
        }
        PaymentState::Pending { .. } => PaymentView::Pending,
        PaymentState::Failed { message } => PaymentView::Failed { message },
    })
}

/// An accessible modal dialog: labelled by its title, focus moved inside and kept there, Esc
/// and the close button close it.
#[component]
pub fn Modal(title: String, id: &'static str, on_close: Callback<()>, children: Children) -> impl IntoView {
    let title_id = format!("{id}-title");
    // Focus moves into the dialog, and back to what opened it when the dialog is gone.
    let focus_return = StoredValue::new_local(browser::FocusReturn::capture());
    on_cleanup(move || focus_return.dispose());
    Effect::new(move |_| browser::focus_first(id));
    // Esc and Tab are heard on the whole window, not only inside the dialog: a button disabled
    // while it works (Pay) loses focus to the page in Chromium, and a key pressed then would
    // never reach the dialog's own handler, leaving a modal the keyboard cannot close or enter.
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" {
            on_close.run(());
        } else {
            browser::keep_focus_inside(id, &ev);
        }
    });
    on_cleanup(move || keys.remove());
    view! {
        <div class="modal-backdrop">
            <div
                class="modal"
                id=id
                role="dialog"
                aria-modal="true"
                aria-labelledby=format!("{id}-title")
            >
                <div class="modal-head">
                    <h2 id=title_id>{title}</h2>
                    <button type="button" class="close" aria-label="Close" on:click=move |_| on_close.run(())>"×"</button>
                </div>
                {children()}
            </div>
        </div>
    }
}

#[derive(Debug, Clone, PartialEq)]
enum FormState {
    Loading,
    Ready,
    Paying,
    Failed(String),
}

/// Creates the PaymentIntent on the server (opened by a click, so only ever in the browser),
/// then shows the CheckoutForm for it.
#[component]
pub fn BuyRevisionModal(contract_id: i64, on_close: Callback<()>, on_paid: Callback<String>) -> impl IntoView {
    let start = LocalResource::new(move || buy_pack(contract_id));
    view! {
        <Modal title="Buy revisions".into() id="buy-modal" on_close>
            {move || match start.get() {
                None => view! { <p class="price" data-testid="price">"Preparing your payment…"</p> }.into_any(),
                Some(Err(e)) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                Some(Ok(start)) => view! { <CheckoutForm start on_paid/> }.into_any(),
            }}
        </Modal>
    }
}

/// The price, Stripe's Payment Element and the Pay button, with every message a payer may need:
/// Stripe's own words for card and validation errors, ours for anything unexpected.
#[component]
pub fn CheckoutForm(start: CheckoutStart, on_paid: Callback<String>) -> impl IntoView {
    let state = RwSignal::new(FormState::Loading);
    let checkout = StoredValue::new_local(None::<Rc<Checkout>>);
    let price_line = format!("{} revisions for {}", start.revisions, start.price);
    let pay_label = format!("Pay {}", start.price);

    // Runs once, after the form (and its #payment-element) is in the page.
    Effect::new(move |_| {
        let start = start.clone();
        spawn_local(async move {
            match Checkout::mount(
                &start.stripe_js_url,
                &start.publishable_key,
                &start.client_secret,
                "#payment-element",
            )
            .await
            {
                Ok(c) => {
                    checkout.set_value(Some(Rc::new(c)));
                    state.set(FormState::Ready);
                }
                Err(e) => state.set(FormState::Failed(format!("The payment form could not be loaded: {e}"))),
            }
        });
    });

    let pay = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(c) = checkout.get_value() else { return };
        state.set(FormState::Paying);
        spawn_local(async move {
            match c.confirm(&browser::page_url_without_query()).await {
                Ok(ConfirmResult::Done { payment_intent_id, status })
                    if status == "succeeded" || status == "processing" =>
                {
                    browser::mark("rs-confirmed");
                    on_paid.run(payment_intent_id);
                }
                Ok(ConfirmResult::Done { status, .. }) => state.set(FormState::Failed(format!(
                    "The payment did not complete (status: {}). Nothing was charged; please try again.",
                    status.replace('_', " ")
                ))),
                // A field problem (an incomplete number): the Payment Element shows it beside
                // the field itself; saying it here too would show it twice.
                Ok(ConfirmResult::Error { kind, .. }) if kind == "validation_error" => state.set(FormState::Ready),
                // Stripe's own messages are written for the payer: card declines, failed
                // authentication. The Element does not show these; the form does, once.
                Ok(ConfirmResult::Error { kind, message })
                    if matches!(kind.as_str(), "card_error" | "invalid_request_error") =>
                {
                    state.set(FormState::Failed(message))
                }
                Ok(ConfirmResult::Error { message, .. }) | Err(message) => state.set(FormState::Failed(format!(
                    "Something unexpected went wrong ({message}). Nothing was charged; please try again."
                ))),
            }
        });
    };

    view! {
        <form class="stack" on:submit=pay>
            <p class="price" data-testid="price">{price_line}</p>
            <div id="payment-element" class="payment-element"></div>
            {move || match state.get() {
                FormState::Failed(message) => Some(view! { <p class="error" role="alert">{message}</p> }),
                _ => None,
            }}
            <button
                type="submit"
                class="primary"
                disabled=move || !matches!(state.get(), FormState::Ready | FormState::Failed(_)) || checkout.with_value(Option::is_none)
            >
                {move || if state.get() == FormState::Paying { "Paying…".to_string() } else { pay_label.clone() }}
            </button>
        </form>
    }
}

#[derive(Debug, Clone, PartialEq)]
enum PendingState {
    Checking,
    Credited {
        available: i64,
        added: i64,
    },
    /// Past the patience limit: the payment is safe, the credit will appear.
    Slow,
    Failed(String),
    Error(String),
}

#[component]
pub fn PendingPaymentModal(
    payment_intent_id: String,
    on_credited: Callback<()>,
    on_close: Callback<()>,
    on_retry: Callback<()>,
) -> impl IntoView {
    let state = RwSignal::new(PendingState::Checking);
    let closed = Arc::new(AtomicBool::new(false));
    on_cleanup({
        let closed = closed.clone();
        move || closed.store(true, Ordering::Relaxed)
    });
    Effect::new(move |_| {
        let pi = payment_intent_id.clone();
        let closed = closed.clone();
        // A return from a redirect put the payment in the address: take it out, so a reload
        // does not run this again.
        browser::clear_query();
        browser::mark("rs-return");
        spawn_local(watch_payment(pi, closed, state, on_credited));
    });
    view! {
        <Modal title="Payment".into() id="pending-modal" on_close>
            <div aria-live="polite" class="stack">
                {move || match state.get() {
                    PendingState::Checking => view! {
                        <p class="processing"><span class="spinner" aria-hidden="true"></span>"Processing your payment…"</p>
                    }.into_any(),
                    PendingState::Credited { available, added } => view! {
                        <p class="success" data-testid="payment-succeeded">
                            {format!("Payment received: +{added} revisions. ")}
                            "You now have " <strong data-testid="new-available">{available}</strong> " available."
                        </p>
                        <button type="button" class="primary" on:click=move |_| on_close.run(())>"Done"</button>
                    }.into_any(),
                    PendingState::Slow => view! {
                        <p data-testid="payment-slow">
                            "Your payment is safe. Stripe has not told us it is complete yet; the revisions will appear on this contract as soon as it does. "
                            "There is no need to pay again."
                        </p>
                        <p class="processing"><span class="spinner" aria-hidden="true"></span>"Still checking…"</p>
                    }.into_any(),
                    PendingState::Failed(message) => view! {
                        <p class="error" role="alert">{message}</p>
                        <button type="button" class="primary" on:click=move |_| on_retry.run(())>"Try again"</button>
                    }.into_any(),
                    PendingState::Error(message) => view! {
                        <p class="error" role="alert">{message}</p>
                    }.into_any(),
                }}
            </div>
        </Modal>
    }
}

/// Asks the server about the payment until it is credited, fails, or the modal closes; past the
/// patience limit the modal says the payment is safe and keeps asking.
async fn watch_payment(pi: String, closed: Arc<AtomicBool>, state: RwSignal<PendingState>, on_credited: Callback<()>) {
    let started = browser::now_ms();
    let mut attempt = 0;
    while !closed.load(Ordering::Relaxed) {
        match confirm_payment(pi.clone()).await {
            Ok(PaymentView::Credited { available, added }) => {
                state.set(PendingState::Credited { available, added });
                browser::mark("rs-balance-shown");
                on_credited.run(());
                return;
            }
            Ok(PaymentView::Failed { message }) => {
                state.set(PendingState::Failed(message));
                return;
            }
            Err(e @ (AppError::NotFound | AppError::NotSignedIn | AppError::Forbidden | AppError::NeedsReview(_))) => {
                state.set(PendingState::Error(e.to_string()));
                return;
            }
            // Pending, or a passing failure (network, Stripe busy): ask again later.
            Ok(PaymentView::Pending) | Err(_) => {}
        }
        if browser::now_ms() - started > f64::from(PENDING_PATIENCE_MS) {
            state.update(|s| {
                if *s == PendingState::Checking {
                    *s = PendingState::Slow
                }
            });
        }
        browser::sleep_ms(poll_delay_ms(attempt)).await;
        attempt += 1;
    }
}
