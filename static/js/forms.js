// Behaviour that pages declare with data attributes, so no page needs an inline script or event handler
// (the Content-Security-Policy allows scripts from /static/ only):
//   <select data-submit-on-change>  submits its form when the choice changes;
//   <form data-confirm="Question?">  asks before submitting.
(function () {
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("select[data-submit-on-change]") && e.target.form) {
      HTMLFormElement.prototype.submit.call(e.target.form);  // a button named "submit" hides form.submit
    }
  });
  document.addEventListener("submit", function (e) {
    var question = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      e.preventDefault();
    }
  });
})();
