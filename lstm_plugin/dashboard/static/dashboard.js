// lstm-plugin dashboard: renders each page from its JSON endpoint (/api/...) and polls it every second.
// Every string from the server goes into the page as text (textContent, never innerHTML).
"use strict";

const POLL_MS = 1000;
const COLOURS = ["#2b5fad", "#c0392b", "#7f8c8d"];
const SVG = "http://www.w3.org/2000/svg";
const ATTRIBUTES = ["href", "src", "alt", "title", "type", "placeholder", "value", "id", "colspan"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || ATTRIBUTES.includes(key)) node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function num(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (typeof value !== "number") return String(value);
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
function pct(value, digits = 2) { return value === null || value === undefined ? "–" : num(100 * value, digits) + " %"; }
function interval(value, low, high, digits = 3) {
  if (value === null || value === undefined) return "–";
  const band = low === null || low === undefined ? "" : ` [${num(low, digits)}, ${num(high, digits)}]`;
  return el("span", {}, num(value, digits), el("span", { class: "band" }, band));
}
function date(value) { return value ? String(value).slice(0, 10) : "–"; }
function show(root, ...children) { root.replaceChildren(...children.flat(3).filter((c) => c !== null && c !== undefined)); }
function errorPanel(data) { return el("div", { class: "error", role: "alert" }, data.error); }

function table(headers, rows, options = {}) {
  const head = el("tr", {}, headers.map((h, i) => {
    const th = el("th", { class: (options.numeric || []).includes(i) ? "num" : "" }, h);
    if (options.onSort) { th.classList.add("sortable"); th.addEventListener("click", () => options.onSort(i)); }
    return th;
  }));
  const body = el("tbody", {}, rows.map((row) => {
    const cells = row.cells || row;
    const tr = el("tr", row.attrs || {}, cells.map((cell, i) =>
      el("td", { class: [(options.numeric || []).includes(i) ? "num" : "", (options.wrap || []).includes(i) ? "wrap" : ""].join(" ").trim() }, cell)));
    return tr;
  }));
  return el("table", { "data-table": options.name || "" }, el("thead", {}, head), body);
}

function figures(pairs) {
  return el("div", { class: "figures" }, pairs.map(([label, value, field]) =>
    el("div", { class: "figure" }, el("div", { class: "label" }, label), el("div", { class: "value", "data-field": field || "" }, value))));
}

function lineChart(series, options = {}) {
  const width = options.width || 720, height = options.height || 180, pad = 36;
  const points = series.flatMap((s) => s.points);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("width", width); svg.setAttribute("height", height);
  svg.setAttribute("role", "img"); svg.setAttribute("aria-label", options.label || "chart");
  if (points.length < 2) return svg;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => pad + (x1 === x0 ? 0 : (x - x0) / (x1 - x0)) * (width - 2 * pad);
  const sy = (y) => height - pad / 2 - (y1 === y0 ? 0.5 : (y - y0) / (y1 - y0)) * (height - pad);
  series.forEach((s, index) => {
    const i = index + (options.colour || 0);
    const line = document.createElementNS(SVG, options.dots ? "g" : "polyline");
    if (options.dots) {
      for (const p of s.points) {
        const dot = document.createElementNS(SVG, "circle");
        dot.setAttribute("cx", sx(p[0])); dot.setAttribute("cy", sy(p[1])); dot.setAttribute("r", 1.6);
        dot.setAttribute("fill", COLOURS[i % COLOURS.length]);
        line.append(dot);
      }
    } else {
      line.setAttribute("points", s.points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" "));
      line.setAttribute("fill", "none"); line.setAttribute("stroke", COLOURS[i % COLOURS.length]);
      line.setAttribute("stroke-width", "1.5");
    }
    svg.append(line);
  });
  const label = (text, x, y) => { const t = document.createElementNS(SVG, "text"); t.setAttribute("x", x); t.setAttribute("y", y); t.textContent = text; svg.append(t); };
  const fmt = options.format || ((v) => num(v, 2));
  label(fmt(y1), 2, 12); label(fmt(y0), 2, height - 4);
  if (options.dates) { label(new Date(x0).toISOString().slice(0, 10), pad, height - 4); label(new Date(x1).toISOString().slice(0, 10), width - pad - 70, height - 4); }
  return svg;
}
function legend(names, first = 0) {
  return el("div", { class: "legend" }, names.map((name, i) => el("span", {}, el("span", { class: `swatch s${i + first}` }), name)));
}

