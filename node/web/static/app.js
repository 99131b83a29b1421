// Progressive enhancement only: every page works without it. Draws each chart from the JSON
// its data-src names (same origin); loads ECharts (vendored) when a page has a chart.
(function () {
  "use strict";
  var charts = document.querySelectorAll("[data-chart]");
  if (!charts.length) { return; }
  var script = document.createElement("script");
  script.src = "/ui/static/vendor/echarts/echarts.min.js";
  script.onload = function () {
    charts.forEach(function (el) {
      fetch(el.getAttribute("data-src"), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) { draw(el, data); });
    });
  };
  function draw(el, data) {
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      if (el.getAttribute("data-chart") === "sankey") {
        chart.setOption({
          animation: false,
          tooltip: { trigger: "item" },
          series: [{ type: "sankey", data: data.nodes, links: data.links, emphasis: { focus: "adjacency" },
                     label: { fontSize: 12 } }]
        });
      } else if (el.getAttribute("data-chart") === "months") {
        chart.setOption({
          animation: false,
          tooltip: { trigger: "axis",
                     valueFormatter: function (v) { return "¥" + (v / 100).toLocaleString("zh-CN", { minimumFractionDigits: 2 }); } },
          legend: {},
          grid: { containLabel: true, left: 8, right: 8, bottom: 8 },
          xAxis: { type: "category", data: data.months },
          yAxis: { type: "value", axisLabel: { formatter: function (v) { return "¥" + (v / 100 / 10000) + "万"; } } },
          series: data.series.map(function (s) { return { type: "bar", name: s.name, data: s.values }; })
        });
      }
      window.addEventListener("resize", function () { chart.resize(); });
      el.setAttribute("data-drawn", "1");
  }
  document.head.appendChild(script);
}());
