/* Member portal: copy the invite link, and switch on web push (service worker at /p/sw.js). */
(function () {
  "use strict";

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.querySelector(button.getAttribute("data-copy"));
      if (!field) { return; }
      field.select();
      var done = function () { button.textContent = button.getAttribute("data-done"); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {});
      } else if (document.execCommand("copy")) {
        done();
      }
    });
  });

  var box = document.getElementById("push");
  var button = document.getElementById("push-on");
  if (!box || !button || !box.dataset.key) { return; }
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) { return; }
  var status = box.querySelector(".status");

  function say(key) { status.textContent = box.getAttribute("data-msg-" + key) || ""; }

  function keyBytes(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4))
      .replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }

  function csrfToken() {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function save(subscription) {
    return fetch(box.dataset.endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(subscription.toJSON())
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      button.hidden = true;
      say("on");
    });
  }

  navigator.serviceWorker.register(box.dataset.worker, { scope: box.dataset.scope })
    .then(function (registration) {
      return registration.pushManager.getSubscription().then(function (existing) {
        if (existing && box.dataset.subscribed === "1") { say("on"); return; }
        if (Notification.permission === "denied") { say("denied"); return; }
        button.hidden = false;
        button.addEventListener("click", function () {
          Notification.requestPermission().then(function (permission) {
            if (permission !== "granted") { say("denied"); return null; }
            return registration.pushManager.subscribe({
              userVisibleOnly: true, applicationServerKey: keyBytes(box.dataset.key)
            }).then(save);
          }).catch(function () { say("error"); });
        });
      });
    })
    .catch(function () { /* no service worker (e.g. plain http on another host): no push */ });
})();
