// Herald's few behaviours beyond htmx: where focus goes after a swap, and copy buttons.
(function () {
  "use strict";

  // After htmx swaps content in, focus what the new content marks with data-autofocus (the first field
  // after a type swap, the result after an action), so keyboard and screen-reader users are not dropped
  // back to <body>.
  function focusMarked() {
    var target = document.querySelector("[data-autofocus]");
    if (!target) return;
    target.removeAttribute("data-autofocus");
    target.focus({ preventScroll: false });
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    var kept = event.detail.requestConfig && event.detail.requestConfig.elt &&
      event.detail.requestConfig.elt.getAttribute("data-focus-after-swap");
    if (kept) {
      var again = document.getElementById(kept);
      if (again) { again.focus(); return; }
    }
    var elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (elt && elt.classList && elt.classList.contains("type-card")) {
      var first = document.querySelector("#type-fields input:not([type=hidden]), #type-fields textarea, #type-fields select");
      if (first) { first.focus(); return; }
    }
    focusMarked();
  });

  // <button data-copy="#id">: copy that element's text (or value) and say so
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = "value" in source && source.value !== undefined ? source.value : source.textContent;
    var status = document.getElementById(button.getAttribute("aria-describedby") || "") || button;
    function done(ok) {
      var said = ok ? "Copied." : "Select the text and copy it with Ctrl+C.";
      if (status !== button) status.textContent = said; else button.setAttribute("title", said);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text.trim()).then(function () { done(true); }, function () { done(false); });
    } else {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      done(ok);
    }
  });

  // The source form: only the fieldsets of the chosen kind (without JavaScript every one shows, each labelled)
  function showKindFieldsets() {
    var kind = document.querySelector("#source-form [name=kind]");
    if (!kind) return;
    document.querySelectorAll("#source-form .source-kind").forEach(function (fieldset) {
      // A fieldset with a refused field stays in view, whatever the kind, so its message can be read
      fieldset.hidden = fieldset.getAttribute("data-kinds").split(" ").indexOf(kind.value) < 0 &&
        !fieldset.querySelector("[aria-invalid=true], .field-error");
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("#source-form [name=kind]")) showKindFieldsets();
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.documentElement.classList.add("js");
    showKindFieldsets();
    // A page that comes back with errors: focus the first invalid field
    var invalid = document.querySelector("main [aria-invalid=true]");
    if (invalid) invalid.focus();
  });
})();
