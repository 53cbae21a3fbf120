// Network drawings and timelines. Data comes from <script type="application/json"> blocks written by
// Django's json_script, so nothing from the page is evaluated as code (the CSP forbids inline scripts).
import cytoscape from "../vendor/cytoscape/cytoscape.esm.min.mjs";

const REVIEW_COLOURS = { confirmed: "#b42318", cleared: "#15803d", inconclusive: "#b7791f", unreviewed: "#2457c5" };

function jsonData(id) {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

function drawGraph(container) {
  const graph = jsonData(container.dataset.graph);
  if (!graph || !graph.nodes.length) {
    container.textContent = "No network to draw.";
    return;
  }
  const maxWeight = Math.max(1, ...graph.edges.map((e) => e.weight));
  const cy = cytoscape({
    container,
    elements: [
      ...graph.nodes.map((n) => ({ data: n })),
      ...graph.edges.map((e, i) => ({ data: { id: `e${i}`, ...e, width: 1 + (5 * e.weight) / maxWeight } })),
    ],
    style: [
      { selector: "node", style: {
        label: "data(label)", "font-size": 10, "text-valign": "bottom", "text-margin-y": 3, color: "#1d2330",
        width: (n) => 14 + 18 * n.data("centrality"), height: (n) => 14 + 18 * n.data("centrality"),
        "background-color": (n) => REVIEW_COLOURS[n.data("review")] || REVIEW_COLOURS.unreviewed,
      } },
      { selector: "edge", style: { width: "data(width)", "line-color": "#9aa5b8", "curve-style": "haystack", opacity: 0.8 } },
      { selector: "node:active, node:selected", style: { "border-width": 3, "border-color": "#111827" } },
    ],
    layout: { name: "cose", animate: false, randomize: false, nodeRepulsion: () => 9000, idealEdgeLength: () => 70 },
    wheelSensitivity: 0.3,
  });
  cy.on("tap", "node", (event) => window.location.assign(event.target.data("url")));
  container.dataset.ready = "true";
}

function drawTimeline(canvas) {
  const timeline = jsonData(canvas.dataset.timeline);
  const days = (timeline && timeline.days) || [];
  if (!days.length || !window.Chart) {
    canvas.replaceWith(document.createTextNode("No activity recorded."));
    return;
  }
  const datasets = [{ type: "bar", label: "Posts", data: days.map((d) => d.posts), backgroundColor: "#2457c5", yAxisID: "y" }];
  if (days.some((d) => d.interactions !== undefined)) {
    datasets.push({ type: "line", label: "Interactions", data: days.map((d) => d.interactions ?? 0), borderColor: "#b42318",
                    backgroundColor: "#b42318", pointRadius: 0, yAxisID: "y1" });
  }
  new window.Chart(canvas, {
    data: { labels: days.map((d) => d.date), datasets },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, title: { display: true, text: "posts" } },
                y1: { display: datasets.length > 1, beginAtZero: true, position: "right", grid: { drawOnChartArea: false },
                      title: { display: true, text: "interactions" } } },
    },
  });
  canvas.dataset.ready = "true";
}

function init() {
  document.querySelectorAll("[data-graph]").forEach(drawGraph);
  document.querySelectorAll("canvas[data-timeline]").forEach(drawTimeline);
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", init);
} else {
  init();
}
