// Hatchery dashboard: what every page shares. No framework and no build step.
// - window.hatchery.api(method, path, body): a call to the server's API with the session's
//   cookie and its CSRF token (X-CSRF-Token), answering the parsed JSON or throwing an Error
//   whose message is the API's.
// - [data-copy="#id"] buttons copy the text of the element named.
// - forms with data-confirm="question" ask first.
"use strict";
(function () {
  const csrf = document.body.dataset.csrf || "";

  async function api(method, path, body) {
    const headers = { "X-CSRF-Token": csrf };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!response.ok) {
      const message = (data && ((data.error && data.error.message) || data.message)) || response.statusText;
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  document.addEventListener("click", async function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (!source) return;
    const text = source.value !== undefined && source.tagName === "INPUT" ? source.value : source.textContent.trim();
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch (e) {
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    }
  });

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  window.hatchery = { api };
})();
