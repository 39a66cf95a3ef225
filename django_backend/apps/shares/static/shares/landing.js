// The recipient's page: "expires in" counts down every second, and after Download is
// pressed the page says what became of the link. The Download form itself is never
// stopped: it is a plain POST whose answer is the file, so the page stays where it is.
(() => {
  "use strict";

  // --- the countdown ----------------------------------------------------------------

  const countdown = document.querySelector("time[data-countdown]");
  const downloadBox = document.getElementById("download");
  const downloadButton = document.getElementById("download-button");
  const downloadStatus = document.getElementById("download-status");
  const downloadHint = document.getElementById("download-hint");
  const downloadsLeft = document.getElementById("downloads-left");

  function plural(count, word) {
    return `${count} ${word}${count === 1 ? "" : "s"}`;
  }

  function describeRemaining(milliseconds) {
    const total = Math.floor(milliseconds / 1000);
    const days = Math.floor(total / 86400);
    const hours = Math.floor((total % 86400) / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const seconds = total % 60;
    if (days > 0) {
      return `${plural(days, "day")}, ${plural(hours, "hour")}, ${plural(minutes, "minute")}`;
    }
    if (hours > 0) {
      return `${plural(hours, "hour")}, ${plural(minutes, "minute")}, ${plural(seconds, "second")}`;
    }
    if (minutes > 0) {
      return `${plural(minutes, "minute")}, ${plural(seconds, "second")}`;
    }
    return plural(seconds, "second");
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
      countdown.title = expiresAt.toLocaleString();
      const tick = () => {
        const left = expiresAt.getTime() - Date.now();
        if (left <= 0) {
          countdown.textContent = "expired";
          endDownloads("This link has expired: the file can no longer be downloaded.");
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
          "This link is now used up: your download has started, and the file is deleted " +
            "from the server once it is sent. Check your browser's downloads."
        );
        if (downloadHint) {
          downloadHint.hidden = true;
        }
        return;
      }
      downloadButton.disabled = true;
      downloadStatus.textContent =
        `Your download has started. ${plural(remaining, "download")} left on this link.`;
      window.setTimeout(() => {
        downloadButton.disabled = false;
      }, 3000);
    }, 0);
  });
})();
