// Forms with data-confirm="question" ask before they are sent (a delete, for example).
document.addEventListener("submit", function (event) {
  var question = event.target.dataset ? event.target.dataset.confirm : null;
  if (question && !window.confirm(question)) event.preventDefault();
}, true);
