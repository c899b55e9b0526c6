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
(function () {
  // The page editor: its preview follows the form as one types (the form is
  // posted to the preview route, as its Preview button would, 300 ms after
  // the last change, and the answer shown in the sandboxed frame: no script
  // runs there), items move up and down with buttons, and a heading row
  // hides its link menu.
  var frame = document.getElementById("page-preview");
  var form = frame && document.getElementById(frame.getAttribute("data-form"));
  if (!form) { return; }
  var url = frame.getAttribute("data-preview");
  var timer = null, sent = 0, shown = 0;
  function refresh() {
    var id = ++sent;
    fetch(url, {
      method: "POST", body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin", redirect: "manual"
    }).then(function (response) {
      if (response.type === "opaqueredirect") {
        return "<!doctype html><title>Preview</title><p>Your session has ended: sign in again to see the preview.</p>";
      }
      return response.text();
    }).then(function (html) {
      // Answers may arrive out of order: only a newer one replaces the frame.
      if (id < shown) { return; }
      shown = id;
      frame.srcdoc = html;
    }).catch(function () { /* the next change tries again */ });
  }
  function later() { clearTimeout(timer); timer = setTimeout(refresh, 300); }
  form.addEventListener("input", later);
  form.addEventListener("change", later);

  var rows = document.querySelectorAll("fieldset[data-item]");
  function renumber() {
    form.querySelectorAll("fieldset[data-item] input[data-position]").forEach(function (input, index) {
      input.value = index + 1;
    });
    later();
  }
  rows.forEach(function (row) {
    var kind = row.querySelector("select[data-item-type]");
    var link = row.querySelector("[data-item-link]");
    function showLink() { if (kind && link) { link.hidden = kind.value === "header"; } }
    if (kind) { kind.addEventListener("change", showLink); }
    showLink();
    var legend = row.querySelector("legend");
    [["up", "\u2191", "Move up"], ["down", "\u2193", "Move down"]].forEach(function (move) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "link move";
      button.textContent = move[1];
      button.setAttribute("aria-label", move[2] + ": " + legend.textContent);
      button.addEventListener("click", function () {
        var other = move[0] === "up" ? row.previousElementSibling : row.nextElementSibling;
        if (!other || !other.matches("fieldset[data-item]")) { return; }
        if (move[0] === "up") { other.before(row); } else { other.after(row); }
        button.focus();
        renumber();
      });
      legend.append(" ", button);
    });
  });
})();