// ---------------------------------------------------------------- Models
const modelsState = { sort: 0, descending: false, filter: "", status: "" };
const MODEL_COLUMNS = [
  ["Model", (r) => r.symbol], ["Type", (r) => r.model_type], ["Status", (r) => r.status],
  ["Version", (r) => r.version], ["Trained", (r) => r.trained_at], ["Age (days)", (r) => r.age_days],
  ["sha256", (r) => r.sha256], ["Reliability", (r) => r.reliability], ["Quality", (r) => r.quality],
  ["Live n", (r) => r.track && r.track.n], ["Live hit rate [95 %]", (r) => r.track && r.track.hit_rate],
  ["Base rate", (r) => r.track && r.track.base_rate], ["Live rank IC [95 %]", (r) => r.track && r.track.rank_ic],
  ["Shelved", (r) => r.candidate && r.candidate.model_version], ["Tuned", (r) => r.tuned ? 1 : 0], ["Why it is flagged", (r) => r.flags.length],
];
function modelCells(r) {
  const t = r.track || {};
  const link = el("a", { href: "/symbol/" + encodeURIComponent(r.symbol) }, r.symbol);
  const tuned = r.tuned ? Object.entries(r.tuned.settings || r.tuned).filter(([k]) => k !== "study").slice(0, 4).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ") : "";
  return [link, r.model_type, r.status, r.version ? "v" + r.version : "–", date(r.trained_at), num(r.age_days, 0), r.sha256 || "–",
    num(r.reliability), num(r.quality), t.n === undefined ? "–" : String(t.n), interval(t.hit_rate, t.hit_low, t.hit_high), num(t.base_rate),
    interval(t.rank_ic, t.ic_low, t.ic_high), r.candidate ? `v${r.candidate.model_version}: ${r.candidate.reason || ""}` : "",
    tuned, el("span", { class: "flags" }, r.flags.join("; "))];
}
function renderModels(root, data) {
  if (data.error) { show(root, el("h1", {}, "Models"), errorPanel(data)); return; }
  if (!root.querySelector("#models-controls")) {
    const filter = el("input", { type: "search", placeholder: "filter symbols, reasons…", "aria-label": "filter", id: "models-filter" });
    filter.addEventListener("input", () => { modelsState.filter = filter.value.toLowerCase(); renderModels(root, lastData); });
    const status = el("select", { "aria-label": "status", id: "models-status" }, el("option", { value: "" }, "every status"),
      ["ready", "outdated", "stale", "not_available", "scheduled", "training", "flagged"].map((s) => el("option", { value: s }, s)));
    status.addEventListener("change", () => { modelsState.status = status.value; renderModels(root, lastData); });
    show(root, el("h1", {}, "Models"),
      el("p", { class: "muted" }, "Live figures are the served version's recorded forecasts scored on the outcomes known now, with 95 % intervals; base rate: always calling the likelier sign on the same outcomes. Click a column to sort."),
      el("div", { class: "controls", id: "models-controls" }, filter, status, el("span", { id: "models-count", class: "muted" })),
      el("div", { id: "models-table" }));
  }
  let rows = data.filter((r) => !modelsState.filter || [r.symbol, r.status, ...r.flags].join(" ").toLowerCase().includes(modelsState.filter));
  if (modelsState.status === "flagged") rows = rows.filter((r) => r.flags.length);
  else if (modelsState.status) rows = rows.filter((r) => r.status === modelsState.status);
  const key = MODEL_COLUMNS[modelsState.sort][1];
  rows = rows.slice().sort((a, b) => {
    const x = key(a), y = key(b);
    const order = x === y ? 0 : x === null || x === undefined ? 1 : y === null || y === undefined ? -1 : x < y ? -1 : 1;
    return modelsState.descending ? -order : order;
  });
  root.querySelector("#models-count").textContent = `${rows.length} of ${data.length} models, ${data.filter((r) => r.flags.length).length} flagged`;
  const onSort = (i) => { modelsState.descending = modelsState.sort === i ? !modelsState.descending : false; modelsState.sort = i; renderModels(root, lastData); };
  root.querySelector("#models-table").replaceChildren(table(MODEL_COLUMNS.map((c) => c[0]),
    rows.map((r) => ({ cells: modelCells(r), attrs: { "data-symbol": r.symbol, class: r.flags.length ? "flagged" : "" } })),
    { onSort, name: "models", numeric: [5, 7, 8, 9, 10, 11, 12], wrap: [13, 14, 15] }));
}

