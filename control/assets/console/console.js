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
(function () {
  // The activity page follows the workspace's events (Server-Sent Events on
  // the same session), newest first. Text only: nothing is parsed as HTML.
  var list = document.querySelector("ol[data-events]");
  if (!list || !window.EventSource) { return; }
  var url = list.getAttribute("data-events") + "?last_event_id=" +
    encodeURIComponent(list.getAttribute("data-last-event-id"));
  var source = new EventSource(url);
  var state = document.getElementById("activity-state");
  source.addEventListener("open", function () { if (state) { state.hidden = false; } });
  function summary(type, data) {
    var link = data.link;
    if (link) { return link.domain + "/" + link.code + " \u2192 " + link.url; }
    if (data.links) {
      var humans = 0, bots = 0, count = data.links.length;
      data.links.forEach(function (l) { humans += l.humans; bots += l.bots; });
      if (data.other_links) {
        humans += data.other_links.humans; bots += data.other_links.bots; count += data.other_links.links;
      }
      return humans + " human and " + bots + " bot clicks on " + count + " links" +
        (data.part > 0 ? " (part " + (data.part + 1) + ")" : "");
    }
    if (data.endpoint_id) { return "test sent to " + data.endpoint_id; }
    if (data.handle) { return "page " + data.domain + "/" + data.handle + " " + data.change; }
    var detail = data.failure || data.error;
    return (data.domain || "") + (detail ? ": " + detail : "");
  }
  list.getAttribute("data-types").split(" ").forEach(function (type) {
    source.addEventListener(type, function (message) {
      var event = JSON.parse(message.data);
      var item = document.createElement("li");
      item.setAttribute("data-event-id", event.id);
      var kind = document.createElement("span");
      kind.className = "mono";
      kind.textContent = event.type;
      var when = document.createElement("span");
      when.className = "muted";
      when.textContent = new Date(event.created_at).toLocaleString();
      item.append(kind, " " + summary(event.type, event.data) + " ", when);
      list.prepend(item);
      while (list.children.length > 200) { list.lastElementChild.remove(); }
      var empty = document.getElementById("activity-empty");
      if (empty) { empty.remove(); }
    });
  });
})();
