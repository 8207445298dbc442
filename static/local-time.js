// Shows every <time datetime> of the page in the viewer's own time zone, each with the
// zone's short name, and says which zone in the footer. The relay writes the times in UTC
// (marked so); without script they stay that way.
"use strict";
(function () {
  var zone;
  var format;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    format = new Intl.DateTimeFormat(document.documentElement.lang || "en", {
      day: "numeric", month: "short", year: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short"
    });
  } catch (e) {
    return;
  }
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var at = new Date(el.getAttribute("datetime"));
    if (isNaN(at.getTime())) return;
    el.title = el.textContent;
    el.textContent = format.format(at);
    el.setAttribute("data-local", "");
  });
  var note = document.getElementById("time-note");
  if (note && zone) {
    note.textContent = note.getAttribute("data-local").replace("{zone}", zone);
  }
})();
