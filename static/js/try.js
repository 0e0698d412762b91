// The "try it" form of a model version: sends the record to the real prediction endpoint with the session.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("try-form");
  if (!form) return;
  var out = document.getElementById("try-result");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var record;
    try { record = JSON.parse(document.getElementById("try-record").value); }
    catch (e) { out.textContent = "The record is not valid JSON: " + e.message; return; }
    var token = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
    fetch(form.dataset.url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": token},
      body: JSON.stringify({records: Array.isArray(record) ? record : [record]})})
      .then(function (r) { return r.json().then(function (body) { return [r.status, body]; }); })
      .then(function (res) { out.textContent = (res[0] === 200 ? "" : "HTTP " + res[0] + "\n") + JSON.stringify(res[1], null, 2); })
      .catch(function (e) { out.textContent = "Request failed: " + e; });
  });
});
