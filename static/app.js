// caseguard: progressive enhancement only; every page works without this.
(function () {
  "use strict";
  // Quick exit: leave at once and take this page out of the history.
  var exit = document.getElementById("quick-exit");
  function leave(event) {
    if (event) { event.preventDefault(); }
    try { document.body.innerHTML = ""; } catch (e) { /* nothing */ }
    window.location.replace(exit ? exit.href : "about:blank");
  }
  if (exit) { exit.addEventListener("click", leave); }
  var lastEscape = 0;
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var now = Date.now();
    if (now - lastEscape < 800) { leave(); }
    lastEscape = now;
  });
  // Session expiry: warn two minutes before the idle timeout.
  var idle = parseInt(document.body.getAttribute("data-idle-secs") || "0", 10);
  var warning = document.getElementById("session-warning");
  if (idle > 180 && warning) {
    var timer;
    var arm = function () {
      clearTimeout(timer);
      warning.hidden = true;
      timer = setTimeout(function () {
        warning.textContent = document.body.getAttribute("data-warning");
        warning.hidden = false;
      }, (idle - 120) * 1000);
    };
    arm();
    document.addEventListener("input", arm);
  }
  // One submission per form: a double tap on a slow connection makes one case.
  var forms = document.querySelectorAll("form");
  Array.prototype.forEach.call(forms, function (form) {
    var key = form.querySelector("input[name=submission]");
    if (key && !key.value && window.crypto && window.crypto.randomUUID) {
      key.value = window.crypto.randomUUID();
    }
    form.addEventListener("submit", function () {
      var buttons = form.querySelectorAll("button[type=submit]");
      Array.prototype.forEach.call(buttons, function (b) {
        setTimeout(function () { b.disabled = true; }, 0);
      });
    });
  });
})();
