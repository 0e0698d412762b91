// The new-job form: choosing another dataset, target or problem type draws the form again from the server (its
// columns, suggestions and the algorithms and metrics that apply). Sent without the "submit" button's name, so
// nothing is started.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form select[data-reload]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
});
