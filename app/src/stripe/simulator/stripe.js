/*
 * Revision Store's Stripe.js stand-in, served by the Stripe simulator in place of
 * https://js.stripe.com/v3/ so the app's browser code runs unchanged, offline.
 *
 * It implements the part of Stripe.js the app uses:
 *   Stripe(publishableKey)
 *   stripe.elements({clientSecret, appearance})
 *   elements.create('payment')  -> element.mount(selectorOrNode), element.on('ready'|'change', fn),
 *                                  element.unmount(), element.destroy()
 *   elements.submit()
 *   stripe.confirmPayment({elements, confirmParams: {return_url}, redirect})
 *   stripe.retrievePaymentIntent(clientSecret)
 * The mounted element is a small card form. It talks to the simulator's API with the
 * publishable key and the PaymentIntent's client secret, exactly as Stripe.js talks to Stripe,
 * and shows a 3-D Secure challenge (complete / fail) when the card asks for one.
 *
 * Promises resolve with {paymentIntent} or {error}, as Stripe.js's do; they reject only for
 * integration errors (wrong arguments), which Stripe.js throws as IntegrationError.
 */
(function () {
  'use strict';

  // Where the simulator is mounted: this script lives at <mount>/v3/...
  var here = document.currentScript && document.currentScript.src;
  var API_BASE = here ? new URL('..', here).href.replace(/\/$/, '') : '/stripe-sim';

  function integrationError(message) {
    var e = new Error(message);
    e.name = 'IntegrationError';
    return e;
  }

  function intentId(clientSecret) {
    var m = /^(pi_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+$/.exec(clientSecret || '');
    if (!m) throw integrationError('Invalid value for clientSecret: it should be a PaymentIntent client secret.');
    return m[1];
  }

  function encode(params) {
    return Object.keys(params)
      .filter(function (k) { return params[k] !== undefined && params[k] !== null; })
      .map(function (k) { return encodeURIComponent(k) + '=' + encodeURIComponent(params[k]); })
      .join('&');
  }

  // One call to the simulator's API; resolves {status, body}. A network failure becomes
  // Stripe.js's api_connection_error so callers handle it like any other error.
  function call(key, method, path, params) {
    var opts = { method: method, headers: { Authorization: 'Bearer ' + key } };
    var url = API_BASE + path;
    if (method === 'GET') {
      if (params) url += '?' + encode(params);
    } else {
      opts.headers['Content-Type'] = 'application/x-www-form-urlencoded';
      opts.body = encode(params || {});
    }
    return fetch(url, opts).then(
      function (r) {
        return r.json().then(
          function (body) { return { status: r.status, body: body }; },
          // Not JSON (a proxy's error page, say): an API error, like any other.
          function () { return { status: r.status, body: { error: { type: 'api_error', message: 'Stripe answered with an unreadable response (' + r.status + ').' } } }; }
        );
      },
      function () {
        return {
          status: 0,
          body: { error: { type: 'api_connection_error', message: 'Could not connect to Stripe. Check your connection and try again.' } },
        };
      }
    );
  }

  // The fields Stripe.js hands back to the browser (a publishable key sees no more).
  function clientIntent(pi) {
    var keep = ['id', 'object', 'amount', 'currency', 'status', 'client_secret', 'created', 'livemode',
      'payment_method', 'next_action', 'last_payment_error', 'description'];
    var out = {};
    keep.forEach(function (k) { if (k in pi) out[k] = pi[k]; });
    return out;
  }

  // ---- the card form -------------------------------------------------------------------

  var STYLE_ID = 'stripe-sim-style';
  var CSS = [
    '.stripe-sim-pe{display:grid;gap:.75rem;font:inherit;color:var(--sim-text,#1a1f36)}',
    '.stripe-sim-pe label{display:grid;gap:.25rem;font-size:.9rem}',
    '.stripe-sim-pe input{font:inherit;padding:.6rem .7rem;border:1px solid #c9ced8;border-radius:var(--sim-radius,6px);background:#fff;color:inherit;min-width:0}',
    '.stripe-sim-pe input:focus{outline:2px solid var(--sim-primary,#635bff);outline-offset:1px}',
    '.stripe-sim-pe input[aria-invalid=true]{border-color:var(--sim-danger,#df1b41)}',
    '.stripe-sim-pe .row{display:grid;grid-template-columns:1fr 1fr;gap:.75rem}',
    '.stripe-sim-pe .err{color:var(--sim-danger,#df1b41);font-size:.85rem;min-height:1.1em;margin:0}',
    '.stripe-sim-pe .note{font-size:.8rem;color:#697386;margin:0}',
    '.stripe-sim-3ds{position:fixed;inset:0;background:rgba(10,15,30,.6);display:grid;place-items:center;z-index:2147483000}',
    '.stripe-sim-3ds div{background:#fff;color:#1a1f36;border-radius:8px;padding:1.5rem;max-width:22rem;width:calc(100% - 2rem);display:grid;gap:1rem;font:16px system-ui,sans-serif}',
    '.stripe-sim-3ds h2{margin:0;font-size:1.15rem}',
    '.stripe-sim-3ds button{font:inherit;padding:.6rem;border-radius:6px;border:1px solid #c9ced8;cursor:pointer}',
    '.stripe-sim-3ds button.complete{background:#635bff;color:#fff;border-color:#635bff}',
  ].join('\n');

  function injectStyle() {
    if (document.getElementById(STYLE_ID)) return;
    var s = document.createElement('style');
    s.id = STYLE_ID;
    s.textContent = CSS;
    document.head.appendChild(s);
  }

  function digits(s) { return (s || '').replace(/[\s-]/g, ''); }

  function luhn(d) {
    var sum = 0;
    for (var i = 0; i < d.length; i++) {
      var n = d.charCodeAt(d.length - 1 - i) - 48;
      if (i % 2 === 1) { n *= 2; if (n > 9) n -= 9; }
      sum += n;
    }
    return sum % 10 === 0;
  }

  // Checks the form as Stripe's element does before anything is sent, with its messages.
  function validate(v, now) {
    var number = digits(v.number);
    if (!number) return { code: 'incomplete_number', field: 'number', message: 'Your card number is incomplete.' };
    if (!/^\d+$/.test(number) || number.length > 19) return { code: 'invalid_number', field: 'number', message: 'Your card number is invalid.' };
    if (number.length < 13) return { code: 'incomplete_number', field: 'number', message: 'Your card number is incomplete.' };
    if (!luhn(number)) return { code: 'invalid_number', field: 'number', message: 'Your card number is invalid.' };
    var exp = /^\s*(\d{1,2})\s*\/?\s*(\d{2})\s*$/.exec(v.expiry || '');
    if (!exp) return { code: 'incomplete_expiry', field: 'expiry', message: "Your card's expiration date is incomplete." };
    var month = +exp[1], year = 2000 + +exp[2];
    if (month < 1 || month > 12) return { code: 'invalid_expiry_month', field: 'expiry', message: "Your card's expiration date is invalid." };
    if (year < now.getFullYear()) return { code: 'invalid_expiry_year_past', field: 'expiry', message: "Your card's expiration year is in the past." };
    if (year === now.getFullYear() && month < now.getMonth() + 1) return { code: 'invalid_expiry_month_past', field: 'expiry', message: "Your card's expiration date is in the past." };
    var cvc = (v.cvc || '').trim();
    if (!/^\d{3,4}$/.test(cvc)) return { code: 'incomplete_cvc', field: 'cvc', message: "Your card's security code is incomplete." };
    return null;
  }

  var nextId = 1;

  function PaymentElement(elements) {
    this._elements = elements;
    this._handlers = {};
    this._root = null;
    this._uid = 'stripe-sim-' + nextId++;
  }

  PaymentElement.prototype.on = function (event, handler) {
    (this._handlers[event] = this._handlers[event] || []).push(handler);
    return this;
  };

  PaymentElement.prototype._emit = function (event, payload) {
    (this._handlers[event] || []).forEach(function (h) { h(payload); });
  };

  PaymentElement.prototype.mount = function (target) {
    var host = typeof target === 'string' ? document.querySelector(target) : target;
    if (!host) throw integrationError('The selector you specified (' + target + ') applies to no DOM elements that are currently on the page.');
    injectStyle();
    var id = this._uid;
    var vars = (this._elements._appearance && this._elements._appearance.variables) || {};
    var root = document.createElement('div');
    root.className = 'stripe-sim-pe';
    if (vars.colorPrimary) root.style.setProperty('--sim-primary', vars.colorPrimary);
    if (vars.colorDanger) root.style.setProperty('--sim-danger', vars.colorDanger);
    if (vars.colorText) root.style.setProperty('--sim-text', vars.colorText);
    if (vars.borderRadius) root.style.setProperty('--sim-radius', vars.borderRadius);
    root.innerHTML =
      '<label for="' + id + '-number">Card number' +
      '<input id="' + id + '-number" name="cardnumber" autocomplete="cc-number" inputmode="numeric" placeholder="1234 1234 1234 1234" aria-describedby="' + id + '-err"></label>' +
      '<div class="row">' +
      '<label for="' + id + '-expiry">Expiration date' +
      '<input id="' + id + '-expiry" name="exp-date" autocomplete="cc-exp" inputmode="numeric" placeholder="MM / YY" aria-describedby="' + id + '-err"></label>' +
      '<label for="' + id + '-cvc">Security code' +
      '<input id="' + id + '-cvc" name="cvc" autocomplete="cc-csc" inputmode="numeric" placeholder="CVC" aria-describedby="' + id + '-err"></label>' +
      '</div>' +
      '<p class="err" id="' + id + '-err" role="alert"></p>' +
      '<p class="note">Stripe simulator: use a test card such as 4242 4242 4242 4242.</p>';
    host.appendChild(root);
    this._root = root;
    var self = this;
    root.addEventListener('input', function () {
      var v = self._values();
      var empty = !v.number && !v.expiry && !v.cvc;
      var problem = validate(v, new Date());
      self._showError(null);
      self._emit('change', { elementType: 'payment', empty: empty, complete: !problem, value: { type: 'card' } });
    });
    setTimeout(function () { self._emit('ready', { elementType: 'payment' }); }, 0);
    return this;
  };

  PaymentElement.prototype._field = function (name) {
    return this._root && this._root.querySelector('#' + this._uid + '-' + name);
  };

  PaymentElement.prototype._values = function () {
    var f = this._field.bind(this);
    return { number: f('number') ? f('number').value : '', expiry: f('expiry') ? f('expiry').value : '', cvc: f('cvc') ? f('cvc').value : '' };
  };

  PaymentElement.prototype._showError = function (problem) {
    if (!this._root) return;
    var self = this;
    ['number', 'expiry', 'cvc'].forEach(function (n) {
      self._field(n).setAttribute('aria-invalid', problem && problem.field === n ? 'true' : 'false');
    });
    this._root.querySelector('.err').textContent = problem ? problem.message : '';
  };

  PaymentElement.prototype._setBusy = function (busy) {
    if (!this._root) return;
    var self = this;
    ['number', 'expiry', 'cvc'].forEach(function (n) { self._field(n).disabled = busy; });
  };

  PaymentElement.prototype.unmount = function () {
    if (this._root && this._root.parentNode) this._root.parentNode.removeChild(this._root);
    this._root = null;
  };

  PaymentElement.prototype.destroy = function () {
    this.unmount();
    this._elements._element = null;
  };

  // Validates the mounted form; resolves {error} with Stripe's validation_error, or {}.
  PaymentElement.prototype._check = function () {
    var problem = validate(this._values(), new Date());
    this._showError(problem);
    return problem ? { error: { type: 'validation_error', code: problem.code, message: problem.message } } : null;
  };

  function Elements(stripe, options) {
    this._stripe = stripe;
    this._clientSecret = options.clientSecret;
    this._appearance = options.appearance || {};
    this._element = null;
    if (this._clientSecret) intentId(this._clientSecret);
  }

  Elements.prototype.create = function (type) {
    if (type !== 'payment') throw integrationError('The Stripe simulator implements only the Payment Element, not "' + type + '".');
    if (this._element) throw integrationError('Can only create one Element of type payment.');
    this._element = new PaymentElement(this);
    return this._element;
  };

  Elements.prototype.getElement = function (type) {
    return type === 'payment' ? this._element : null;
  };

  Elements.prototype.submit = function () {
    if (!this._element || !this._element._root) return Promise.reject(integrationError('elements.submit(): no mounted Payment Element.'));
    return Promise.resolve(this._element._check() || {});
  };

  // ---- 3-D Secure ------------------------------------------------------------------------

  // The challenge Stripe would show in a modal: the cardholder completes or fails it.
  function challenge(pi) {
    return new Promise(function (resolve) {
      var overlay = document.createElement('div');
      overlay.className = 'stripe-sim-3ds';
      overlay.innerHTML =
        '<div role="dialog" aria-modal="true" aria-labelledby="stripe-sim-3ds-title">' +
        '<h2 id="stripe-sim-3ds-title">3D Secure 2 test page</h2>' +
        '<p>Your bank asks you to confirm this payment of ' +
        (pi.amount / 100).toFixed(2) + ' ' + String(pi.currency).toUpperCase() + '.</p>' +
        '<button type="button" class="complete">Complete authentication</button>' +
        '<button type="button" class="fail">Fail authentication</button>' +
        '</div>';
      document.body.appendChild(overlay);
      var complete = overlay.querySelector('.complete');
      complete.focus();
      function done(outcome) {
        overlay.parentNode.removeChild(overlay);
        resolve(outcome);
      }
      complete.addEventListener('click', function () { done('complete'); });
      overlay.querySelector('.fail').addEventListener('click', function () { done('fail'); });
    });
  }

  // ---- Stripe ----------------------------------------------------------------------------

  function Stripe(key) {
    if (!(this instanceof Stripe)) return new Stripe(key);
    if (typeof key !== 'string' || !/^pk_test_/.test(key)) {
      throw integrationError('The Stripe simulator needs a test publishable key (pk_test_...).');
    }
    this._key = key;
  }

  Stripe.prototype.elements = function (options) {
    return new Elements(this, options || {});
  };

  Stripe.prototype.retrievePaymentIntent = function (clientSecret) {
    var id = intentId(clientSecret);
    return call(this._key, 'GET', '/v1/payment_intents/' + id, { client_secret: clientSecret }).then(function (r) {
      return r.body.error ? { error: r.body.error } : { paymentIntent: clientIntent(r.body) };
    });
  };

  Stripe.prototype.confirmPayment = function (options) {
    options = options || {};
    var elements = options.elements;
    var params = options.confirmParams || {};
    var redirect = options.redirect || 'always';
    if (!elements || !(elements instanceof Elements)) return Promise.reject(integrationError('confirmPayment(): elements is required.'));
    if (redirect !== 'always' && redirect !== 'if_required') return Promise.reject(integrationError('confirmPayment(): redirect must be "always" or "if_required".'));
    if (redirect === 'always' && !params.return_url) return Promise.reject(integrationError('confirmPayment(): confirmParams.return_url is required.'));
    var element = elements._element;
    if (!element || !element._root) return Promise.reject(integrationError('confirmPayment(): the Payment Element is not mounted.'));
    var clientSecret = options.clientSecret || elements._clientSecret;
    var id = intentId(clientSecret);
    var invalid = element._check();
    if (invalid) return Promise.resolve(invalid);

    var key = this._key;
    var v = element._values();
    var exp = /^\s*(\d{1,2})\s*\/?\s*(\d{2})\s*$/.exec(v.expiry);
    element._setBusy(true);
    return call(key, 'POST', '/v1/payment_intents/' + id + '/confirm', {
      client_secret: clientSecret,
      return_url: params.return_url,
      'payment_method_data[type]': 'card',
      'payment_method_data[card][number]': digits(v.number),
      'payment_method_data[card][exp_month]': +exp[1],
      'payment_method_data[card][exp_year]': 2000 + +exp[2],
      'payment_method_data[card][cvc]': v.cvc.trim(),
    })
      .then(function (r) {
        if (r.body.error) return { error: r.body.error };
        var pi = r.body;
        if (pi.status !== 'requires_action') return { pi: pi };
        return challenge(pi).then(function (outcome) {
          return call(key, 'POST', '/_simulator/payment_intents/' + id + '/authenticate', { outcome: outcome });
        }).then(function (a) {
          if (a.body.error) return { error: a.body.error };
          if (a.body.status === 'requires_payment_method' && a.body.last_payment_error) {
            var e = {};
            for (var k in a.body.last_payment_error) e[k] = a.body.last_payment_error[k];
            e.payment_intent = clientIntent(a.body);
            // Stripe.js redirects after a challenge only when asked to always redirect.
            return redirect === 'always' ? { pi: a.body } : { error: e };
          }
          return { pi: a.body };
        });
      })
      .then(null, function (e) {
        // Whatever went wrong, the form must not stay frozen.
        element._setBusy(false);
        throw e;
      })
      .then(function (result) {
        element._setBusy(false);
        if (result.error) {
          // Like Stripe's Payment Element: its own field problems show inside it; a decline or a
          // failed authentication is only returned, for the page to show (once).
          if (result.error.type === 'validation_error') element._showError({ field: 'number', message: result.error.message });
          return { error: result.error };
        }
        var pi = result.pi;
        if (redirect === 'always') {
          var url = new URL(params.return_url, window.location.href);
          url.searchParams.set('payment_intent', pi.id);
          url.searchParams.set('payment_intent_client_secret', clientSecret);
          url.searchParams.set('redirect_status', pi.status === 'succeeded' ? 'succeeded' : pi.status === 'processing' ? 'processing' : 'failed');
          window.location.assign(url.href);
          // Stripe.js's promise never settles when it navigates away.
          return new Promise(function () {});
        }
        return { paymentIntent: clientIntent(pi) };
      });
  };

  Stripe.version = 3;
  Stripe.simulated = true;
  window.Stripe = Stripe;
})();