// ---------------------------------------------------------------- One symbol
function renderSymbol(root, data) {
  if (data.error) { show(root, el("h1", {}, "Model"), errorPanel(data)); return; }
  const versions = table(["Version", "Event", "Reason", "Trained", "sha256", "Reliability", "Live n", "Live hit rate [95 %]", "Live rank IC [95 %]"],
    data.versions.map((v) => { const t = v.track || {}; return { cells: ["v" + v.version, v.event, v.reason || "", date(v.trained_at), v.sha256, num(v.reliability),
      t.n === undefined ? "–" : String(t.n), interval(t.hit_rate, t.hit_low, t.hit_high), interval(t.rank_ic, t.ic_low, t.ic_high)], attrs: { "data-version": v.version } }; }),
    { name: "versions", wrap: [2] });
  const known = data.forecasts.filter((f) => f.realised !== null);
  const when = (f) => Date.parse(f.bar);
  const chart = lineChart([{ points: known.map((f) => [when(f), f.expected]) }, { points: known.map((f) => [when(f), Math.log1p(f.realised)]) }],
    { dots: true, dates: true, label: "forecast against outcome" });
  const ages = lineChart([{ points: data.forecasts.map((f) => [when(f), f.age_days]) }], { dates: true, label: "model age", format: (v) => num(v, 0) + " d" });
  const calibration = table(["Score bucket", "n", "Score range", "Mean outcome", "Share up"],
    data.calibration.map((b) => [String(b.bucket), String(b.n), `${num(b.score_low)} … ${num(b.score_high)}`, pct(b.mean_realised), pct(b.share_up, 1)]),
    { name: "calibration", numeric: [1, 3, 4] });
  const recent = table(["Bar", "Symbol", "Version", "Score", "Expected", "Outcome", "Model age (days)"],
    data.forecasts.slice(-30).reverse().map((f) => [date(f.bar), f.symbol, "v" + f.version, num(f.score), num(f.expected, 4), f.realised === null ? "not known yet" : pct(f.realised), num(f.age_days, 0)]),
    { name: "forecasts", numeric: [3, 4, 5, 6] });
  show(root, el("h1", {}, `${data.symbol} (${data.model_type})`), el("h2", {}, "Versions"), versions,
    el("h2", {}, "Forecasts against outcomes"), el("p", { class: "muted" }, `${data.forecasts_recorded} forecasts recorded, ${known.length} of those shown with a known outcome.`),
    legend(["expected log return", "realised log return"]), chart,
    el("h2", {}, "Calibration"), calibration, el("h2", {}, "Model age at each forecast"), ages, el("h2", {}, "Latest forecasts"), recent);
}

