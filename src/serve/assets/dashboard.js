// rivulet's live dashboard: polls the endpoint beside it and draws hand-made SVG.
"use strict";

// ---- What the charts read from one progress report (the only place that knows the
// ---- JSON's shape; /progress/recent returns an array of these, oldest first).
const feed = {
  seconds: (p) => p.elapsed.secs + p.elapsed.nanos / 1e9,
  inputRate: (p) => p.input_rows_per_second,
  processedRate: (p) => p.output_rows_per_second,
  // [epoch, milliseconds] of the epochs the report lists.
  epochs: (p) => (p.checkpoint ? p.checkpoint.recent : []).map(
    (e) => [e.epoch, e.duration.secs * 1e3 + e.duration.nanos / 1e6]),
  // Event time behind processing time, in milliseconds (null: not known).
  watermarkLagMs: (p) => (p.watermark_lag_ms === undefined ? null : p.watermark_lag_ms),
  // Rows held in state over all stateful operators (null: not known).
  stateRows: (p) => (p.state_rows === undefined ? null : p.state_rows),
  // {operator: {p50, p99, ...}} in microseconds.
  latency: (p) => p.latency || {},
  name: (p) => p.name,
  active: (p) => p.is_active,
  inputRows: (p) => p.input_rows,
  outputRows: (p) => p.output_rows,
};

const SVG = "http://www.w3.org/2000/svg";
const W = 460, H = 170, M = { l: 56, r: 10, t: 8, b: 34 };

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function fmt(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
  if (a >= 10 || a === 0) return v.toFixed(0);
  return v.toPrecision(2);
}

// Draws `series` ([{name, points: [[x, y], ...]}]) into the chart `id`.
function drawChart(id, title, xLabel, series) {
  let fig = document.getElementById(id);
  if (!fig) {
    fig = document.createElement("figure");
    fig.id = id;
    const cap = document.createElement("figcaption");
    cap.textContent = title;
    fig.appendChild(cap);
    fig.appendChild(el("svg", { width: W, height: H, class: "chart" }));
    document.getElementById("charts").appendChild(fig);
  }
  const svg = fig.querySelector("svg");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const drawn = series.map((s) => ({
    name: s.name,
    points: s.points.filter((p) => p[1] !== null && isFinite(p[0]) && isFinite(p[1])),
  })).filter((s) => s.points.length > 0);
  const total = drawn.reduce((n, s) => n + s.points.length, 0);
  svg.setAttribute("data-points", total);
  svg.setAttribute("data-series", drawn.length);
  if (total === 0) {
    el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, svg)
      .textContent = "no data yet";
    return;
  }
  const xs = drawn.flatMap((s) => s.points.map((p) => p[0]));
  const ys = drawn.flatMap((s) => s.points.map((p) => p[1]));
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  const y0 = Math.min(0, ...ys);
  let y1 = Math.max(...ys);
  if (y1 === y0) y1 = y0 + 1;
  const sx = (x) => M.l + (x - x0) / (x1 - x0) * (W - M.l - M.r);
  const sy = (y) => H - M.b - (y - y0) / (y1 - y0) * (H - M.t - M.b);
  el("line", { x1: M.l, y1: H - M.b, x2: W - M.r, y2: H - M.b, class: "axis" }, svg);
  el("line", { x1: M.l, y1: M.t, x2: M.l, y2: H - M.b, class: "axis" }, svg);
  el("text", { x: M.l - 4, y: M.t + 8, "text-anchor": "end" }, svg).textContent = fmt(y1);
  el("text", { x: M.l - 4, y: H - M.b, "text-anchor": "end" }, svg).textContent = fmt(y0);
  el("text", { x: M.l, y: H - M.b + 13 }, svg).textContent = fmt(x0);
  el("text", { x: W - M.r, y: H - M.b + 13, "text-anchor": "end" }, svg).textContent = fmt(x1);
  el("text", { x: (M.l + W) / 2, y: H - M.b + 13, "text-anchor": "middle" }, svg).textContent = xLabel;
  drawn.forEach((s, i) => {
    const d = s.points.map((p, j) => (j ? "L" : "M") + sx(p[0]).toFixed(1) + " " + sy(p[1]).toFixed(1)).join(" ");
    el("path", { d: d, class: "line s" + (i % 6), "data-name": s.name, "data-points": s.points.length }, svg);
    if (s.points.length === 1) {
      el("circle", { cx: sx(s.points[0][0]), cy: sy(s.points[0][1]), r: 2.5, class: "f" + (i % 6) }, svg);
    }
    const lx = M.l + 8 + i * 110;
    el("rect", { x: lx, y: H - 12, width: 10, height: 3, class: "f" + (i % 6) }, svg);
    el("text", { x: lx + 14, y: H - 8 }, svg).textContent = s.name;
  });
}

