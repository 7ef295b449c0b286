// Turn offers on the card page (/card/<secret>) on or off. The page gives a button with
// data-push-toggle and, in data-push-disclosure, the exact text shown next to it: that text is
// recorded as the customer's push opt-in. The button's words come from the page too, in its
// language: data-push-off (offers are off: "Get offers") and data-push-on ("Turn offers off").
(function () {
  const button = document.querySelector("[data-push-toggle]");
  if (!button || !("serviceWorker" in navigator) || !("PushManager" in window)) return;

  let token = null;
  async function customerToken() {
    if (!token) {
      const cardSecret = decodeURIComponent(location.pathname.split("/").pop());
      const response = await fetch("/api/v1/auth/card", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ card_token: cardSecret }) });
      token = (await response.json()).access_token;
    }
    return token;
  }
  const api = async (path, options = {}) => fetch(path, {
    ...options,
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + (await customerToken()) },
  });
  const b64ToBytes = (text) => {
    const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  };

  async function subscribe(registration) {
    const { public_key } = await (await fetch("/api/v1/push/vapid-public-key")).json();
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: b64ToBytes(public_key) });
    await api("/api/v1/me/push-subscriptions", { method: "POST", body: JSON.stringify({
      ...subscription.toJSON(), disclosure: button.dataset.pushDisclosure || null }) });
  }

  async function unsubscribe(subscription) {
    await api("/api/v1/me/push-subscriptions?endpoint=" + encodeURIComponent(subscription.endpoint),
              { method: "DELETE" });
    await subscription.unsubscribe();
  }

  navigator.serviceWorker.register("/push/static/push-sw.js").then(async (registration) => {
    const render = async () => {
      const label = (await registration.pushManager.getSubscription()) ? button.dataset.pushOn : button.dataset.pushOff;
      if (label) button.textContent = label;  // no attribute: keep the page's own text
      button.disabled = false;  // the page may render it disabled until this script can serve it
    };
    button.addEventListener("click", async () => {
      const current = await registration.pushManager.getSubscription();
      await (current ? unsubscribe(current) : subscribe(registration));
      await render();
    });
    await render();
  });
})();
