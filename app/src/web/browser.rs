//! The browser side of checkout: wasm-bindgen bindings to Stripe.js (Stripe's own script in
//! production, the simulator's same-origin stand-in in simulator mode; the same calls either
//! way) and the few browser APIs the payment flow needs. On the server every function here is
//! an inert twin, because components compile for both sides and effects only run in the browser.

/// What `stripe.confirmPayment` resolved with.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfirmResult {
    /// No redirect was needed: the PaymentIntent's id and status.
    Done { payment_intent_id: String, status: String },
    /// Stripe.js's `{error}`: its type (`card_error`, `validation_error`, ...) and message.
    Error { kind: String, message: String },
}

#[cfg(feature = "hydrate")]
mod imp {
    use super::ConfirmResult;
    use js_sys::{Object, Promise, Reflect};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::JsFuture;

    #[wasm_bindgen(inline_js = "
        export function load_script(url) {
            if (window.Stripe) return Promise.resolve();
            return new Promise(function (resolve, reject) {
                var s = document.createElement('script');
                s.src = url;
                s.onload = function () { resolve(); };
                s.onerror = function () { reject(new Error('Stripe.js could not be loaded from ' + url)); };
                document.head.appendChild(s);
            });
        }")]
    extern "C" {
        fn load_script(url: &str) -> Promise;
    }

    #[wasm_bindgen]
    extern "C" {
        pub type Stripe;
        #[wasm_bindgen(catch, js_name = Stripe)]
        fn stripe_new(publishable_key: &str) -> Result<Stripe, JsValue>;
        #[wasm_bindgen(method, catch)]
        fn elements(this: &Stripe, options: &JsValue) -> Result<Elements, JsValue>;
        #[wasm_bindgen(method, js_name = confirmPayment)]
        fn confirm_payment(this: &Stripe, options: &JsValue) -> Promise;

        pub type Elements;
        #[wasm_bindgen(method, catch)]
        fn create(this: &Elements, kind: &str) -> Result<PaymentElement, JsValue>;

        pub type PaymentElement;
        #[wasm_bindgen(method, catch)]
        fn mount(this: &PaymentElement, selector: &str) -> Result<(), JsValue>;
        #[wasm_bindgen(method)]
        fn destroy(this: &PaymentElement);
    }

