/* The cashier's till: log in, scan or type a card's barcode, earn points, redeem rewards.
 *
 * Plain JavaScript, no dependencies. Everything the server sends is put in the page with
 * textContent, never innerHTML. Every API error is application/problem+json; its `detail`
 * (and for a 422 the field messages) is shown in the role="alert" #message element.
 *
 * Purchases and redemptions carry an Idempotency-Key. The key is made once per operation and
 * kept while the outcome is unknown (the network failed, or the server or a proxy answered
 * 5xx, or 409 "still being processed"), so pressing the button again repeats the same request
 * and the server counts it once. A new key is made only after a definite answer: success, or a
 * 4xx refusal (the server rolls back everything it did for a refused request).
 */
(() => {
  'use strict';

  const API = document.body.dataset.apiRoot || '/api/v1';
  const TOKEN_KEY = 'pointcard.till.token';
  const WANTED_FORMATS = ['qr_code', 'pdf417', 'aztec', 'code_128'];
  const AMOUNT = /^\d{1,10}(?:\.\d{1,2})?$/;

  const $ = (id) => document.getElementById(id);
  const el = {
    message: $('message'), notice: $('notice'), logout: $('logout'),
    loginView: $('login-view'), loginForm: $('login-form'), email: $('email'), password: $('password'),
    login: $('login'),
    tillView: $('till-view'), lookupForm: $('lookup-form'), barcode: $('barcode'), lookup: $('lookup'),
    scan: $('scan'), camera: $('camera'), video: $('camera-video'), stopScan: $('stop-scan'),
    card: $('card'), firstName: $('first-name'), memberNumber: $('member-number'), balance: $('balance'),
    tier: $('tier'), nextTier: $('next-tier'),
    purchaseForm: $('purchase-form'), amount: $('amount'), currency: $('currency'), addPurchase: $('add-purchase'),
    earned: $('earned'), redemption: $('redemption'), redemptionReward: $('redemption-reward'),
    redemptionCode: $('redemption-code'), rewards: $('rewards'), noRewards: $('no-rewards'),
    rewardTemplate: $('reward-template'), clear: $('clear'),
  };

  const state = {
    token: null,
    currency: null,
    card: null, // {barcode, data}: the card on screen
    pending: { purchase: null, redemption: null }, // {key, body} of a request whose outcome is unknown
    camera: { formats: [], stream: null, detector: null },
  };

  // --- errors and messages ---------------------------------------------------------------------

  class NetworkError extends Error {}

  class ApiError extends Error {
    constructor(status, problem) {
      super(`HTTP ${status}`);
      this.status = status;
      this.problem = problem && typeof problem === 'object' ? problem : {};
    }
  }

  function errorText(err) {
    if (err instanceof NetworkError) return err.message;
    if (err instanceof ApiError) {
      const p = err.problem;
      let text = (typeof p.detail === 'string' && p.detail) || (typeof p.title === 'string' && p.title)
        || `The server could not handle the request (HTTP ${err.status}). Try again.`;
      if (Array.isArray(p.errors)) {
        const lines = p.errors
          .filter((e) => e && typeof e.message === 'string')
          .map((e) => (typeof e.field === 'string' && e.field ? `${e.field}: ${e.message}` : e.message));
        if (lines.length) text += `\n${lines.join('\n')}`;
      }
      return text;
    }
    console.error(err); // a bug in this page: log it, but show the cashier something useful
    return 'Something went wrong on this page. Reload it and try again.';
  }

  function show(element, text) {
    element.textContent = text;
    element.hidden = !text;
  }

  function showError(text) {
    show(el.message, text);
    if (text) el.message.scrollIntoView({ block: 'nearest' }); // on a phone the cashier may be scrolled down
  }

  const showNotice = (text) => show(el.notice, text);

  function clearMessages() {
    showError('');
    showNotice('');
  }

  // --- HTTP ------------------------------------------------------------------------------------

  async function api(method, path, { body, key, auth = true } = {}) {
    const headers = { Accept: 'application/json, application/problem+json' };
    if (auth && state.token) headers.Authorization = `Bearer ${state.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (key) headers['Idempotency-Key'] = key;
    let response;
    let text;
    try {
      response = await fetch(API + path, { method, headers, body, cache: 'no-store', credentials: 'omit' });
      text = await response.text();
    } catch (err) {
      throw new NetworkError('The till could not reach the server. Check the connection and try again.');
    }
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (err) {
        data = null; // an HTML error page from a proxy, say: never shown as is
      }
    }
    if (response.ok) {
      if (data === null && response.status !== 204) {
        throw new NetworkError('The server\'s answer could not be read. Try again.');
      }
      return data;
    }
    throw new ApiError(response.status, data);
  }

  function newKey() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    // crypto.randomUUID exists only on HTTPS or localhost; getRandomValues exists everywhere.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /** Did the server give a definite answer, so that nothing is left to retry with this key? */
  function isDefinite(err) {
    const inProgress = String((err && err.problem && err.problem.type) || '').endsWith('/idempotency-request-in-progress');
    return err instanceof ApiError && err.status >= 400 && err.status < 500 && !inProgress;
  }

  /** No answer, or a server or proxy failure: the request may have been carried out or not. */
  function isUnknownOutcome(err) {
    return !(err instanceof ApiError) || err.status >= 500;
  }

  /** POST with an Idempotency-Key: the same key for the same request until a definite answer. */
  async function idempotentPost(kind, path, payload) {
    const body = JSON.stringify(payload);
    let pending = state.pending[kind];
    if (!pending || pending.body !== body) {
      pending = { key: newKey(), body };
      state.pending[kind] = pending;
    }
    try {
      const data = await api('POST', path, { body, key: pending.key });
      state.pending[kind] = null;
      return data;
    } catch (err) {
      if (isDefinite(err)) state.pending[kind] = null;
      throw err;
    }
  }

  /** Show an error; a 401 anywhere sends the cashier back to the login form with its detail. */
  function fail(err) {
    if (err instanceof ApiError && err.status === 401) {
      showLogin(errorText(err));
      return;
    }
    showError(errorText(err));
  }

  /** Disable a button while its request runs, so a double tap sends one request. */
  async function busy(button, work) {
    if (button.dataset.busy) return;
    const wasDisabled = button.disabled;
    button.dataset.busy = '1';
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      await work();
    } finally {
      delete button.dataset.busy;
      button.disabled = wasDisabled;
      button.removeAttribute('aria-busy');
    }
  }

  // --- log in and out --------------------------------------------------------------------------

  function showLogin(message) {
    stopCamera();
    state.token = null;
    state.currency = null;
    sessionStorage.removeItem(TOKEN_KEY);
    resetCard();
    el.barcode.value = '';
    el.tillView.hidden = true;
    el.logout.hidden = true;
    el.loginView.hidden = false;
    el.password.value = '';
    clearMessages();
    if (message) showError(message);
    el.email.focus();
  }

  async function enterTill() {
    el.loginView.hidden = true;
    el.tillView.hidden = false;
    el.logout.hidden = false;
    el.barcode.focus();
    await loadProgram();
  }

  async function loadProgram() {
    try {
      const program = await api('GET', '/program');
      state.currency = typeof program.currency === 'string' ? program.currency : null;
      el.currency.textContent = state.currency || '';
      return Boolean(state.currency);
    } catch (err) {
      fail(err);
      return false;
    }
  }

  function onLogin(event) {
    event.preventDefault();
    clearMessages();
    const email = el.email.value.trim();
    const password = el.password.value;
    if (!email || !password) {
      showError('Enter your e-mail and password.');
      (email ? el.password : el.email).focus();
      return;
    }
    busy(el.login, async () => {
      let result;
      try {
        result = await api('POST', '/auth/token', { body: JSON.stringify({ email, password }), auth: false });
      } catch (err) {
        showError(errorText(err)); // a 401 here is a wrong password: stay on the form
        el.password.select();
        return;
      }
      if (result.role !== 'cashier' && result.role !== 'admin') {
        showError('This account cannot use the till. Log in as a cashier.');
        return;
      }
      state.token = result.access_token;
      sessionStorage.setItem(TOKEN_KEY, state.token);
      el.password.value = '';
      await enterTill();
    });
  }

  function onLogout() {
    showLogin('');
    showNotice('You are logged out.');
  }

  // --- the card on screen ----------------------------------------------------------------------

  function resetCard() {
    state.card = null;
    state.pending.purchase = null;
    state.pending.redemption = null;
    el.card.hidden = true;
    el.amount.value = '';
    el.amount.readOnly = false;
    el.rewards.replaceChildren();
    show(el.earned, '');
    el.redemption.hidden = true;
  }

  function renderCard(data) {
    el.firstName.textContent = data.first_name;
    el.memberNumber.textContent = data.member_number;
    el.balance.textContent = String(data.balance);
    el.tier.textContent = data.tier || '—';
    el.nextTier.textContent = data.next_tier
      ? `${data.points_to_next_tier} points to ${data.next_tier}`
      : 'Top tier';
    const items = (data.rewards || []).map((reward) => {
      const item = el.rewardTemplate.content.firstElementChild.cloneNode(true);
      item.dataset.rewardId = String(reward.id);
      item.querySelector('.reward-name').textContent = reward.name;
      item.querySelector('.reward-cost').textContent = `${reward.points_cost} points`;
      const button = item.querySelector('.redeem');
      button.dataset.rewardId = String(reward.id);
      button.disabled = !reward.affordable;
      button.setAttribute('aria-label', `Redeem ${reward.name} for ${reward.points_cost} points`);
      return item;
    });
    el.rewards.replaceChildren(...items);
    el.noRewards.hidden = items.length > 0;
    el.card.hidden = false;
  }

  async function scanCard(barcode) {
    const data = await api('POST', '/pos/scan', { body: JSON.stringify({ barcode }) });
    state.card = { barcode, data };
    renderCard(data);
  }

  function lookUp(raw) {
    const barcode = raw.trim();
    clearMessages();
    if (!barcode) {
      showError('Scan or type the card\'s barcode first.');
      el.barcode.focus();
      return Promise.resolve();
    }
    return busy(el.lookup, async () => {
      try {
        if (state.card && state.card.barcode === barcode) {
          // The same card again (say, to check a sale went through): keep a sale awaiting a retry.
          show(el.earned, '');
          el.redemption.hidden = true;
        } else {
          resetCard(); // another card: a new sale
        }
        await scanCard(barcode);
        el.amount.focus();
      } catch (err) {
        fail(err);
        el.barcode.select();
      }
    });
  }

  /** After a purchase or redemption: the new balance and which rewards are now affordable. */
  async function refreshCard() {
    if (!state.card) return;
    try {
      await scanCard(state.card.barcode);
    } catch (err) {
      fail(err);
    }
  }

  // --- earn ------------------------------------------------------------------------------------

  function normalizeAmount(raw) {
    const value = raw.trim().replace(',', '.');
    return AMOUNT.test(value) && Number(value) > 0 ? value : null;
  }

  function onAddPurchase(event) {
    event.preventDefault();
    if (!state.card) return;
    clearMessages();
    const amount = normalizeAmount(el.amount.value);
    if (!amount) {
      showError('Enter the amount as a number above zero, such as 12.50.');
      el.amount.focus();
      return;
    }
    el.amount.value = amount;
    busy(el.addPurchase, async () => {
      if (!state.currency && !(await loadProgram())) return;
      const { barcode } = state.card;
      let result;
      try {
        result = await idempotentPost('purchase', '/pos/purchases', { barcode, amount, currency: state.currency });
      } catch (err) {
        if (state.pending.purchase && isUnknownOutcome(err)) {
          // Keep the amount as it is, so that a retry repeats the same sale with the same key.
          el.amount.readOnly = true;
          showError(`${errorText(err)}\nThe purchase may or may not have been recorded. `
            + 'Press "Add purchase" again: it will not be counted twice.');
        } else if (state.pending.purchase) {
          fail(err); // the first try is still being processed; its detail says to retry
        } else {
          el.amount.readOnly = false;
          fail(err);
        }
        return;
      }
      el.amount.readOnly = false;
      el.amount.value = '';
      show(el.earned, `+${result.points_earned} points`);
      el.balance.textContent = String(result.balance);
      showNotice(`Purchase of ${amount} ${state.currency} added. New balance: ${result.balance} points.`);
      await refreshCard();
    });
  }

  // --- redeem ----------------------------------------------------------------------------------

  function onRewardClick(event) {
    const button = event.target.closest('button.redeem');
    if (!button || !state.card) return;
    clearMessages();
    const rewardId = Number(button.dataset.rewardId);
    busy(button, async () => {
      let result;
      try {
        const payload = { barcode: state.card.barcode, reward_id: rewardId };
        result = await idempotentPost('redemption', '/pos/redemptions', payload);
      } catch (err) {
        if (state.pending.redemption && isUnknownOutcome(err)) {
          showError(`${errorText(err)}\nThe reward may or may not have been redeemed. `
            + 'Press "Redeem" on it again: it will not be charged twice.');
        } else {
          fail(err);
        }
        return;
      }
      el.redemptionReward.textContent = result.reward;
      el.redemptionCode.textContent = result.code;
      el.redemption.hidden = false;
      el.redemption.scrollIntoView({ block: 'nearest' });
      el.balance.textContent = String(result.balance);
      showNotice(`${result.points_spent} points spent on ${result.reward}. New balance: ${result.balance} points.`);
      await refreshCard();
    });
  }

  function onClear() {
    clearMessages();
    stopCamera();
    resetCard();
    el.barcode.value = '';
    el.barcode.focus();
  }

  // --- camera ----------------------------------------------------------------------------------

  async function setUpCamera() {
    if (!('BarcodeDetector' in window) || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
    let formats = WANTED_FORMATS;
    try {
      if (typeof window.BarcodeDetector.getSupportedFormats === 'function') {
        const supported = await window.BarcodeDetector.getSupportedFormats();
        formats = WANTED_FORMATS.filter((format) => supported.includes(format));
      }
    } catch (err) {
      return;
    }
    if (!formats.length) return;
    state.camera.formats = formats;
    el.scan.hidden = false;
  }

  function cameraErrorText(err) {
    const name = err && err.name;
    if (name === 'NotAllowedError' || name === 'SecurityError') {
      return 'The camera is not allowed. Allow it in the browser settings, or type the barcode.';
    }
    if (name === 'NotFoundError' || name === 'OverconstrainedError') {
      return 'No camera was found. Type the barcode instead.';
    }
    return 'The camera could not be started. Type the barcode instead.';
  }

  async function startCamera() {
    clearMessages();
    if (state.camera.stream) return;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
    } catch (err) {
      showError(cameraErrorText(err));
      return;
    }
    let detector;
    try {
      detector = new window.BarcodeDetector({ formats: state.camera.formats });
    } catch (err) {
      stream.getTracks().forEach((track) => track.stop());
      showError('This browser cannot read barcodes with the camera. Type the barcode instead.');
      return;
    }
    state.camera.stream = stream;
    state.camera.detector = detector;
    el.video.srcObject = stream;
    el.camera.hidden = false;
    el.scan.disabled = true;
    try {
      await el.video.play();
    } catch (err) {
      if (state.camera.stream === stream) {
        stopCamera();
        showError(cameraErrorText(err));
      }
      return;
    }
    detectLoop(stream);
  }

  const pause = () => new Promise((resolve) => { setTimeout(resolve, 100); });

  async function detectLoop(stream) {
    while (state.camera.stream === stream) {
      let found = [];
      if (el.video.readyState >= 2) {
        try {
          found = await state.camera.detector.detect(el.video);
        } catch (err) {
          found = [];
        }
      }
      if (state.camera.stream !== stream) return;
      const hit = (found || []).find((code) => code && typeof code.rawValue === 'string' && code.rawValue.trim());
      if (hit) {
        stopCamera();
        el.barcode.value = hit.rawValue.trim();
        await lookUp(el.barcode.value);
        return;
      }
      await pause();
    }
  }

  function stopCamera() {
    const { stream } = state.camera;
    state.camera.stream = null;
    state.camera.detector = null;
    if (stream) stream.getTracks().forEach((track) => track.stop());
    el.video.pause();
    el.video.srcObject = null;
    el.camera.hidden = true;
    el.scan.disabled = false;
  }

  // --- wiring ----------------------------------------------------------------------------------

  el.loginForm.addEventListener('submit', onLogin);
  el.logout.addEventListener('click', onLogout);
  el.lookupForm.addEventListener('submit', (event) => {
    event.preventDefault();
    stopCamera();
    lookUp(el.barcode.value);
  });
  el.purchaseForm.addEventListener('submit', onAddPurchase);
  el.rewards.addEventListener('click', onRewardClick);
  el.clear.addEventListener('click', onClear);
  el.scan.addEventListener('click', startCamera);
  el.stopScan.addEventListener('click', stopCamera);
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) stopCamera();
  });

  setUpCamera();
  state.token = sessionStorage.getItem(TOKEN_KEY);
  if (state.token) {
    enterTill();
  } else {
    showLogin('');
  }
})();