function drawCharts(history) {
  const t = (p) => feed.seconds(p);
  drawChart("chart-rates", "Input and processing rate (rows/s)", "seconds since start", [
    { name: "input", points: history.map((p) => [t(p), feed.inputRate(p)]) },
    { name: "processed", points: history.map((p) => [t(p), feed.processedRate(p)]) },
  ]);
  const epochs = new Map();
  history.forEach((p) => feed.epochs(p).forEach(([e, ms]) => epochs.set(e, ms)));
  drawChart("chart-epochs", "Epoch / batch duration (ms)", "epoch", [
    { name: "duration", points: [...epochs.entries()].sort((a, b) => a[0] - b[0]) },
  ]);
  drawChart("chart-watermark", "Watermark lag (ms)", "seconds since start", [
    { name: "lag", points: history.map((p) => [t(p), feed.watermarkLagMs(p)]) },
  ]);
  drawChart("chart-state", "State rows", "seconds since start", [
    { name: "rows", points: history.map((p) => [t(p), feed.stateRows(p)]) },
  ]);
  const operators = new Set();
  history.forEach((p) => Object.keys(feed.latency(p)).forEach((op) => operators.add(op)));
  const latency = [];
  for (const op of operators) {
    for (const q of ["p50", "p99"]) {
      latency.push({
        name: op + " " + q,
        points: history.map((p) => {
          const l = feed.latency(p)[op];
          return [t(p), l && l[q] !== undefined ? l[q] : null];
        }),
      });
    }
  }
  drawChart("chart-latency", "Latency percentiles per operator (µs)", "seconds since start", latency);
}

function drawPlan(plan) {
  const svg = document.getElementById("plan-graph");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const defs = el("defs", {}, svg);
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
  el("path", { d: "M0 0 L10 5 L0 10 z", fill: "#9aa3b5" }, marker);
  // Column of a node: the longest path from a source (edges), else its position.
  const depth = new Map(plan.nodes.map((n) => [n.name, 0]));
  for (let round = 0; round < plan.nodes.length; round++) {
    for (const e of plan.edges) {
      const d = (depth.get(e.from) || 0) + 1;
      if (d > (depth.get(e.to) || 0)) depth.set(e.to, d);
    }
  }
  if (plan.edges.length === 0) plan.nodes.forEach((n, i) => depth.set(n.name, i));
  const rows = new Map();
  const pos = new Map();
  const NW = 170, NH = 54, GX = 50, GY = 14;
  for (const n of plan.nodes) {
    const c = depth.get(n.name);
    const r = rows.get(c) || 0;
    rows.set(c, r + 1);
    pos.set(n.name, { x: 10 + c * (NW + GX), y: 10 + r * (NH + GY) });
  }
  const cols = Math.max(1, ...[...rows.keys()].map((c) => c + 1));
  const maxRows = Math.max(1, ...rows.values());
  svg.setAttribute("width", 20 + cols * (NW + GX));
  svg.setAttribute("height", 20 + maxRows * (NH + GY));
  for (const e of plan.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    el("path", { class: "edge", "data-from": e.from, "data-to": e.to,
      d: `M${a.x + NW} ${a.y + NH / 2} C${a.x + NW + GX / 2} ${a.y + NH / 2} ${b.x - GX / 2} ${b.y + NH / 2} ${b.x} ${b.y + NH / 2}` }, svg);
  }
  for (const n of plan.nodes) {
    const p = pos.get(n.name);
    const g = el("g", { class: "node " + n.kind, transform: `translate(${p.x},${p.y})`,
      "data-name": n.name, "data-records-in": n.recordsIn, "data-records-out": n.recordsOut }, svg);
    el("rect", { width: NW, height: NH }, g);
    el("text", { x: 8, y: 16, class: "name" }, g).textContent = n.name + (n.parallelism > 1 ? " ×" + n.parallelism : "");
    el("text", { x: 8, y: 31 }, g).textContent = n.kind;
    el("text", { x: 8, y: 46 }, g).textContent = "in " + fmt(n.recordsIn) + " · out " + fmt(n.recordsOut);
  }
  const table = document.getElementById("operators");
  table.innerHTML = "<tr><th>operator</th><th>kind</th><th>parallelism</th><th>records in</th><th>records out</th></tr>";
  for (const n of plan.nodes) {
    const tr = table.insertRow();
    [n.name, n.kind, n.parallelism, n.recordsIn, n.recordsOut].forEach((v) => { tr.insertCell().textContent = v; });
  }
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

let updates = 0;
async function refresh() {
  try {
    const [history, plan] = await Promise.all([getJson("progress/recent"), getJson("plan")]);
    if (!Array.isArray(history) || !plan || !Array.isArray(plan.nodes)) {
      throw new Error("unexpected data from the endpoint");
    }
    drawCharts(history);
    drawPlan(plan);
    const last = history[history.length - 1];
    if (last) {
      document.getElementById("query-name").textContent = feed.name(last);
      document.getElementById("status").textContent =
        (feed.active(last) ? "running" : "ended") + " · " + feed.inputRows(last) + " rows in · " +
        feed.outputRows(last) + " rows out · " + history.length + " samples · updated " +
        new Date().toLocaleTimeString();
    }
    updates += 1;
    document.body.dataset.updates = updates;
    document.body.dataset.feed = "ok";
  } catch (error) {
    document.body.dataset.feed = "error";
    document.getElementById("error").textContent = "cannot read the query's progress: " + error.message;
  }
}

refresh();
setInterval(refresh, 1000);