// ---------------------------------------------------------------- Training
function jobRows(jobs) {
  return jobs.map((j) => ({ cells: [j.symbol, j.model_type, j.category, num(j.priority, 1), (j.reasons || []).join(", "), j.state, String(j.attempts), j.error || ""], attrs: { "data-symbol": j.symbol } }));
}
const JOB_OPTIONS = { wrap: [4, 7] };
const JOB_HEADERS = ["Model", "Type", "Tier", "Priority", "Reasons", "State", "Attempts", "Error"];
function renderTraining(root, data) {
  if (data.error) { show(root, el("h1", {}, "Training"), errorPanel(data)); return; }
  if (!data.available) { show(root, el("h1", {}, "Training"), el("p", { class: "muted" }, data.message)); return; }
  const c = data.counts;
  show(root, el("h1", {}, "Training"),
    figures([["Backend", `${data.backend} × ${data.workers}`], ["Clock", date(data.clock)], ["Last pass", date(data.last_pass)], ["Next pass", date(data.next_pass)],
      ["Requested", String(c.requests), "requests"], ["Done", String(c.done), "done"], ["Promoted", String(c.promoted), "promoted"], ["Shelved", String(c.shelved), "shelved"], ["Failed", String(c.failed), "failed"]]),
    el("h2", {}, `Running (${data.running.length})`), table(JOB_HEADERS, jobRows(data.running), { ...JOB_OPTIONS, name: "running" }),
    el("h2", {}, "Queue by priority tier"),
    data.tiers.length ? data.tiers.map((t) => [el("h3", {}, `${t.category} (priority ${num(t.priority, 1)}, ${t.jobs.length} queued)`), table(JOB_HEADERS, jobRows(t.jobs), { ...JOB_OPTIONS, name: "queue" })]) : el("p", { class: "muted" }, "Nothing queued."),
    el("h2", {}, `Failed (${data.failed.length})`), table(JOB_HEADERS, jobRows(data.failed), { ...JOB_OPTIONS, name: "failed" }),
    el("h2", {}, `Done (the newest ${data.done.length})`),
    table(["Model", "Type", "Tier", "Reasons", "Finished", "Seconds", "Version", "Stage", "Why"],
      data.done.slice().reverse().map((j) => ({ cells: [j.symbol, j.model_type, j.category, (j.reasons || []).join(", "), date(j.finished_at), num(j.seconds, 1), j.version ? "v" + j.version : "–", j.stage || "–", j.stage_reason || ""], attrs: { "data-symbol": j.symbol } })),
      { name: "done", wrap: [3, 8], numeric: [5] }));
}

// ---------------------------------------------------------------- Paper runs
function renderPaper(root, data) {
  const runs = data.map((run) => {
    if (run.error) return el("section", { class: "panel", "data-state": run.state }, el("h2", {}, run.state), errorPanel(run));
    const beat = run.heartbeat;
    const when = (p) => Date.parse(p.date);
    const d = run.last_decision;
    const decision = d ? table(["Symbol", "Target weight", "Direction", "Confidence", "Expected change", "Model"],
      Object.entries(d.forecasts).map(([symbol, f]) => [symbol, pct(d.targets[symbol] || 0, 1), f.predicted_direction || f.status || "–", pct(f.confidence, 1),
        f.price_change_pct === undefined ? "–" : num(f.price_change_pct, 2) + " %", (d.models[symbol] || {}).model || "–"]), { name: "decision" }) : el("p", { class: "muted" }, "No rebalance yet.");
    return el("section", { class: "panel", "data-state": run.state },
      el("h2", {}, run.state),
      el("p", {}, el("strong", { class: "state-" + beat.state, "data-field": "heartbeat" }, beat.state), " — ", beat.detail),
      figures([["Value", num(run.value, 2), "value"], ["Cash", num(run.cash, 2), "cash"], ["P&L", `${num(run.pnl, 2)} (${num(run.pnl_pct, 2)} %)`, "pnl"],
        ["Max drawdown", pct(run.max_drawdown), "drawdown"], ["Days", String(run.days), "days"], ["Last bar", date(run.last_bar), "last_bar"]]),
      legend(["value"]), lineChart([{ points: run.equity.map((p) => [when(p), p.value]) }], { dates: true, label: "equity", format: (v) => num(v, 0) }),
      legend(["drawdown"], 1), lineChart([{ points: run.equity.map((p) => [when(p), p.drawdown]) }], { dates: true, height: 100, label: "drawdown", colour: 1, format: (v) => pct(v, 1) }),
      el("h3", {}, "Positions"), table(["Symbol", "Size", "Price", "Value", "Model", "sha256", "Model age (days)"],
        run.positions.map((p) => ({ cells: [p.symbol, num(p.size, 0), num(p.price, 2), num(p.value, 2), p.model || "–", p.sha256 || "–", num(p.model_age_days, 0)], attrs: { "data-symbol": p.symbol } })), { name: "positions", numeric: [1, 2, 3, 6] }),
      el("h3", {}, `Last rebalance ${d ? date(d.date) : ""}`), decision,
      el("h3", {}, `Orders (${run.orders_total}; the newest 20)`),
      table(["Date", "Symbol", "Size", "Target weight", "Status"], run.orders.slice(-20).reverse().map((o) => [date(o.date), o.symbol, num(o.size, 0), pct(o.target, 1), o.status]), { name: "orders" }),
      el("h3", {}, "Fills"), table(["Date", "Symbol", "Size", "Price", "Commission"], run.fills.slice(-20).reverse().map((f) => [date(f.date), f.symbol, num(f.size, 0), num(f.price, 2), num(f.commission, 2)]), { name: "fills" }),
      el("h3", {}, "Journaled events"), run.events.length ? table(["Date", "Kind", "Message"], run.events.slice(-20).reverse().map((e) => [date(e.date), e.kind, e.message]), { name: "events", wrap: [2] }) : el("p", { class: "muted" }, "None."));
  });
  show(root, el("h1", {}, "Paper runs"), runs.length ? runs : el("p", { class: "muted" }, "No paper state folder given (--state DIR)."));
}

