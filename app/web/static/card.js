// The card page's own behaviour: consent toggles and "Offers near me". The page URL's last
// segment is the card secret; it is exchanged for a short customer token for the API.
(function () {
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
  const api = async (path, method, body) => fetch(path, {
    method, body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + (await customerToken()) },
  });
  const saveConsents = (consents, disclosure) => api("/api/v1/me/consents", "PUT", { consents, disclosure });

  // Each toggle is recorded on its own, with the text shown above the toggles.
  const consentStatus = document.querySelector("[data-consent-status]");
  const consentText = document.querySelector("[data-consent-disclosure]").textContent.trim();
  document.querySelectorAll("[data-consent]").forEach((box) => {
    box.addEventListener("change", async () => {
      const response = await saveConsents({ [box.dataset.consent]: box.checked }, consentText);
      consentStatus.textContent = response.ok ? consentStatus.dataset.saved : "";
    });
  });

  // Offers near me: opt in to location (with the text beside the button), then send the
  // position while the page is open. The server throttles and matches; we show what it found.
  const nearButton = document.querySelector("[data-near-me]");
  const nearStatus = document.querySelector("[data-near-status]");
  const nearList = document.querySelector("[data-near-offers]");
  const shown = new Set();
  let watching = null;

  function show(offers) {
    for (const offer of offers) {
      if (shown.has(offer.id)) continue;
      shown.add(offer.id);
      const item = document.createElement("li");
      item.dataset.offer = offer.id;
      const title = document.createElement("strong");
      title.textContent = offer.title;
      item.append(title, " ", offer.body);
      nearList.append(item);
    }
    nearStatus.textContent = shown.size ? "" : nearButton.dataset.none;
  }

  async function send(position) {
    const { latitude, longitude, accuracy } = position.coords;
    const response = await api("/api/v1/me/location", "POST", { latitude, longitude, accuracy });
    if (response.ok) show((await response.json()).offers);  // 429: too soon, the next fix will do
  }

  nearButton.addEventListener("click", async () => {
    if (watching !== null || !("geolocation" in navigator)) return;
    const response = await saveConsents({ location: true }, nearButton.dataset.disclosure);
    if (!response.ok) return;
    const box = document.querySelector('[data-consent="location"]');
    if (box) box.checked = true;
    nearStatus.textContent = nearButton.dataset.waiting;
    watching = navigator.geolocation.watchPosition(send, () => {
      nearStatus.textContent = nearButton.dataset.denied;
    }, { enableHighAccuracy: true, maximumAge: 10000 });
  });
})();
