// Ricochet console: small enhancements on top of forms that work without it.
"use strict";
(function () {
  // A select marked data-autosubmit submits its form when changed.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
    var button = select.form.querySelector("button[type=submit]");
    if (button) { button.hidden = true; }
  });
  // Buttons marked data-confirm ask first.
  document.querySelectorAll("[data-confirm]").forEach(function (element) {
    element.addEventListener("click", function (event) {
      if (!window.confirm(element.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
  // "Select all" checkbox of a bulk table.
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    var name = all.getAttribute("data-select-all");
    all.addEventListener("change", function () {
      document.querySelectorAll("input[name='" + name + "']").forEach(function (box) {
        box.checked = all.checked;
      });
    });
  });
  // Copy buttons: data-copy holds the text.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
        var label = button.textContent;
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 1500);
      });
    });
  });
  // Invitation links carry their token after '#': put it in the form.
  var token = document.getElementById("invitation-token");
  if (token && !token.value && window.location.hash.length > 1) {
    token.value = decodeURIComponent(window.location.hash.slice(1));
  }
})();
// A file input marked data-fills reads its file into the named textarea.
(function () {
  document.querySelectorAll("[data-file-field]").forEach(function (field) { field.hidden = false; });
  document.querySelectorAll("input[type=file][data-fills]").forEach(function (input) {
    input.addEventListener("change", function () {
      var file = input.files[0];
      if (!file) { return; }
      file.text().then(function (text) {
        document.getElementById(input.getAttribute("data-fills")).value = text;
      });
    });
  });
})();
