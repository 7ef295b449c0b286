// The sign-up page (/join): send the form to POST /api/v1/enroll and open the new card page.
// Every sentence shown comes from the page (data attributes rendered in the page's language);
// the API's own problem+json detail is shown as it comes. Without this script the same form
// posts to /join, which enrols through the same service.
(function () {
  const form = document.querySelector("[data-join]");
  if (!form) return;
  const errorBox = form.querySelector("[data-join-errors]");
  const errorList = form.querySelector("[data-join-error-list]");
  const status = form.querySelector("[data-join-status]");
  const submit = form.querySelector("[data-join-submit]");

  function showErrors(messages) {
    errorList.replaceChildren(...messages.map((message) => {
      const item = document.createElement("li");
      item.textContent = message;
      return item;
    }));
    errorBox.hidden = messages.length === 0;
    if (messages.length) errorBox.scrollIntoView({ block: "nearest" });
  }

  // problem+json: the detail, then each invalid field's own message when there are some.
  function problemMessages(problem) {
    const fields = (problem.errors || []).map((error) => `${error.field}: ${error.message}`);
    return [problem.detail || problem.title || String(problem.status)].concat(fields);
  }

  function enrolment() {
    const value = (name) => form.elements[name].value.trim();
    const consents = {};
    form.querySelectorAll("[data-consent]").forEach((box) => { consents[box.dataset.consent] = box.checked; });
    const body = {
      first_name: value("first_name"),
      last_name: value("last_name"),
      email: value("email") || null,
      phone: value("phone") || null,
      consents,
      // The exact text shown beside the boxes is what the customer agreed to.
      consent_text: form.querySelector("[data-consent-text]").textContent.trim().replace(/\s+/g, " "),
      referral_code: value("referral_code") || null,
    };
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) body.timezone = zone;
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = enrolment();
    if (!body.email && !body.phone) {
      showErrors([form.dataset.needContact]);
      return;
    }
    showErrors([]);
    submit.disabled = true;
    status.textContent = form.dataset.working;
    try {
      const response = await fetch("/api/v1/enroll", {
        method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({ status: response.status }));
      if (response.status === 201) {
        location.assign(answer.card_url);
        return;
      }
      showErrors(problemMessages(answer));
    } catch (error) {
      showErrors([form.dataset.offline]);
    }
    status.textContent = "";
    submit.disabled = false;
  });
})();
