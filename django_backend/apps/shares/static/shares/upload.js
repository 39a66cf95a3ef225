// The upload page, enhanced: drop a file anywhere, the size limit checked before sending,
// and the upload sent to the JSON API with XMLHttpRequest, which (unlike fetch) reports
// upload progress. Without this script the form posts to the page itself, as before.
// Messages come from the JavaScript catalogue (/jsi18n/), loaded before this script.
(() => {
  "use strict";

  const form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) {
    return;
  }
  const fileInput = form.elements.namedItem("file");
  const fileChosen = document.getElementById("file-chosen");
  const fileError = document.getElementById("file-error");
  const panel = document.getElementById("upload-progress");
  const bar = document.getElementById("upload-progress-bar");
  const progressText = document.getElementById("upload-progress-text");
  const progressName = document.getElementById("upload-file-name");
  const cancelButton = document.getElementById("upload-cancel");
  const announcer = document.getElementById("upload-status");
  const errorBox = document.getElementById("upload-error");
  const overlay = document.getElementById("drop-overlay");
  const apiUrl = form.dataset.apiUrl;
  const maxSize = Number(form.dataset.maxUploadSize) || Infinity;

  let xhr = null;

  document.getElementById("dropzone-hint")?.removeAttribute("hidden");

  // --- formatting -------------------------------------------------------------------

  // Each message is written out whole in a gettext call, where the catalogue's tools find
  // it; interpolate() fills in its %(name)s placeholders.
  function format(message, values) {
    return interpolate(message, values, true);
  }

  const UNITS = [
    null,
    gettext("%(size)s KB"),
    gettext("%(size)s MB"),
    gettext("%(size)s GB"),
    gettext("%(size)s TB"),
  ];

  // Binary multiples with the short names and the decimal separator of the page's language,
  // as the server's filesizeformat writes them.
  function formatBytes(bytes) {
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < UNITS.length - 1) {
      value /= 1024;
      unit += 1;
    }
    if (unit === 0) {
      return format(ngettext("%(size)s byte", "%(size)s bytes", bytes), { size: bytes });
    }
    const size = value.toFixed(value < 10 ? 1 : 0).replace(".", get_format("DECIMAL_SEPARATOR"));
    return format(UNITS[unit], { size });
  }

  function formatDuration(seconds) {
    const total = Math.max(0, Math.round(seconds));
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const rest = total % 60;
    if (hours > 0) {
      return format(gettext("%(hours)s h %(minutes)s min"), { hours, minutes });
    }
    if (minutes > 0) {
      return format(gettext("%(minutes)s min %(seconds)s s"), { minutes, seconds: rest });
    }
    return format(gettext("%(seconds)s s"), { seconds: rest });
  }

  // --- messages ---------------------------------------------------------------------

  function announce(message) {
    announcer.textContent = message;
  }

  function showFileError(message) {
    fileError.textContent = message;
    fileError.hidden = !message;
    if (message) {
      fileInput.setAttribute("aria-invalid", "true");
      fileInput.setAttribute("aria-describedby", "file-error");
    } else {
      fileInput.removeAttribute("aria-invalid");
      fileInput.removeAttribute("aria-describedby");
    }
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    errorBox.focus();
  }

  // The API names fields as sent ("max_downloads: must be between 1 and 100."): say it
  // with the label the page shows, and take the keyboard to that field.
  function showFieldError(message) {
    const match = /^(\w+): /.exec(message);
    const field = match ? form.elements.namedItem(match[1]) : null;
    const label = field?.labels?.[0]?.textContent.trim();
    if (!field || !label) {
      showError(message);
      return;
    }
    const detail = message.slice(match[0].length);
    showError(format(gettext("%(field)s: %(message)s"), { field: label, message: detail }));
    field.setAttribute("aria-invalid", "true");
    field.addEventListener("input", () => field.removeAttribute("aria-invalid"), { once: true });
    field.focus();
  }

  function clearErrors() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    showFileError("");
  }

  // --- choosing a file --------------------------------------------------------------

  function tooLargeMessage(file) {
    return format(
      gettext(
        "“%(name)s” is %(size)s; the limit is %(limit)s. " +
          "Choose a smaller file, or compress or split it first."
      ),
      { name: file.name, size: formatBytes(file.size), limit: formatBytes(maxSize) }
    );
  }

  // Returns the message that stops this file from being sent, or "" when it may go.
  function checkFile(file) {
    if (!file) {
      return gettext("Choose a file to share.");
    }
    if (file.size > maxSize) {
      return tooLargeMessage(file);
    }
    return "";
  }

  function describeChosenFile() {
    const file = fileInput.files[0];
    clearErrors();
    fileChosen.textContent = file
      ? format(gettext("Selected: %(name)s (%(size)s)"), {
          name: file.name,
          size: formatBytes(file.size),
        })
      : "";
    if (file) {
      showFileError(checkFile(file));
    }
  }

  fileInput.addEventListener("change", describeChosenFile);

  // Dropping anywhere on the page: a full-window overlay shows while a file is dragged
  // over the window; the overlay itself receives dragleave and drop.
  function dragHasFiles(event) {
    return Array.from(event.dataTransfer?.types ?? []).includes("Files");
  }

  window.addEventListener("dragenter", (event) => {
    if (dragHasFiles(event) && !xhr) {
      event.preventDefault();
      overlay.hidden = false;
    }
  });
  overlay.addEventListener("dragover", (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  overlay.addEventListener("dragleave", () => {
    overlay.hidden = true;
  });
  // Without this a file dropped beside the overlay (say, before it showed) would be opened
  // by the browser in place of the page.
  window.addEventListener("dragover", (event) => {
    if (dragHasFiles(event)) {
      event.preventDefault();
    }
  });
  window.addEventListener("drop", (event) => {
    if (!dragHasFiles(event)) {
      return;
    }
    event.preventDefault();
    overlay.hidden = true;
    if (xhr) {
      return;
    }
    const items = Array.from(event.dataTransfer.items ?? []);
    if (items.some((item) => item.webkitGetAsEntry?.()?.isDirectory)) {
      clearErrors();
      showFileError(gettext("A folder cannot be shared as it is: put it in a zip archive first."));
      return;
    }
    const files = event.dataTransfer.files;
    if (files.length === 0) {
      return;
    }
    // Keep exactly one file in the real input, so the form sends what the page shows.
    const chosen = new DataTransfer();
    chosen.items.add(files[0]);
    fileInput.files = chosen.files;
    describeChosenFile();
    if (files.length > 1) {
      const leftOut = files.length - 1;
      fileChosen.textContent += format(
        ngettext(
          " — one file at a time: the other %(count)s was left out.",
          " — one file at a time: the other %(count)s were left out.",
          leftOut
        ),
        { count: leftOut }
      );
    }
    fileInput.focus();
  });

  // --- sending ----------------------------------------------------------------------

  function setBusy(busy) {
    for (const element of form.elements) {
      element.disabled = busy;
    }
    panel.hidden = !busy;
  }

  function warnBeforeLeaving(event) {
    event.preventDefault();
    event.returnValue = "";
  }

  function finish() {
    xhr = null;
    window.removeEventListener("beforeunload", warnBeforeLeaving);
    setBusy(false);
  }

  // The API answers in English, whose clients match on the error's code; on a page in
  // another language, what the page can say itself (too many uploads, the service briefly
  // down) it says in the reader's words. Anything more particular stays the API's.
  const OWN_WORDS = new Set([429, 503]);
  const pageInEnglish = (document.documentElement.lang || "en") === "en";

  function errorMessage(request) {
    let message = "";
    try {
      message = JSON.parse(request.responseText)?.error?.message ?? "";
    } catch {
      // Not our JSON: a proxy in front of the app answered. Say what the status means.
    }
    if (message && (pageInEnglish || !OWN_WORDS.has(request.status))) {
      return message;
    }
    if (request.status === 413) {
      return format(gettext("The file is larger than this service accepts (%(limit)s)."), {
        limit: formatBytes(maxSize),
      });
    }
    if (request.status === 429) {
      const wait = Number(request.getResponseHeader("Retry-After"));
      return wait > 0
        ? format(gettext("Too many uploads from here. Try again in %(wait)s."), {
            wait: formatDuration(wait),
          })
        : gettext("Too many uploads from here. Try again later.");
    }
    if (request.status === 503 && message) {
      return gettext("The service is briefly unavailable. Please try again shortly.");
    }
    return format(gettext("The upload failed (HTTP %(status)s). Please try again."), {
      status: request.status,
    });
  }

  function startProgress(file) {
    progressName.textContent = file.name;
    cancelButton.disabled = false;
    bar.value = 0;
    const sentOfTotal = format(gettext("%(sent)s of %(total)s"), {
      sent: formatBytes(0),
      total: formatBytes(file.size),
    });
    progressText.textContent = `0% · ${sentOfTotal}`;
    announce(format(gettext("Uploading %(name)s."), { name: file.name }));
  }

  // Speed is smoothed over the last few seconds, so the time left does not jump about.
  // The request body is the file plus a few hundred bytes of multipart framing: progress
  // is taken as a fraction of the body and shown in bytes of the file.
  function progressTracker(fileSize) {
    const samples = [{ at: performance.now(), sent: 0 }];
    let lastQuarter = 0;
    let lastPaint = 0;
    return (loaded, total) => {
      const fraction = total > 0 ? Math.min(1, loaded / total) : 0;
      const sent = Math.round(fraction * fileSize);
      const now = performance.now();
      samples.push({ at: now, sent });
      while (samples.length > 2 && now - samples[0].at > 5000) {
        samples.shift();
      }
      if (now - lastPaint < 200 && fraction < 1) {
        return;
      }
      lastPaint = now;
      const percent = Math.floor(fraction * 100);
      const seconds = (now - samples[0].at) / 1000;
      const speed = seconds > 0.3 ? (sent - samples[0].sent) / seconds : 0;
      const parts = [
        `${percent}%`,
        format(gettext("%(sent)s of %(total)s"), {
          sent: formatBytes(sent),
          total: formatBytes(fileSize),
        }),
      ];
      if (speed > 0) {
        parts.push(`${formatBytes(speed)}/s`);
        if (sent < fileSize) {
          const timeLeft = formatDuration((fileSize - sent) / speed);
          parts.push(format(gettext("about %(time)s left"), { time: timeLeft }));
        }
      }
      bar.value = percent;
      progressText.textContent = parts.join(" · ");
      const quarter = Math.floor(percent / 25);
      if (quarter > lastQuarter && percent < 100) {
        lastQuarter = quarter;
        // Translators: %(percent)s is a percentage such as "25%".
        announce(format(gettext("%(percent)s uploaded."), { percent: `${percent}%` }));
      }
    };
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (xhr) {
      return;
    }
    clearErrors();
    const file = fileInput.files[0];
    const problem = checkFile(file);
    if (problem) {
      showFileError(problem);
      fileInput.focus();
      return;
    }
    const downloads = form.elements.namedItem("max_downloads");
    if (!downloads.checkValidity()) {
      showError(
        format(gettext("Downloads allowed must be a whole number between %(min)s and %(max)s."), {
          min: downloads.min,
          max: downloads.max,
        })
      );
      downloads.focus();
      return;
    }

    // The same fields the plain form sends, the CSRF token among them.
    const body = new FormData(form);
    const request = new XMLHttpRequest();
    xhr = request;
    const track = progressTracker(file.size);
    request.upload.addEventListener("progress", (progress) => {
      track(progress.loaded, progress.lengthComputable ? progress.total : 0);
    });
    request.upload.addEventListener("load", () => {
      // Every byte is sent and the server is storing the share: cancelling now could not
      // promise that nothing was shared.
      cancelButton.disabled = true;
      progressText.textContent = `100% · ${gettext("sent. Checking the file…")}`;
      announce(gettext("Upload complete. Preparing your link."));
    });
    request.addEventListener("load", () => {
      if (request.status === 201) {
        let created;
        try {
          created = JSON.parse(request.responseText);
        } catch {
          created = null;
        }
        if (created?.manage_url) {
          window.removeEventListener("beforeunload", warnBeforeLeaving);
          progressText.textContent = pgettext("shared file", "Done. Opening your share page…");
          cancelButton.disabled = true;
          // One source of truth for the link, its QR code and the Copy button.
          window.location.assign(created.manage_url);
          return;
        }
      }
      finish();
      showFieldError(errorMessage(request));
    });
    request.addEventListener("error", () => {
      finish();
      showError(
        gettext(
          "The connection broke off before the upload finished. Check your network and try again."
        )
      );
    });
    request.addEventListener("abort", () => {
      finish();
      form.reset();
      fileChosen.textContent = "";
      announce(gettext("Upload cancelled. Nothing was shared."));
      fileInput.focus();
    });

    request.open("POST", apiUrl);
    request.setRequestHeader("Accept", "application/json");
    // A logged-in browser's upload acts through its session, so it proves its origin.
    const csrfToken = form.elements.namedItem("csrfmiddlewaretoken")?.value;
    if (csrfToken) {
      request.setRequestHeader("X-CSRFToken", csrfToken);
    }
    // The body is built before the controls are disabled: disabled controls are not sent.
    request.send(body);
    startProgress(file);
    setBusy(true);
    window.addEventListener("beforeunload", warnBeforeLeaving);
    cancelButton.focus();
  });

  cancelButton.addEventListener("click", () => {
    // The server deletes the partial temporary file when the connection drops.
    xhr?.abort();
  });
})();
