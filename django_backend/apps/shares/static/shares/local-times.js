// Show each <time data-local> in the viewer's own time zone (the page renders UTC).
document.querySelectorAll("time[data-local]").forEach((element) => {
  const when = new Date(element.getAttribute("datetime"));
  if (!Number.isNaN(when.getTime())) {
    element.textContent = when.toLocaleString();
    element.title = element.getAttribute("datetime");
  }
});