    fn message(e: &JsValue) -> String {
        Reflect::get(e, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .or_else(|| e.as_string())
            .unwrap_or_else(|| "unknown error".into())
    }

    fn text(o: &JsValue, key: &str) -> Option<String> {
        Reflect::get(o, &key.into()).ok().and_then(|v| v.as_string())
    }

    /// A mounted Payment Element, ready to confirm.
    pub struct Checkout {
        stripe: Stripe,
        elements: Elements,
        element: PaymentElement,
    }

    impl Checkout {
        /// Loads Stripe.js from `script_url` (once per page) and mounts the Payment Element for
        /// `client_secret` into `selector`.
        pub async fn mount(
            script_url: &str,
            publishable_key: &str,
            client_secret: &str,
            selector: &str,
        ) -> Result<Self, String> {
            JsFuture::from(load_script(script_url)).await.map_err(|e| message(&e))?;
            let stripe = stripe_new(publishable_key).map_err(|e| message(&e))?;
            let options = js_sys::JSON::parse(
                &serde_json::json!({
                    "clientSecret": client_secret,
                    "appearance": {"theme": "stripe", "variables": {"colorPrimary": "#1f4e8c", "borderRadius": "6px"}},
                })
                .to_string(),
            )
            .map_err(|e| message(&e))?;
            let elements = stripe.elements(&options).map_err(|e| message(&e))?;
            let element = elements.create("payment").map_err(|e| message(&e))?;
            element.mount(selector).map_err(|e| message(&e))?;
            Ok(Self { stripe, elements, element })
        }

        /// `confirmPayment` with `redirect: 'if_required'`: cards (3-D Secure included) finish
        /// here; redirect-based methods leave for `return_url` and come back to it.
        pub async fn confirm(&self, return_url: &str) -> Result<ConfirmResult, String> {
            let options = Object::new();
            let params = Object::new();
            Reflect::set(&params, &"return_url".into(), &return_url.into()).map_err(|e| message(&e))?;
            Reflect::set(&options, &"elements".into(), &self.elements).map_err(|e| message(&e))?;
            Reflect::set(&options, &"confirmParams".into(), &params).map_err(|e| message(&e))?;
            Reflect::set(&options, &"redirect".into(), &"if_required".into()).map_err(|e| message(&e))?;
            let result = JsFuture::from(self.stripe.confirm_payment(&options)).await.map_err(|e| message(&e))?;
            let error = Reflect::get(&result, &"error".into()).unwrap_or(JsValue::UNDEFINED);
            if !error.is_undefined() && !error.is_null() {
                return Ok(ConfirmResult::Error {
                    kind: text(&error, "type").unwrap_or_default(),
                    message: text(&error, "message").unwrap_or_else(|| "The payment failed.".into()),
                });
            }
            let pi = Reflect::get(&result, &"paymentIntent".into()).map_err(|e| message(&e))?;
            Ok(ConfirmResult::Done {
                payment_intent_id: text(&pi, "id").ok_or("Stripe.js returned no PaymentIntent")?,
                status: text(&pi, "status").unwrap_or_default(),
            })
        }
    }

    impl Drop for Checkout {
        fn drop(&mut self) {
            self.element.destroy();
        }
    }

    fn window() -> web_sys::Window {
        web_sys::window().expect("a browser window")
    }

    pub async fn sleep_ms(ms: u32) {
        let promise = Promise::new(&mut |resolve, _| {
            let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
        });
        let _ = JsFuture::from(promise).await;
    }

    /// This page's address without its query string: the `return_url` for Stripe.
    pub fn page_url_without_query() -> String {
        let loc = window().location();
        format!("{}{}", loc.origin().unwrap_or_default(), loc.pathname().unwrap_or_default())
    }

    /// Removes the query string without a reload, so a reload cannot re-trigger a confirmation.
    pub fn clear_query() {
        let path = window().location().pathname().unwrap_or_default();
        if let Ok(history) = window().history() {
            let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&path));
        }
    }

    /// A `performance.mark`, read by the browser benchmark (never by tests' assertions).
    pub fn mark(name: &str) {
        if let Some(p) = window().performance() {
            let _ = p.mark(name);
        }
    }

    pub fn now_ms() -> f64 {
        window().performance().map(|p| p.now()).unwrap_or_default()
    }

    /// Remembers what had focus when a dialog opened and gives it back when the dialog goes.
    pub struct FocusReturn(Option<web_sys::HtmlElement>);

    impl FocusReturn {
        pub fn capture() -> Self {
            Self(window().document().and_then(|d| d.active_element()).and_then(|e| e.dyn_into().ok()))
        }
    }

    impl Drop for FocusReturn {
        fn drop(&mut self) {
            if let Some(e) = &self.0 {
                let _ = e.focus();
            }
        }
    }

    const FOCUSABLE: &str = "button:not([disabled]), [href], input:not([disabled]), select:not([disabled]), \
         textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

    fn focusables(dialog_id: &str) -> Vec<web_sys::HtmlElement> {
        let Some(dialog) = window().document().and_then(|d| d.get_element_by_id(dialog_id)) else { return vec![] };
        let Ok(list) = dialog.query_selector_all(FOCUSABLE) else { return vec![] };
        (0..list.length())
            .filter_map(|i| list.item(i))
            .filter_map(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
            .collect()
    }

    /// Moves focus into a dialog that just opened.
    pub fn focus_first(dialog_id: &str) {
        if let Some(first) = focusables(dialog_id).first() {
            let _ = first.focus();
        }
    }

    /// Tab from the last focusable element wraps to the first (Shift+Tab the other way), so
    /// keyboard focus stays inside the open dialog. Focus found outside it (the button that had
    /// it was disabled or removed, and the browser moved focus to the page) comes back in.
    pub fn keep_focus_inside(dialog_id: &str, ev: &web_sys::KeyboardEvent) {
        if ev.key() != "Tab" {
            return;
        }
        let items = focusables(dialog_id);
        let (Some(first), Some(last)) = (items.first(), items.last()) else { return };
        let document = window().document();
        let active = document.as_ref().and_then(|d| d.active_element());
        let dialog = document.as_ref().and_then(|d| d.get_element_by_id(dialog_id));
        let inside = match (&dialog, &active) {
            (Some(dialog), Some(active)) => dialog.contains(Some(active.unchecked_ref::<web_sys::Node>())),
            _ => false,
        };
        let at = |e: &web_sys::HtmlElement| active.as_ref().is_some_and(|a| a == e.unchecked_ref::<web_sys::Element>());
        if !inside {
            ev.prevent_default();
            let _ = if ev.shift_key() { last.focus() } else { first.focus() };
        } else if ev.shift_key() && at(first) {
            ev.prevent_default();
            let _ = last.focus();
        } else if !ev.shift_key() && at(last) {
            ev.prevent_default();
            let _ = first.focus();
        }
    }
}

#[cfg(not(feature = "hydrate"))]
mod imp {
    use super::ConfirmResult;

    pub struct Checkout;

    impl Checkout {
        pub async fn mount(_: &str, _: &str, _: &str, _: &str) -> Result<Self, String> {
            Err("payments run in the browser".into())
        }
        pub async fn confirm(&self, _: &str) -> Result<ConfirmResult, String> {
            Err("payments run in the browser".into())
        }
    }

    pub async fn sleep_ms(_: u32) {}
    pub fn page_url_without_query() -> String {
        String::new()
    }
    pub fn clear_query() {}
    pub fn mark(_: &str) {}
    pub fn now_ms() -> f64 {
        0.0
    }
    pub fn focus_first(_: &str) {}
    pub struct FocusReturn;
    impl FocusReturn {
        pub fn capture() -> Self {
            FocusReturn
        }
    }
    pub fn keep_focus_inside(_: &str, _: &leptos::ev::KeyboardEvent) {}
}

pub use imp::*;