// ---------------------------------------------------------------- Backtests
// Daily cross-sectional rank IC of each forecaster, and of the LSTM less each, at each horizon, with 95 % intervals.
function evidenceTable(evidence) {
  const horizons = Object.entries(evidence.horizons || {});
  if (!horizons.length) return null;
  const headers = ["Forecaster", ...horizons.flatMap(([name, bars]) => [`${name} (${bars} bars): daily rank IC [95 %]`, "hit rate (base)"])];
  const rows = [];
  for (const [name, by] of Object.entries(evidence.forecasters || {})) {
    rows.push([name, ...horizons.flatMap(([h]) => { const e = by[h] || {}, d = e.daily || {}; return [interval(d.value, d.low, d.high), e.hit_rate === null || e.hit_rate === undefined ? "–" : `${num(e.hit_rate)} (${num(e.base_rate)})`]; })]);
  }
  for (const [name, by] of Object.entries(evidence.differences || {})) {
    rows.push([`${evidence.reference} − ${name}`, ...horizons.flatMap(([h]) => { const d = (by[h] || {}).daily || {}; return [interval(d.value, d.low, d.high), ""]; })]);
  }
  return [el("h3", {}, "Forecast evidence by forecaster"), table(headers, rows, { name: "evidence" })];
}

// The variants of a --variants backtest: each figure, and its difference against base paired by day, with 95 % intervals.
function variantsTable(variants) {
  if (!variants || !variants.length) return null;
  const diff = (d, digits, scale = 1) => d && d.value !== null && d.value !== undefined
    ? interval(scale * d.value, d.low === null || d.low === undefined ? null : scale * d.low, d.high === null || d.high === undefined ? null : scale * d.high, digits) : "–";
  const rows = variants.map((v) => ({
    cells: [v.name, num(v.sharpe, 2), diff(v.vs_base.sharpe, 2), pct(v.max_drawdown, 1), diff(v.vs_base.max_drawdown, 1, 100), num(v.turnover, 2), diff(v.vs_base.turnover, 2), pct(v.costs), diff(v.vs_base.costs, 2, 100), num(v.exits, 0)],
    attrs: { "data-variant": v.name },
  }));
  return [el("h3", {}, "Variants on the same models (− base: paired by day, 95 %)"),
    table(["Variant", "Sharpe", "− base", "Max drawdown", "− base (points)", "Turnover", "− base", "Costs / year", "− base (points)", "Exits"], rows, { name: "variants", numeric: [1, 2, 3, 4, 5, 6, 7, 8, 9] })];
}

