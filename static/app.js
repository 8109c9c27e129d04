// caseguard: progressive enhancement only; every page works without this.
(function () {
  "use strict";
  // Scripts run here (the browser tests and the CSS may ask).
  document.documentElement.setAttribute("data-js", "1");
  // Quick exit: blank the page at once, then leave through /exit (which
  // ends the session and redirects to a neutral page) replacing this page
  // in the history. Without scripts the link itself does the same, and
  // the pages left in the history answer with the neutral page.
  var exit = document.getElementById("quick-exit");
  function leave(event) {
    if (event) { event.preventDefault(); }
    try { document.title = ""; document.body.innerHTML = ""; } catch (e) { /* nothing */ }
    window.location.replace(exit ? exit.href : "/exit");
  }
  if (exit) { exit.addEventListener("click", leave); }
  var lastEscape = 0;
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var now = Date.now();
    if (now - lastEscape < 800) { leave(); }
    lastEscape = now;
  });
  // A refused form: its error summary takes the focus (the summary's
  // autofocus does it without scripts, except where the address has a
  // #section, which the browser scrolls to instead).
  var refused = document.querySelector("[data-refused]");
  if (refused && document.activeElement !== refused) { refused.focus(); }
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
        if (window.caseguardSaveDraft) { window.caseguardSaveDraft(); }
      }, (idle - 120) * 1000);
    };
    arm();
    document.addEventListener("input", arm);
  }
  // Autosave the intake form (sealed on the server) every 15 s when it
  // changed, and when the session is about to expire.
  var intake = document.querySelector("form[data-autosave]");
  if (intake && window.fetch && window.URLSearchParams && window.FormData) {
    var dirty = false;
    var state = document.getElementById("autosave-state");
    var save = function () {
      if (!dirty) { return; }
      dirty = false;
      fetch(intake.getAttribute("data-autosave"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "x-autosave": "1", "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(intake)).toString()
      }).then(function (response) {
        if (response.ok && state) { state.textContent = intake.getAttribute("data-saved"); }
        if (!response.ok) { dirty = true; }
      }).catch(function () { dirty = true; });
    };
    intake.addEventListener("input", function () { dirty = true; });
    intake.addEventListener("change", function () { dirty = true; });
    setInterval(save, 15000);
    window.caseguardSaveDraft = function () { dirty = true; save(); };
  }
  // A double tap sends a form once (the intake form's server-issued token
  // makes one case even without this script).
  var forms = document.querySelectorAll("form");
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("submit", function () {
      var buttons = form.querySelectorAll("button[type=submit]");
      Array.prototype.forEach.call(buttons, function (b) {
        setTimeout(function () { b.disabled = true; }, 0);
      });
    });
  });
})();
