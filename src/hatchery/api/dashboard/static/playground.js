// Hatchery dashboard: the playground. Submits form#playground-form as the API call it stands for
// (POST data-endpoint, with the session: window.hatchery.api), then follows the task's event
// stream (data-task-path + id + "/events"), announcing each status in #playground-status, and
// when it has ended reads the task (data-task-path + id) and shows its outputs in
// #playground-output, each with a download link. An API refusal is shown in #playground-error
// (role="alert").
//
// Each field carries data-kind, which says how its value goes into the JSON body: string,
// integer, number, boolean (a checkbox: always sent), lines (a textarea, one item per line: an
// array of strings) or json (a textarea holding JSON). An empty field is left out, so the API's
// default applies.
"use strict";
(function () {
  const form = document.getElementById("playground-form");
  if (!form) return;
  const status = document.getElementById("playground-status");
  const output = document.getElementById("playground-output");
  const problem = document.getElementById("playground-error");
  const run = document.getElementById("playground-run");
  const isModel = form.dataset.kind === "model";
  const taskPath = form.dataset.taskPath;
  const TERMINAL = ["completed", "succeeded", "failed", "cancelled"];
  const STATUSES = ["pending", "processing", "running"].concat(TERMINAL);
  const EXTENSIONS = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif",
    "image/svg+xml": ".svg", "video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov",
    "audio/mpeg": ".mp3", "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/ogg": ".ogg",
    "audio/mp4": ".m4a", "audio/aac": ".aac",
  };
  let current = null; // the task followed: {id, source, timer, done, seen}
  let lastPrompt = ""; // its prompt, for the outputs' alternative text

  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function labelOf(field) {
    const label = form.querySelector('label[for="' + field.id + '"]');
    return label ? label.textContent.replace(/\s*\(required\)\s*$/, "").trim() : field.name;
  }

  function fieldError(field, message) {
    const error = new Error(labelOf(field) + ": " + message);
    error.field = field;
    return error;
  }

  // One field's value for the body; undefined leaves it out.
  function valueOf(field) {
    const kind = field.dataset.kind;
    if (kind === "boolean") return field.checked;
    const raw = field.value;
    if (raw.trim() === "") return undefined;
    if (kind === "integer" || kind === "number") {
      const number = Number(raw);
      if (!Number.isFinite(number)) throw fieldError(field, "not a number");
      return number;
    }
    if (kind === "lines") {
      return raw.split(/\r?\n/).map(function (line) { return line.trim(); }).filter(Boolean);
    }
    if (kind === "json") {
      try { return JSON.parse(raw); } catch (e) { throw fieldError(field, "not valid JSON (" + e.message + ")"); }
    }
    return raw;
  }

  function body() {
    const data = {};
    for (const field of form.querySelectorAll("[data-kind][name]")) {
      const value = valueOf(field);
      if (value !== undefined) data[field.name] = value;
    }
    return data;
  }

  function showProblem(message) {
    problem.textContent = message;
  }

  function stop() {
    if (!current) return;
    current.done = true;
    if (current.source) current.source.close();
    if (current.timer) clearTimeout(current.timer);
  }

  function clock(data) {
    const at = data.at ? new Date(data.at) : data.occurredAt ? new Date(data.occurredAt * 1000) : new Date();
    return isNaN(at.getTime()) ? "" : at.toLocaleTimeString();
  }

  function showStatus(name, data) {
    const badge = document.getElementById("playground-state");
    badge.textContent = name;
    badge.className = "badge " + name;
    const when = clock(data || {});
    document.getElementById("playground-timeline").append(element("li", {}, name + (when ? " · " + when : "")));
  }

  function started(id) {
    status.replaceChildren();
    output.replaceChildren();
    const line = element("p", { class: "row" });
    line.append(isModel ? "Task " : "Execution ");
    line.append(element("a", { id: "playground-task", class: "mono", href: form.dataset.detailPath + encodeURIComponent(id) }, id));
    line.append(element("span", { id: "playground-state", class: "badge pending" }, "submitted"));
    const cancel = element("button", { type: "button", id: "playground-cancel", class: "secondary" }, "Cancel");
    cancel.addEventListener("click", function () { cancelTask(id, cancel); });
    line.append(cancel);
    status.append(line, element("ol", { class: "timeline", id: "playground-timeline" }));
  }

  async function cancelTask(id, button) {
    button.disabled = true;
    try {
      await window.hatchery.api("POST", taskPath + encodeURIComponent(id) + "/cancel");
    } catch (e) {
      showProblem(e.message);
      button.disabled = false;
    }
  }

  // A status event (or a polled status) of the current task.
  function onStatus(watch, name, data) {
    if (watch.done || watch !== current) return;
    showStatus(name, data);
    if (TERMINAL.indexOf(name) >= 0) {
      stop();
      finish(watch.id);
    }
  }

  function follow(id) {
    const watch = { id: id, source: null, timer: null, done: false, seen: new Set() };
    current = watch;
    const source = new EventSource(taskPath + encodeURIComponent(id) + "/events");
    watch.source = source;
    for (const name of STATUSES) {
      source.addEventListener(name, function (event) {
        if (event.lastEventId && watch.seen.has(event.lastEventId)) return;
        if (event.lastEventId) watch.seen.add(event.lastEventId);
        let data = {};
        try { data = JSON.parse(event.data); } catch (e) { data = {}; }
        onStatus(watch, data.status || name, data);
      });
    }
    source.addEventListener("error", function () {
      // The browser reconnects by itself (with Last-Event-ID); only a refused stream is
      // closed for good: then poll instead.
      if (!watch.done && source.readyState === EventSource.CLOSED) poll(watch, null);
    });
  }

  async function read(id) {
    const answer = await window.hatchery.api("GET", taskPath + encodeURIComponent(id));
    return isModel ? answer.data : answer;
  }

  async function poll(watch, last) {
    if (watch.done || watch !== current) return;
    let seen = last;
    try {
      const task = await read(watch.id);
      if (task.status !== last) {
        seen = task.status;
        onStatus(watch, task.status, {});
      }
    } catch (e) {
      showProblem(e.message);
      if (e.status >= 400 && e.status < 500 && e.status !== 429) return; // it will not get better
    }
    if (!watch.done) watch.timer = setTimeout(function () { poll(watch, seen); }, 1500);
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url, window.location.href);
      return ["http:", "https:", "blob:"].indexOf(parsed.protocol) >= 0 ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function mediaKind(contentType, url, fallback) {
    const type = (contentType || "").split(";")[0].trim().toLowerCase();
    if (/^(image|video|audio)\//.test(type)) return type.split("/")[0];
    const path = url.split(/[?#]/)[0].toLowerCase();
    if (/\.(mp4|webm|mov)$/.test(path)) return "video";
    if (/\.(mp3|wav|ogg|m4a|aac|flac)$/.test(path)) return "audio";
    if (/\.(png|jpe?g|webp|gif|svg)$/.test(path)) return "image";
    return fallback;
  }

  function extension(contentType, url) {
    const found = /\.([a-z0-9]{2,5})$/i.exec(url.split(/[?#]/)[0]);
    if (found) return "." + found[1].toLowerCase();
    return EXTENSIONS[(contentType || "").split(";")[0].trim().toLowerCase()] || "";
  }

  // One output: {url, contentType, name (for the download), alt}.
  function showOutput(item, index) {
    const url = safeUrl(item.url);
    if (!url) return;
    const kind = mediaKind(item.contentType, url, form.dataset.output);
    const figure = element("figure", { class: "output-" + kind });
    let media;
    if (kind === "image") {
      media = element("img", { src: url, alt: item.alt || "Output " + (index + 1) });
    } else {
      media = element(kind === "video" ? "video" : "audio", { src: url, controls: "", preload: "metadata" });
      media.setAttribute("aria-label", item.alt || "Output " + (index + 1));
    }
    const caption = element("figcaption");
    caption.append(element("a", { href: url, download: item.name + extension(item.contentType, url), class: "playground-download" }, "Download"));
    figure.append(media, caption);
    output.append(figure);
  }

  function eggOutputs(task, prompt) {
    const out = task.output || {};
    const urls = out.urls || (out.url ? [out.url] : []);
    return urls.map(function (url, i) {
      return { url: url, contentType: "", name: task.id + "-" + i, alt: prompt ? "Output " + (i + 1) + ": " + prompt : "" };
    });
  }

  function toolOutputs(task) {
    return (task.results || []).map(function (result, i) {
      const file = result.file || {};
      const source = file.downloadSource || file.previewSource || {};
      return {
        url: source.url || "",
        contentType: file.contentType || "",
        name: result.fileId || task.toolExecutionId + "-" + i,
        alt: file.displayName ? "Output " + (i + 1) + ": " + file.displayName : "",
      };
    });
  }

  function summary(task) {
    const parts = [];
    if (task.cost) parts.push("Cost: " + task.cost);
    const error = typeof task.error === "string" ? task.error : task.error && task.error.message;
    if (error) parts.push("Error: " + error);
    return parts.join(". ");
  }

  async function finish(id) {
    const cancel = document.getElementById("playground-cancel");
    if (cancel) cancel.remove();
    try {
      const task = await read(id);
      const said = summary(task);
      if (said) status.append(element("p", { id: "playground-summary", class: task.error ? "problem" : "hint" }, said));
      const items = isModel ? eggOutputs(task, lastPrompt) : toolOutputs(task);
      items.forEach(showOutput);
    } catch (e) {
      showProblem(e.message);
    }
  }


  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    showProblem("");
    let data;
    try {
      data = body();
    } catch (e) {
      showProblem(e.message);
      if (e.field) e.field.focus();
      return;
    }
    stop();
    current = null;
    run.disabled = true;
    try {
      const answer = await window.hatchery.api("POST", form.dataset.endpoint, data);
      const id = isModel ? answer.data.id : answer.toolExecutionId;
      lastPrompt = typeof data.prompt === "string" ? data.prompt : "";
      started(id);
      follow(id);
    } catch (e) {
      showProblem(e.message);
    } finally {
      run.disabled = false;
    }
  });
})();