function renderBacktests(root, data) {
  const reports = data.map((r) => {
    if (r.error) return el("section", { class: "panel", "data-report": r.folder }, el("h2", {}, r.folder), errorPanel(r));
    const s = r.settings, f = r.forecast;
    const evidence = evidenceTable(r.evidence);
    return el("section", { class: "panel", "data-report": r.folder },
      el("h2", {}, r.name), el("p", { class: "muted" }, `${s.symbols} symbols, ${date(s.start)} … ${date(s.end)}, ${s.rebalance} rebalances, commission ${pct(s.commission)}, slippage ${pct(s.slippage)}; ${r.folder}`),
      table(["Run", "Final value", "Return", "CAGR", "Volatility", "Sharpe [95 %]", "Sortino", "Max drawdown", "Turnover"],
        r.runs.map((x) => ({ cells: [x.run, num(x.final_value, 0), pct(x.total_return), pct(x.cagr), pct(x.volatility), interval(x.sharpe, x.sharpe_low, x.sharpe_high, 2), num(x.sortino, 2), pct(x.max_drawdown), num(x.turnover, 2)], attrs: { "data-run": x.run } })),
        { name: "runs", numeric: [1, 2, 3, 4, 5, 6, 7, 8] }),
      el("h3", {}, "Forecasts at rebalances"),
      table(["Hit rate", "Base rate", "IC [95 %]", "Rank IC [95 %]", "IC dates", "Forecasts"],
        [{ cells: [num(f.hit_rate), num(f.base_rate), interval(f.ic, f.ic_low, f.ic_high), interval(f.rank_ic, f.rank_ic_low, f.rank_ic_high), String(f.ic_dates), String(f.n_predictions)], attrs: { "data-row": "forecast" } }], { name: "forecast" }),
      r.difference ? el("p", {}, "LSTM − technical Sharpe [95 %]: ", interval(r.difference.value, r.difference.low, r.difference.high, 2)) : null,
      variantsTable(r.variants),
      evidence,
      el("h3", {}, "Caveats"), r.caveats.length ? el("ul", {}, r.caveats.map((c) => el("li", {}, c))) : el("p", { class: "muted" }, "None recorded."),
      r.pictures.includes("equity.png") ? el("img", { class: "report", src: `/api/backtests/${r.index}/equity.png`, alt: "equity of " + r.name }) : null);
  });
  show(root, el("h1", {}, "Backtests"), reports.length ? reports : el("p", { class: "muted" }, "No report folder found (--reports DIR)."));
}

// ---------------------------------------------------------------- routing and polling
const PAGES = { models: renderModels, training: renderTraining, paper: renderPaper, backtests: renderBacktests };
let lastText = null, lastData = null;
function route() {
  const path = location.pathname;
  if (path.startsWith("/symbol/")) {
    const symbol = decodeURIComponent(path.slice("/symbol/".length));
    return { api: "/api/symbol/" + encodeURIComponent(symbol), render: renderSymbol, nav: "models" };
  }
  const page = path.replace(/^\//, "") || "models";
  return { api: "/api/" + page, render: PAGES[page] || renderModels, nav: page };
}
async function poll(current) {
  try {
    const response = await fetch(current.api, { cache: "no-store", headers: { Accept: "application/json" } });
    const text = await response.text();
    if (text !== lastText) {
      const data = JSON.parse(text);
      lastText = text; lastData = data;
      current.render(document.getElementById("main"), data);
    }
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    document.getElementById("updated").textContent = "cannot reach the dashboard: " + error;
  }
  setTimeout(() => poll(current), POLL_MS);
}
document.addEventListener("DOMContentLoaded", () => {
  const current = route();
  for (const link of document.querySelectorAll("nav a")) if (link.dataset.nav === current.nav) link.classList.add("current");
  poll(current);
});
