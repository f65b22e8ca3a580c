// Hatchery dashboard: a task's page follows the task while it runs. The page says where its event
// stream is (#task[data-events]: /v1/tasks/{id}/events, or /v1/tools/executions/{id}/events for a
// tool execution; the session's cookie authorises it) and what status it shows (data-status).
// On a change of status the page is loaded again (it is rendered by the server); the stream ends
// after the terminal event. Without EventSource the page reloads every few seconds instead.
"use strict";
(function () {
  const box = document.getElementById("task");
  if (!box || !box.dataset.events) return;
  const shown = box.dataset.status;
  const live = document.getElementById("task-live");
  // The VideoGen API's words for the statuses, in the Egg API's.
  const same = { running: "processing", succeeded: "completed" };
  const names = ["pending", "processing", "running", "completed", "succeeded", "failed", "cancelled"];
  let reloading = false;

  function reload(status) {
    if (reloading) return;
    reloading = true;
    if (live) live.textContent = "It is " + status + " now: loading the page again…";
    window.location.reload();
  }

  if (typeof window.EventSource !== "function") {
    window.setTimeout(function () { reload("perhaps changed"); }, 5000);
    return;
  }
  const source = new EventSource(box.dataset.events);
  function changed(event) {
    const status = same[event.type] || event.type;
    if (status === shown) return;
    source.close();
    reload(status);
  }
  names.forEach(function (name) { source.addEventListener(name, changed); });
  window.addEventListener("pagehide", function () { source.close(); });
})();
