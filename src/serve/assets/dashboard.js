// rivulet's live dashboard: polls the endpoint beside it and draws hand-made SVG.
"use strict";

// ---- What the charts read from the endpoint's JSON: the only place that knows its
// ---- shape. `epochs` is /progress/recent (Spark's StreamingQueryProgress per epoch,
// ---- oldest first); `live` is /live/recent (samples of the live counters, the only
// ---- history of a query without epochs).
const feed = {
  // Seconds since the Unix epoch of an epoch's trigger.
  epochTime: (p) => Date.parse(p.timestamp) / 1000,
  liveTime: (s) => s.elapsed.secs + s.elapsed.nanos / 1e9,
  // [x, y] series of rates: from the epochs if there are any, else the live samples.
  rates: (epochs, live) => epochs.length > 0
    ? { x: "seconds", input: epochs.map((p) => [feed.epochTime(p), p.inputRowsPerSecond]),
        processed: epochs.map((p) => [feed.epochTime(p), p.processedRowsPerSecond]) }
    : { x: "seconds since start", input: live.map((s) => [feed.liveTime(s), s.input_rows_per_second]),
        processed: live.map((s) => [feed.liveTime(s), s.output_rows_per_second]) },
  duration: (p) => [p.batchId, p.durationMs.triggerExecution],
  // Event time behind the epoch's trigger, in milliseconds (null: no watermark).
  watermarkLag: (p) => p.eventTime && p.eventTime.watermark
    ? [feed.epochTime(p), Date.parse(p.timestamp) - Date.parse(p.eventTime.watermark)] : null,
  // Rows held in state by each stateful operator: {operator: rows}.
  stateRows: (p) => Object.fromEntries(p.stateOperators.map((op) => [op.operatorName, op.numRowsTotal])),
  // Latency over the epoch per operator (and end to end), microseconds: {name: {p50, p99}}.
  latency: (p) => {
    const out = {};
    for (const op of p.operators) {
      if (op.latency && op.latency.epoch.count > 0) out[op.name] = op.latency.epoch;
    }
    if (p.latency.endToEnd.epoch.count > 0) out["end to end"] = p.latency.endToEnd.epoch;
    return out;
  },
  name: (live, epochs) => (live.length ? live[live.length - 1].name : epochs.length ? epochs[epochs.length - 1].name : ""),
  status: (live) => live.length ? live[live.length - 1] : null,
};

const SVG = "http://www.w3.org/2000/svg";
const W = 460, H = 160, M = { l: 56, r: 10, t: 8, b: 24 };

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
    const div = document.createElement("div");
    div.className = "legend";
    fig.appendChild(div);
    document.getElementById("charts").appendChild(fig);
  }
  const svg = fig.querySelector("svg");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const legend = fig.querySelector(".legend");
  legend.textContent = "";
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
    const key = document.createElement("span");
    key.className = "c" + (i % 6);
    key.textContent = "▬ " + s.name;
    legend.appendChild(key);
  });
}

function drawCharts(epochs, live) {
  const rates = feed.rates(epochs, live);
  const t0 = Math.min(...rates.input.map((p) => p[0]));
  const rel = (points) => points.map(([x, y]) => [x - t0, y]);
  drawChart("chart-rates", "Input and processing rate (rows/s)", rates.x === "seconds" ? "seconds (epoch triggers)" : rates.x, [
    { name: "input", points: rel(rates.input) },
    { name: "processed", points: rel(rates.processed) },
  ]);
  drawChart("chart-epochs", "Epoch / batch duration (ms)", "batch id", [
    { name: "duration", points: epochs.map(feed.duration) },
  ]);
  const e0 = epochs.length ? feed.epochTime(epochs[0]) : 0;
  drawChart("chart-watermark", "Watermark lag (ms)", "seconds (epoch triggers)", [
    { name: "lag", points: epochs.map(feed.watermarkLag).filter((p) => p !== null).map(([x, y]) => [x - e0, y]) },
  ]);
  const stateOps = new Set();
  epochs.forEach((p) => Object.keys(feed.stateRows(p)).forEach((op) => stateOps.add(op)));
  drawChart("chart-state", "State rows", "seconds (epoch triggers)", [...stateOps].map((op) => ({
    name: op,
    points: epochs.map((p) => [feed.epochTime(p) - e0, op in feed.stateRows(p) ? feed.stateRows(p)[op] : null]),
  })));
  const operators = new Set();
  epochs.forEach((p) => Object.keys(feed.latency(p)).forEach((op) => operators.add(op)));
  const latency = [];
  for (const op of operators) {
    for (const q of ["p50", "p99"]) {
      latency.push({
        name: op + " " + q,
        points: epochs.map((p) => {
          const l = feed.latency(p)[op];
          return [feed.epochTime(p) - e0, l ? l[q] : null];
        }),
      });
    }
  }
  drawChart("chart-latency", "Latency percentiles per operator, per epoch (µs)", "seconds (epoch triggers)", latency);
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
    const [epochs, live, plan] = await Promise.all(
      [getJson("progress/recent"), getJson("live/recent"), getJson("plan")]);
    if (!Array.isArray(epochs) || !Array.isArray(live) || !plan || !Array.isArray(plan.nodes)) {
      throw new Error("unexpected data from the endpoint");
    }
    drawCharts(epochs, live);
    drawPlan(plan);
    const now = feed.status(live);
    document.getElementById("query-name").textContent = feed.name(live, epochs);
    if (now) {
      const last = epochs[epochs.length - 1];
      document.getElementById("status").textContent =
        (now.is_active ? "running" : "ended") + " · " + now.input_rows + " rows in · " +
        now.output_rows + " rows out" + (last ? " · batch " + last.batchId : "") +
        " · updated " + new Date().toLocaleTimeString();
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
