// Hatchery dashboard, files.
// - The list (#dropzone): files dropped on the zone or chosen with #upload-input go up through
//   the VideoGen API's presigned flow with the session: POST /v1/files/upload {displayName},
//   a PUT of the bytes to the uploadUrl it answers, then GET /v1/files/{fileId} until the file
//   is ready or failed. Each file's progress is a line in the role="status" region; once every
//   upload is ready the list is shown again (it stays, with the reasons, if one failed).
// - A file's page (#file-status[data-watch]): while the file is uploading or processing, its
//   status is polled and the page reloads once it changes.
"use strict";
(function () {
  const hatchery = window.hatchery;
  const POLL_MS = 1000;
  const POLL_LIMIT_MS = 10 * 60 * 1000;
  const FINISHED = ["ready", "failed"];

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function responseMessage(xhr) {
    try {
      const body = JSON.parse(xhr.responseText);
      if (body && body.message) return body.message;
    } catch (e) { /* not JSON: an object store's XML, or nothing */ }
    return "the store answered " + xhr.status;
  }

  // The PUT of the bytes; XMLHttpRequest rather than fetch for its upload progress events.
  function put(url, file, onProgress) {
    return new Promise(function (resolve, reject) {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      if (file.type) xhr.setRequestHeader("Content-Type", file.type);
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) onProgress(Math.floor((100 * event.loaded) / event.total));
      });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) resolve();
        else reject(new Error(responseMessage(xhr)));
      });
      xhr.addEventListener("error", function () {
        reject(new Error("the bytes did not reach the store (network error)"));
      });
      xhr.send(file);
    });
  }

  async function untilFinished(fileId) {
    const deadline = Date.now() + POLL_LIMIT_MS;
    while (Date.now() < deadline) {
      const file = await hatchery.api("GET", "/v1/files/" + encodeURIComponent(fileId));
      if (FINISHED.indexOf(file.status) >= 0) return file;
      await sleep(POLL_MS);
    }
    throw new Error("still processing after 10 minutes; look at the list later");
  }

  // One line of the status region: the file's name, a progress bar, and what is happening.
  function statusLine(list, name) {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.className = "upload-name";
    label.textContent = name;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + name);
    const text = document.createElement("span");
    text.className = "upload-state";
    item.append(label, bar, text);
    list.append(item);
    return {
      say: function (message) { text.textContent = message; },
      progress: function (percent) { bar.value = percent; },
      end: function (ok) {
        bar.value = 100;
        item.classList.add(ok ? "done" : "failed");
      },
    };
  }

  // Create the upload and PUT the bytes: the new file's id.
  async function send(file, line) {
    line.say("starting");
    const created = await hatchery.api("POST", "/v1/files/upload", {
      displayName: (file.name || "upload").slice(0, 512),
    });
    let shown = -1;
    await put(created.uploadUrl, file, function (percent) {
      line.progress(percent);
      const step = percent - (percent % 10);
      if (step !== shown) {
        shown = step;
        line.say("uploading " + step + "%");
      }
    });
    line.say("uploaded; processing");
    return created.fileId;
  }

  async function settle(fileId) {
    const done = await untilFinished(fileId);
    if (done.status !== "ready") throw new Error(done.error || "the file failed");
    return done;
  }

  function setUpList(zone) {
    const input = document.getElementById("upload-input");
    const list = document.getElementById("upload-list");
    const listPath = zone.dataset.filesPath;
    let running = 0;
    let failures = 0;
    let uploaded = 0;

    function finishBatch() {
      if (running > 0) return;
      if (failures === 0) {
        const notice = uploaded === 1 ? "Uploaded 1 file" : "Uploaded " + uploaded + " files";
        window.location.assign(listPath + "?notice=" + encodeURIComponent(notice));
        return;
      }
      if (!document.getElementById("upload-reload")) {
        const item = document.createElement("li");
        const link = document.createElement("a");
        link.id = "upload-reload";
        link.href = listPath;
        link.textContent = "Show the list with the new files";
        item.append(link);
        list.append(item);
      }
    }

    function ended(line, error) {
      running -= 1;
      if (error) {
        failures += 1;
        line.say("failed: " + error.message);
      } else {
        uploaded += 1;
        line.say("ready");
      }
      line.end(!error);
    }

    // The PUTs one after another (they share the connection anyway), each file's processing
    // watched while the next one goes up.
    async function uploadAll(files) {
      const chosen = Array.prototype.slice.call(files);
      running += chosen.length;
      const watching = [];
      for (const file of chosen) {
        const line = statusLine(list, file.name || "upload");
        let fileId;
        try {
          fileId = await send(file, line);
        } catch (error) {
          ended(line, error);
          continue;
        }
        watching.push(settle(fileId).then(
          function () { ended(line, null); },
          function (error) { ended(line, error); }
        ));
      }
      await Promise.all(watching);
      if (chosen.length > 0) finishBatch();
    }

    input.addEventListener("change", function () {
      uploadAll(input.files);
      input.value = "";
    });
    zone.addEventListener("dragover", function (event) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", function (event) {
      if (!zone.contains(event.relatedTarget)) zone.classList.remove("over");
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("over");
      uploadAll(event.dataTransfer.files);
    });
    // A file dropped beside the zone is not opened in place of the page.
    document.addEventListener("dragover", function (event) { event.preventDefault(); });
    document.addEventListener("drop", function (event) {
      if (!zone.contains(event.target)) event.preventDefault();
    });
  }

  async function watchFile(status) {
    const fileId = status.dataset.fileId;
    const deadline = Date.now() + POLL_LIMIT_MS;
    while (Date.now() < deadline) {
      await sleep(2 * POLL_MS);
      let file;
      try {
        file = await hatchery.api("GET", "/v1/files/" + encodeURIComponent(fileId));
      } catch (e) {
        continue;
      }
      if (file.status !== status.dataset.status) {
        window.location.reload();
        return;
      }
    }
  }

  const zone = document.getElementById("dropzone");
  if (zone) setUpList(zone);
  const status = document.querySelector("#file-status[data-watch]");
  if (status) watchFile(status);
})();
