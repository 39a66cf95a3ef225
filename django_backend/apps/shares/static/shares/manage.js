// The sender's page keeps itself up to date: every 5 s it asks the API for the share's
// status and download count, and when they change (or every 30 s, for new timeline
// entries such as "page opened") it fetches this page again and swaps the card in place,
// keeping focus and announcing the change. Without JavaScript a <noscript> meta refresh
// reloads the page instead. Revoke asks for confirmation first. Messages come from the
// JavaScript catalogue (/jsi18n/), loaded before this script.
(() => {
  "use strict";

  const POLL_MS = 5000;
  const PAGE_EVERY = 6; // polls between two fetches of the page itself

  const announcer = document.getElementById("manage-announce");

  // segno writes the QR code with a fixed width and height and no viewBox; with one it
  // can be scaled up by CSS (svg.qr[viewBox]) and stays sharp.
  function scalableQr(root) {
    root.querySelectorAll("svg.qr:not([viewBox])").forEach((svg) => {
      const width = svg.getAttribute("width");
      const height = svg.getAttribute("height");
      if (width && height) {
        svg.setAttribute("viewBox", `0 0 ${parseFloat(width)} ${parseFloat(height)}`);
      }
    });
  }

  // Revoke: a plain POST form; the confirmation is the only thing added here.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.matches("form[data-confirm]") && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  scalableQr(document);

  let card = document.getElementById("manage-card");
  if (!card || card.dataset.live !== "true" || !window.fetch) {
    return;
  }
  const manageToken = window.location.pathname.split("/").pop();
  const apiUrl = `${card.dataset.apiRoot}manage/${encodeURIComponent(manageToken)}`;

  function fingerprint(element) {
    const data = element.dataset;
    return [data.status, data.downloads, data.events, data.purged].join("|");
  }

  function describeChange(before, after) {
    const status = after.dataset.status;
    const downloads = interpolate(
      gettext("%(downloads)s of %(max_downloads)s"),
      { downloads: after.dataset.downloads, max_downloads: after.dataset.maxDownloads },
      true
    );
    if (status !== before.dataset.status) {
      const messages = {
        consumed: gettext(
          "Delivered: downloaded %(downloads)s. The file is deleted from the server."
        ),
        expired: gettext("The link has expired."),
        revoked: gettext("The link was revoked."),
      };
      const message = messages[status] ?? gettext("Status: %(status)s.");
      return interpolate(message, { downloads, status }, true);
    }
    if (after.dataset.downloads !== before.dataset.downloads) {
      return interpolate(gettext("Downloaded: %(downloads)s."), { downloads }, true);
    }
    if (after.dataset.events !== before.dataset.events) {
      const last = after.querySelector(".timeline li:last-child");
      const event = last?.textContent.replace(/\s+/g, " ").trim();
      return last ? interpolate(gettext("New: %(event)s"), { event }, true) : "";
    }
    return "";
  }

  function swapCard(fresh) {
    const focusedId = card.contains(document.activeElement) ? document.activeElement.id : "";
    const message = describeChange(card, fresh);
    const adopted = document.importNode(fresh, true);
    card.replaceWith(adopted);
    card = adopted;
    scalableQr(card);
    card.dispatchEvent(new CustomEvent("ots:updated", { bubbles: true }));
    if (focusedId) {
      // The focused control may be gone (Revoke, once the link is used up): then the
      // heading takes focus, so keyboard users are not thrown back to the top.
      (document.getElementById(focusedId) ?? document.getElementById("manage-title"))?.focus();
    }
    if (message && announcer) {
      announcer.textContent = message;
    }
  }

  async function refreshPage() {
    const response = await fetch(window.location.href, {
      cache: "no-store",
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    });
    if (!response.ok) {
      // 404 and the like: let the browser show the server's own page for it.
      window.location.reload();
      return;
    }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("manage-card");
    if (!fresh) {
      window.location.reload();
      return;
    }
    if (fingerprint(fresh) !== fingerprint(card)) {
      swapCard(fresh);
    }
  }

  let polls = 0;
  let timer = null;
  let running = false;
  let failures = 0;

  async function poll() {
    window.clearTimeout(timer);
    timer = null;
    if (running) {
      return;
    }
    running = true;
    polls += 1;
    try {
      const response = await fetch(apiUrl, {
        cache: "no-store",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.status === 404 || response.status === 410) {
        window.location.reload();
        return;
      }
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      const share = await response.json();
      const changed =
        share.status !== card.dataset.status || String(share.downloads) !== card.dataset.downloads;
      if (changed || polls % PAGE_EVERY === 0) {
        await refreshPage();
      }
      failures = 0;
    } catch {
      // Offline for a moment, the server restarting or busy: back off and try again.
      failures += 1;
    } finally {
      running = false;
    }
    schedule();
  }

  function schedule() {
    if (card.dataset.live !== "true" || document.hidden || timer !== null || running) {
      return;
    }
    timer = window.setTimeout(poll, POLL_MS * Math.min(2 ** failures, 12));
  }

  // A hidden tab does not poll; coming back checks at once.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      window.clearTimeout(timer);
      timer = null;
    } else if (card.dataset.live === "true") {
      poll();
    }
  });

  schedule();
})();
