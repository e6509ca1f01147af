// Date and time fields, the Vietnamese way whatever the browser's language (issue 17, point 5).
// The field is plain text ("26/8/2021 14:30") and the server reads it with dieuhanh.vnformat's one
// parser. This script only adds to it: a calendar button that opens the browser's own picker and
// hands its choice to the text field, and a check when the field is left, which asks the server
// (/date-check/) how it reads the text and shows the canonical form or the reason in the hint.
// Nothing is parsed here: without the script, the form works the same.
(function () {
  "use strict";
  var me = document.currentScript;
  var url = me && me.dataset.url;
  var pickLabel = (me && me.dataset.pick) || "";
  var SVG = "http://www.w3.org/2000/svg";

  function icon() {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    [["rect", { x: 3, y: 5, width: 18, height: 16, rx: 2 }], ["path", { d: "M3 10h18M8 3v4M16 3v4" }]].forEach(
      function (part) {
        var el = document.createElementNS(SVG, part[0]);
        Object.keys(part[1]).forEach(function (k) { el.setAttribute(k, part[1][k]); });
        svg.appendChild(el);
      }
    );
    return svg;
  }

  function check(field, hint) {
    var text = field.value.trim();
    var params = new URLSearchParams({ text: text, label: field.dataset.label || "" });
    if (field.dataset.default) params.set("default", field.dataset.default);
    if (!text) {
      show(field, hint, null);
      return Promise.resolve();
    }
    return fetch(url + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) {
        if (!answer || field.value.trim() !== text) return; // no answer, or typed on meanwhile
        if (answer.ok) {
          field.value = answer.text;
          field.dataset.local = answer.local;
          show(field, hint, null);
        } else {
          show(field, hint, answer.error);
        }
      })
      .catch(function () { /* the server checks on sending anyway */ });
  }

  function show(field, hint, error) {
    if (!hint) return;
    if (error) {
      hint.textContent = error;
      hint.classList.add("error");
      hint.classList.remove("muted");
      field.setAttribute("aria-invalid", "true");
    } else {
      hint.textContent = hint.dataset.hint;
      hint.classList.remove("error");
      hint.classList.add("muted");
      field.removeAttribute("aria-invalid");
    }
  }

  function enhance(field) {
    var hint = document.getElementById(field.id + "-hint");
    if (hint) {
      hint.dataset.hint = hint.textContent;
      hint.setAttribute("aria-live", "polite");
    }
    field.addEventListener("change", function () { check(field, hint); });
    var picker = document.createElement("input");
    picker.type = "datetime-local";
    if (picker.type !== "datetime-local" || typeof picker.showPicker !== "function") return;
    picker.className = "picker";
    picker.tabIndex = -1;
    picker.setAttribute("aria-hidden", "true");
    var button = document.createElement("button");
    button.type = "button";
    button.className = "pick";
    button.setAttribute("aria-label", pickLabel + (field.dataset.label ? ": " + field.dataset.label : ""));
    button.appendChild(icon());
    button.addEventListener("click", function () {
      picker.value = field.dataset.local || "";
      try { picker.showPicker(); } catch (e) { field.focus(); }
    });
    // The picker's value is ISO ("2021-08-26T14:30"); the server's parser reads it and answers with
    // the Vietnamese form, which replaces it in the field.
    picker.addEventListener("change", function () {
      if (!picker.value) return;
      field.value = picker.value;
      check(field, hint);
    });
    field.parentNode.appendChild(button);
    field.parentNode.appendChild(picker);
  }

  if (!url) return;
  document.querySelectorAll("input[data-vn-date]").forEach(function (field) {
    enhance(field);
    if (field.value.trim()) check(field, document.getElementById(field.id + "-hint"));
  });
})();
