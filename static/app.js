/* RoleDesk's own script (issue 13). Loaded from /static so the CSP stays strict (no inline
   script, no eval). Everything here improves a page that already works without JavaScript:
   - Copy buttons on code blocks (hidden until this script reveals them);
   - keyboard focus kept on, or next to, the control used after an htmx swap, and moved to the
     new heading when a whole wizard step is swapped in. */
(function () {
  "use strict";

  function reveal(root) {
    root.querySelectorAll("[data-copy][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      var ok = document.execCommand("copy");
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  /* The outcome goes to a status region beside the button, so the button keeps its name. */
  function say(button, words) {
    var status = button.nextElementSibling;
    if (!status || !status.classList.contains("copy-status")) {
      status = document.createElement("span");
      status.className = "copy-status";
      status.setAttribute("role", "status");
      button.insertAdjacentElement("afterend", status);
    }
    status.textContent = words;
    window.setTimeout(function () { status.textContent = ""; }, 4000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var code = button.parentElement.querySelector("pre code, pre");
    copyText(code.textContent).then(
      function () { say(button, "Copied"); },
      function () { say(button, "Copy failed: select the text and press Ctrl+C"); }
    );
  });

  /* Focus after htmx swaps. A control's identity survives the swap through data-focus-key
     (or its id, or name=value); if it is gone (a removed policy), the next control of its
     group, else the group's heading (data-focus-home) gets focus. */
  var pending = null;

  function keyOf(el) {
    if (el.dataset && el.dataset.focusKey) { return el.dataset.focusKey; }
    if (el.id) { return "#" + el.id; }
    return el.name ? el.name + "=" + (el.value || "") : null;
  }

  function findKey(key) {
    if (!key) { return null; }
    var all = document.querySelectorAll("button, input, select, textarea, a[href]");
    for (var i = 0; i < all.length; i++) {
      if (keyOf(all[i]) === key && !all[i].disabled && all[i].offsetParent !== null) {
        return all[i];
      }
    }
    return null;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var el = event.detail.elt;
    if (!el || !el.matches("button, input[type=submit], a")) { pending = null; return; }
    var group = el.closest("[data-focus-group]");
    var next = null;
    if (group) {
      var members = Array.prototype.slice.call(group.querySelectorAll("button, a[href]"));
      var at = members.indexOf(el);
      next = members[at + 1] || members[at - 1] || null;
    }
    var home = el.closest("[data-focus-home]");
    pending = {
      key: keyOf(el),
      next: next ? keyOf(next) : null,
      home: home ? home.dataset.focusHome : null
    };
  });

  /* A field whose error slot the live preview emptied is no longer invalid. */
  function clearFixedFields() {
    document.querySelectorAll("[aria-invalid=true][aria-describedby]").forEach(function (field) {
      var slot = document.getElementById(field.getAttribute("aria-describedby"));
      if (slot && !slot.textContent.trim()) { field.removeAttribute("aria-invalid"); }
    });
  }

  var headingBefore = null;
  document.addEventListener("htmx:beforeSwap", function () {
    var h1 = document.querySelector("#wizard-step h1");
    headingBefore = h1 ? h1.textContent : null;
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    reveal(target || document);
    clearFixedFields();
    if (target && target.id === "wizard-step") {
      var heading = target.querySelector("h1");
      /* A new step: its heading. The same step again: its first invalid field, else the
         control that was used (another tag row, "Update preview"). */
      var invalid = target.querySelector("[aria-invalid=true]");
      if (heading && heading.textContent === headingBefore && invalid) {
        invalid.focus();
        pending = null;
        return;
      }
      if (heading && (heading.textContent !== headingBefore || !findKey(pending && pending.key))) {
        heading.setAttribute("tabindex", "-1");
        heading.focus();
        pending = null;
        return;
      }
    }
    if (!pending) { return; }
    var active = document.activeElement;
    if (active && active !== document.body && document.contains(active)) { pending = null; return; }
    var found = findKey(pending.key) || findKey(pending.next);
    if (!found && pending.home) { found = document.getElementById(pending.home); }
    pending = null;
    if (found) {
      if (found.tabIndex < 0 && !found.hasAttribute("tabindex")) { found.setAttribute("tabindex", "-1"); }
      found.focus();
    }
  });

  document.addEventListener("DOMContentLoaded", function () { reveal(document); });
})();
