// Copy buttons: <button data-copy="ID" data-copy-status="ID" hidden>. The button copies
// the value (or the text) of element ID and says so in the status element, a polite live
// region. Buttons ship hidden, so a page without JavaScript shows no dead buttons; the
// manage page swaps its content in place and then sends "ots:updated". Messages come from
// the JavaScript catalogue (/jsi18n/), loaded before this script.
(() => {
  "use strict";

  function reveal(root) {
    root.querySelectorAll("button[data-copy][hidden]").forEach((button) => {
      button.hidden = false;
    });
  }

  // The old way, for pages served over plain HTTP (where navigator.clipboard is missing)
  // and browsers that refuse the permission.
  function copyBySelection(source, text) {
    let target = source;
    let temporary = null;
    if (!(source instanceof HTMLInputElement || source instanceof HTMLTextAreaElement)) {
      temporary = document.createElement("textarea");
      temporary.value = text;
      temporary.setAttribute("readonly", "");
      temporary.className = "offscreen";
      document.body.append(temporary);
      target = temporary;
    }
    target.focus();
    target.select();
    let copied;
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
    temporary?.remove();
    return copied;
  }

  async function copy(source, text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch {
        // Denied or unavailable: try the selection below.
      }
    }
    return copyBySelection(source, text);
  }

  const timers = new WeakMap();

  function say(status, button, message) {
    if (!status) {
      return;
    }
    status.textContent = message;
    button.classList.add("copied");
    window.clearTimeout(timers.get(status));
    timers.set(
      status,
      window.setTimeout(() => {
        status.textContent = "";
        button.classList.remove("copied");
      }, 4000)
    );
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) {
      return;
    }
    const source = document.getElementById(button.dataset.copy);
    if (!source) {
      return;
    }
    const text = "value" in source ? source.value : source.textContent.trim();
    const status = document.getElementById(button.dataset.copyStatus);
    const copied = await copy(source, text);
    if (copied) {
      say(status, button, gettext("Copied"));
      button.focus();
    } else {
      // Leave the text selected so the keyboard shortcut works.
      if ("select" in source) {
        source.focus();
        source.select();
      } else {
        window.getSelection()?.selectAllChildren(source);
      }
      say(status, button, gettext("Press Ctrl+C (⌘C on a Mac) to copy"));
    }
  });

  // A click into a link box selects all of it, ready to copy by hand.
  document.addEventListener("focusin", (event) => {
    if (event.target.matches?.(".link-box[readonly]")) {
      event.target.select();
    }
  });

  reveal(document);
  document.addEventListener("ots:updated", (event) => reveal(event.target));
})();
