// Draws every <div class="chart" data-figure="id-of-json-script"> with Plotly (served from /static/plotly/).
(function () {
  function draw(root) {
    root.querySelectorAll(".chart[data-figure]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var source = document.getElementById(el.dataset.figure);
      if (!source || !window.Plotly) return;
      var fig = JSON.parse(source.textContent);
      var layout = Object.assign({margin: {l: 50, r: 20, t: 30, b: 40}, font: {size: 12}, paper_bgcolor: "rgba(0,0,0,0)",
                                  plot_bgcolor: "rgba(0,0,0,0)"}, fig.layout || {});
      // axes make room for their labels (long feature names, class labels) rather than cutting them off
      Object.keys(layout).concat(["xaxis", "yaxis"]).forEach(function (key) {
        if (/^[xy]axis\d*$/.test(key)) layout[key] = Object.assign({automargin: true}, layout[key]);
      });
      window.Plotly.newPlot(el, fig.data, layout, {displaylogo: false, responsive: true});
      el.dataset.drawn = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (e) { draw(e.target); });
})();
