// The recipient's page: "expires in" counts down every second, and after Download is
// pressed the page says what became of the link. The Download form itself is never
// stopped: it is a plain POST whose answer is the file, so the page stays where it is.
// Messages come from the JavaScript catalogue (/jsi18n/), loaded before this script.
(() => {
  "use strict";

  // --- the countdown ----------------------------------------------------------------

  const countdown = document.querySelector("time[data-countdown]");
  const downloadBox = document.getElementById("download");
  const downloadButton = document.getElementById("download-button");
  const downloadStatus = document.getElementById("download-status");
  const downloadHint = document.getElementById("download-hint");
  const downloadsLeft = document.getElementById("downloads-left");

  // Each message is written out whole in a gettext call, where the catalogue's tools find it.
  function withCount(message, n) {
    return interpolate(message, { count: n }, true);
  }

  const days = (n) => withCount(ngettext("%(count)s day", "%(count)s days", n), n);
  const hours = (n) => withCount(ngettext("%(count)s hour", "%(count)s hours", n), n);
  const minutes = (n) => withCount(ngettext("%(count)s minute", "%(count)s minutes", n), n);
  const seconds = (n) => withCount(ngettext("%(count)s second", "%(count)s seconds", n), n);

  function describeRemaining(milliseconds) {
    const total = Math.floor(milliseconds / 1000);
    const d = Math.floor(total / 86400);
    const h = Math.floor((total % 86400) / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    if (d > 0) {
      return `${days(d)}, ${hours(h)}, ${minutes(m)}`;
    }
    if (h > 0) {
      return `${hours(h)}, ${minutes(m)}, ${seconds(s)}`;
    }
    if (m > 0) {
      return `${minutes(m)}, ${seconds(s)}`;
    }
    return seconds(s);
  }

  function endDownloads(message) {
    if (downloadButton) {
      downloadButton.disabled = true;
    }
    downloadBox?.querySelector("form")?.setAttribute("aria-disabled", "true");
    if (downloadStatus) {
      downloadStatus.textContent = message;
    }
  }

  if (countdown) {
    const expiresAt = new Date(countdown.getAttribute("datetime"));
    if (!Number.isNaN(expiresAt.getTime())) {
      // In the page's language, as local-times.js writes dates.
      const language = document.documentElement.lang;
      const browsers = !language || navigator.language.toLowerCase().startsWith(language);
      countdown.title = expiresAt.toLocaleString(browsers ? undefined : language);
      const tick = () => {
        const left = expiresAt.getTime() - Date.now();
        if (left <= 0) {
          countdown.textContent = pgettext("time left", "expired");
          endDownloads(gettext("This link has expired: the file can no longer be downloaded."));
          return false;
        }
        countdown.textContent = describeRemaining(left);
        return true;
      };
      if (tick()) {
        const timer = window.setInterval(() => {
          if (!tick()) {
            window.clearInterval(timer);
          }
        }, 1000);
      }
    }
  }

  // --- after Download ---------------------------------------------------------------

  const form = downloadBox?.querySelector("form");
  if (!form || !downloadButton) {
    return;
  }
  let remaining = Number(downloadBox.dataset.downloadsRemaining);

  form.addEventListener("submit", () => {
    // No preventDefault: the browser sends the form and saves the answer as a file. A
    // wrong password instead brings a new page, which replaces this one and this message.
    remaining = Math.max(0, remaining - 1);
    downloadBox.dataset.downloadsRemaining = String(remaining);
    if (downloadsLeft) {
      downloadsLeft.textContent = String(remaining);
    }
    // Disabled after the submission has left: a disabled button cannot submit a form, and
    // a second press would use up a second download.
    window.setTimeout(() => {
      if (remaining === 0) {
        endDownloads(
          gettext(
            "This link is now used up: your download has started, and the file is deleted " +
              "from the server once it is sent. Check your browser's downloads."
          )
        );
        if (downloadHint) {
          downloadHint.hidden = true;
        }
        return;
      }
      downloadButton.disabled = true;
      downloadStatus.textContent = withCount(
        ngettext(
          "Your download has started. %(count)s download left on this link.",
          "Your download has started. %(count)s downloads left on this link.",
          remaining
        ),
        remaining
      );
      window.setTimeout(() => {
        downloadButton.disabled = false;
      }, 3000);
    }, 0);
  });
})();
