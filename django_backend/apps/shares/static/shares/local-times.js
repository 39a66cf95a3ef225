// Show each <time data-local> in the viewer's own time zone (the page renders UTC).
// data-style="date" leaves out the seconds. Run again on content the manage page swaps in.
(() => {
  "use strict";

  // In the page's language; in the browser's own variant of it when the two agree (en-GB
  // writes the day first), else a German page in an English browser would read
  // "läuft am Nov 30, 2026 ab".
  const pageLanguage = document.documentElement.lang;
  const locale =
    pageLanguage && !navigator.language.toLowerCase().startsWith(pageLanguage)
      ? pageLanguage
      : undefined;

  const STYLES = {
    date: { dateStyle: "medium", timeStyle: "short" },
    full: { dateStyle: "medium", timeStyle: "medium" },
  };

  function localize(root) {
    root.querySelectorAll("time[data-local]").forEach((element) => {
      const when = new Date(element.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) {
        return;
      }
      const style = STYLES[element.dataset.style] ?? STYLES.full;
      element.textContent = when.toLocaleString(locale, style);
      element.title = element.getAttribute("datetime");
    });
  }

  localize(document);
  document.addEventListener("ots:updated", (event) => localize(event.target));
})();
