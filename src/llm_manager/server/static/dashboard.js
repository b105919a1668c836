// The gateway dashboard: polls this gateway's /admin routes and draws them. Plain DOM and hand-made SVG, no
// library and no other host (the page's Content-Security-Policy allows none). Text from the server is only ever
// set as textContent, never parsed as HTML.
(() => {
  "use strict";

  const KEY_STORE = "llm-manager.admin-key";
  const BUCKETS = { "5m": "5s", "15m": "15s", "1h": "1m", "6h": "5m", "24h": "30m" };
  const COLORS = ["#3567d6", "#e07b24", "#2a9d8f", "#a855c7", "#d64545", "#7a8a1f", "#c2417a", "#4b5563"];
  const SVG = "http://www.w3.org/2000/svg";
  const H = 200, PAD = { l: 56, r: 12, t: 10, b: 24 };

  const query = new URLSearchParams(location.search);
  const refreshS = readRefresh(query.get("refresh"));
  let windowKey = query.get("window") in BUCKETS ? query.get("window") : "15m";
  const expanded = new Set();
  let busy = false;
  let lastSeries = null;

  const $ = (id) => document.getElementById(id);

  function readRefresh(text) {
    if (text === null || text.trim() === "") return 5;
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0) return 5;
    return n === 0 ? 0 : Math.min(3600, Math.max(1, n));
  }

  // -- talking to the gateway ------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path) {
    const headers = { Accept: "application/json" };
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers.Authorization = "Bearer " + key;
    let resp;
    try {
      resp = await fetch(path, { headers, cache: "no-store", credentials: "omit" });
    } catch (err) {
      throw new ApiError(0, "cannot reach the gateway (" + err.message + ")", null);
    }
    let body = null;
    try {
      body = await resp.json();
    } catch (err) {
      body = null;
    }
    if (!resp.ok) {
      const e = (body && body.error) || {};
      throw new ApiError(resp.status, e.message || resp.statusText, e.code || null);
    }
    return body;
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const win = encodeURIComponent(windowKey);
      const [series, status, recent] = await Promise.all([
        api("admin/timeseries?window=" + win + "&bucket=" + encodeURIComponent(BUCKETS[windowKey])),
        api("admin/status"),
        api("admin/requests?limit=25&since=" + win),
      ]);
      setAuth(null);
      setError(null);
      lastSeries = series;
      drawCharts(series);
      drawBreakers(status);
      drawBudgets(status);
      drawRequests(recent);
      $("updated").textContent = "updated " + clock(new Date(), true);
      document.body.dataset.loaded = "1";
    } catch (err) {
      if (err.status === 401) {
        setAuth(
          sessionStorage.getItem(KEY_STORE)
            ? "The gateway refused this admin key (" + err.message + "). Paste a valid admin key."
            : "This gateway has API keys: its dashboard data needs an admin key. Paste one below."
        );
      } else if (err.status === 403) {
        setAuth("This key is not an admin key: the dashboard needs one created with --admin.");
      } else {
        setError("Could not load the dashboard data: " + (err.status ? "HTTP " + err.status + ": " : "") + err.message);
      }
    } finally {
      busy = false;
    }
  }

  // -- notices and the key form ----------------------------------------------------------------------------------

  function setAuth(message) {
    const box = $("auth");
    if (message === null) {
      if (box.dataset.forced !== "1") box.hidden = true;
      return;
    }
    $("auth-message").textContent = message;
    box.hidden = false;
    box.dataset.state = "needed";
  }

  function setError(message) {
    const box = $("error");
    box.hidden = message === null;
    box.textContent = message || "";
  }

  function wireKeyForm() {
    $("key-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const value = $("key-input").value.trim();
      if (value) sessionStorage.setItem(KEY_STORE, value);
      $("key-input").value = "";
      $("auth").dataset.forced = "";
      $("auth").dataset.state = "";
      refresh();
    });
    $("key-forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      refresh();
    });
    $("key-toggle").addEventListener("click", () => {
      const box = $("auth");
      box.hidden = !box.hidden;
      box.dataset.forced = box.hidden ? "" : "1";
      if (!box.hidden && box.dataset.state !== "needed") {
        $("auth-message").textContent = sessionStorage.getItem(KEY_STORE)
          ? "An admin key is set for this tab."
          : "No admin key is set (none is needed while the gateway has no keys).";
      }
    });
  }

  // -- formatting ------------------------------------------------------------------------------------------------

  const pad2 = (n) => String(n).padStart(2, "0");

  function clock(d, seconds) {
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + (seconds ? ":" + pad2(d.getSeconds()) : "");
  }

  function usd(value) {
    if (value === null || value === undefined) return "–";
    const n = Number(value);
    if (n === 0) return "$0";
    if (n >= 1) return "$" + n.toFixed(2);
    return "$" + n.toPrecision(3);
  }

  function compact(n) {
    if (n === 0) return "0";
    const a = Math.abs(n);
    if (a >= 1000) return (n / 1000).toPrecision(3) + "k";
    if (a >= 1) return String(Number(n.toPrecision(3)));
    return n.toPrecision(2);
  }

  function ms(value) {
    if (value === null || value === undefined) return "–";
    return value >= 1000 ? (value / 1000).toFixed(2) + " s" : value.toFixed(value < 10 ? 2 : 0) + " ms";
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // -- charts ----------------------------------------------------------------------------------------------------

  // A round upper bound for the y axis (1, 2 or 5 times a power of ten).
  function niceMax(value) {
    if (!(value > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(value)));
    for (const m of [1, 2, 5, 10]) if (m * p >= value) return m * p;
    return 10 * p;
  }

  // Axes, grid and time labels; returns the x and y scales of the plot area. The drawing is as wide as the
  // element (one SVG unit per pixel), so a wide chart gets more room rather than bigger letters.
  function frame(root, ts, bucketS, yMax, yFmt) {
    root.replaceChildren();
    const W = Math.max(320, Math.round(root.getBoundingClientRect().width) || 640);
    root.setAttribute("viewBox", "0 0 " + W + " " + H);
    const x = (t) => PAD.l + ((t - ts[0]) / (ts.length * bucketS)) * (W - PAD.l - PAD.r);
    const y = (v) => H - PAD.b - (v / yMax) * (H - PAD.t - PAD.b);
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4;
      root.append(svg("line", { class: "grid", x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }));
      root.append(svg("text", { class: "axis-label", x: PAD.l - 6, y: y(v) + 4, "text-anchor": "end" }, yFmt(v)));
    }
    const span = ts.length * bucketS;
    for (let i = 0; i <= 4; i++) {
      const t = ts[0] + (span * i) / 4;
      const anchor = i === 0 ? "start" : i === 4 ? "end" : "middle";
      root.append(
        svg("text", { class: "axis-label", x: x(t), y: H - 6, "text-anchor": anchor }, clock(new Date(t * 1000), span <= 1800))
      );
    }
    return { x, y, W };
  }

  function noData(root, W) {
    root.append(svg("text", { class: "empty-label", x: W / 2, y: H / 2, "text-anchor": "middle" }, "no traffic in this window"));
  }

  // Lines through the buckets' centres, a dot on each value (a lone value has no line); null breaks the line.
  function lineChart(root, series, lines, yFmt) {
    const ts = series.buckets.map((b) => b.t);
    const all = lines.flatMap((l) => l.values.filter((v) => v !== null));
    const { x, y, W } = frame(root, ts, series.bucket_s, niceMax(Math.max(0, ...all)), yFmt);
    let points = 0;
    for (const line of lines) {
      let d = "";
      let pen = false;
      const dots = [];
      line.values.forEach((v, i) => {
        if (v === null) {
          pen = false;
          return;
        }
        const px = x(ts[i] + series.bucket_s / 2).toFixed(1), py = y(v).toFixed(1);
        d += (pen ? "L" : "M") + px + " " + py;
        const dot = svg("circle", { cx: px, cy: py, r: 2.5, fill: line.color });
        dot.append(svg("title", {}, clock(new Date(ts[i] * 1000), true) + "  " + line.name + ": " + ms(v)));
        dots.push(dot);
        pen = true;
        points += 1;
      });
      if (d) root.append(svg("path", { class: "line", d, stroke: line.color, "data-series": line.name }), ...dots);
    }
    if (!points) noData(root, W);
    root.dataset.points = String(points);
  }

  // Bars stacked per bucket, one colour per series.
  function barChart(root, series, stacks, yFmt) {
    const ts = series.buckets.map((b) => b.t);
    const sums = ts.map((_, i) => stacks.reduce((s, st) => s + st.values[i], 0));
    const { x, y, W } = frame(root, ts, series.bucket_s, niceMax(Math.max(0, ...sums)), yFmt);
    const width = Math.max(1, x(ts[0] + series.bucket_s) - x(ts[0]) - 1);
    let bars = 0;
    ts.forEach((t, i) => {
      let base = 0;
      for (const st of stacks) {
        const v = st.values[i];
        if (!(v > 0)) continue;
        const rect = svg("rect", {
          x: x(t).toFixed(1), y: y(base + v).toFixed(1), width: width.toFixed(1),
          height: Math.max(0.5, y(base) - y(base + v)).toFixed(1), fill: st.color, "data-series": st.name,
        });
        rect.append(svg("title", {}, clock(new Date(t * 1000), true) + "  " + st.name + ": " + st.label(v)));
        root.append(rect);
        base += v;
        bars += 1;
      }
    });
    if (!bars) noData(root, W);
    root.dataset.points = String(bars);
  }

  function drawCharts(series) {
    drawRate(series);
    drawLatency(series);
    drawCost(series);
  }

  function drawRate(series) {
    const per = (n) => n / series.bucket_s;
    const root = $("chart-rate");
    barChart(root, series, [
      { name: "answered", color: "#3567d6", values: series.buckets.map((b) => per(b.requests - b.errors)), label: (v) => compact(v) + " req/s" },
      { name: "failed", color: "#d64545", values: series.buckets.map((b) => per(b.errors)), label: (v) => compact(v) + " req/s" },
    ], compact);
    root.dataset.requests = String(series.buckets.reduce((s, b) => s + b.requests, 0));
    root.dataset.errors = String(series.buckets.reduce((s, b) => s + b.errors, 0));
  }

  function drawLatency(series) {
    const root = $("chart-latency");
    lineChart(root, series, [
      { name: "p50", color: "#3567d6", values: series.buckets.map((b) => b.latency_p50_ms) },
      { name: "p95", color: "#e07b24", values: series.buckets.map((b) => b.latency_p95_ms) },
    ], compact);
  }

  function colorOf(series, key) {
    return COLORS[series.keys.indexOf(key) % COLORS.length];
  }

  function drawCost(series) {
    const group = series.by + "s";
    const stacks = series.keys.map((key) => ({
      name: key,
      color: colorOf(series, key),
      values: series.buckets.map((b) => (b[group][key] ? Number(b[group][key].cost) : 0)),
      label: usd,
    }));
    const root = $("chart-cost");
    barChart(root, series, stacks, (v) => (v === 0 ? "$0" : "$" + compact(v)));
    const total = stacks.reduce((s, st) => s + st.values.reduce((a, v) => a + v, 0), 0);
    root.dataset.total = String(total);
    const legend = $("legend-cost");
    legend.replaceChildren();
    for (const st of stacks) {
      const sum = st.values.reduce((a, v) => a + v, 0);
      const item = el("span", { "data-series": st.name });
      const swatch = svg("svg", { width: 10, height: 10, viewBox: "0 0 10 10" });
      swatch.append(svg("rect", { width: 10, height: 10, fill: st.color }));
      item.append(swatch, document.createTextNode(st.name + " " + usd(sum)));
      legend.append(item);
    }
  }

  // -- tables and gauges -----------------------------------------------------------------------------------------

  function badge(state) {
    return el("span", { class: "badge " + state }, state.replace("_", " "));
  }

  function drawBreakers(status) {
    const body = $("breakers").querySelector("tbody");
    body.replaceChildren();
    for (const [name, dep] of Object.entries(status.deployments || {})) {
      for (const [key, b] of Object.entries(dep.breakers || {})) {
        const row = el("tr", { "data-deployment": name, "data-state": b.state });
        const state = el("td");
        state.append(badge(b.state));
        row.append(
          el("td", {}, name),
          el("td", { class: "mono" }, key),
          state,
          el("td", { class: "num" }, String(b.failures)),
          el("td", { class: "num" }, b.state === "closed" ? "–" : b.cooldown_left_s.toFixed(1) + " s")
        );
        body.append(row);
      }
    }
  }

  function drawBudgets(status) {
    const box = $("budgets");
    box.replaceChildren();
    const budgets = status.budgets || [];
    if (!budgets.length) {
      box.append(el("p", { class: "empty" }, "No budgets configured."));
      return;
    }
    for (const b of budgets) {
      const used = Number(b.spent_usd) + Number(b.reserved_usd);
      const limit = Number(b.limit_usd);
      const pct = limit > 0 ? (used / limit) * 100 : 0;
      const soft = b.soft_limit_pct;
      const level = pct >= 100 ? " over" : soft !== null && pct >= soft ? " soft" : "";
      const gauge = el("div", { class: "gauge" + level, "data-budget": b.budget, "data-value": b.value });
      const who = b.scope === "global" ? "" : " · " + b.scope + " " + b.value;
      const label = el("div", { class: "label" });
      label.append(
        el("span", {}, b.budget + who + " (" + b.period + ")"),
        el("span", { class: "mono" }, usd(used) + " of " + usd(limit) + " · " + pct.toFixed(1) + "%")
      );
      const bar = svg("svg", { viewBox: "0 0 300 14", preserveAspectRatio: "none" });
      bar.append(svg("rect", { class: "track", width: 300, height: 14, rx: 3 }));
      bar.append(svg("rect", { class: "used", width: (Math.min(100, pct) * 3).toFixed(1), height: 14, rx: 3 }));
      if (soft !== null) bar.append(svg("line", { class: "soft-mark", x1: soft * 3, x2: soft * 3, y1: 0, y2: 14 }));
      gauge.append(label, bar);
      box.append(gauge);
    }
  }

  function drawRequests(page) {
    const body = $("requests").querySelector("tbody");
    body.replaceChildren();
    if (!page.requests.length) {
      const row = el("tr");
      row.append(el("td", { colspan: 9, class: "empty" }, "No requests in this window."));
      body.append(row);
      return;
    }
    for (const r of page.requests) {
      const failed = !["ok", "cached", "deduplicated"].includes(r.status);
      const latency = r.attempts.reduce((s, a) => s + a.latency_ms, 0);
      const open = expanded.has(r.request_id);
      const row = el("tr", { class: "request", "data-request-id": r.request_id, "data-status": r.status });
      const toggle = el("button", { class: "expand", type: "button", "aria-expanded": String(open), "aria-label": "attempts" }, open ? "▾" : "▸");
      const first = el("td");
      first.append(toggle);
      const status = el("td");
      status.append(badge(failed ? "failed" : r.status));
      row.append(
        first,
        el("td", {}, clock(new Date(r.ts), true)),
        el("td", { class: "mono", title: r.request_id }, r.request_id),
        el("td", {}, r.task),
        status,
        el("td", {}, failed ? "–" : r.deployment),
        el("td", { class: "num" }, String(r.attempts.length)),
        el("td", { class: "num" }, ms(latency)),
        el("td", { class: "num" }, usd(r.cost))
      );
      const detail = el("tr", { class: "attempts", "data-request-id": r.request_id });
      detail.hidden = !open;
      const cell = el("td", { colspan: 9 });
      cell.append(attemptsTable(r.attempts));
      detail.append(cell);
      row.addEventListener("click", () => {
        const now = !expanded.has(r.request_id);
        if (now) expanded.add(r.request_id);
        else expanded.delete(r.request_id);
        detail.hidden = !now;
        toggle.textContent = now ? "▾" : "▸";
        toggle.setAttribute("aria-expanded", String(now));
      });
      body.append(row, detail);
    }
  }

  function attemptsTable(attempts) {
    const table = el("table");
    const head = el("tr");
    for (const h of ["#", "Deployment", "Status", "Error", "Latency", "Tokens in / out", "Cost"]) head.append(el("th", {}, h));
    table.append(head);
    for (const a of attempts) {
      const row = el("tr", { class: "attempt", "data-status": a.status });
      const status = el("td");
      status.append(badge(a.status));
      row.append(
        el("td", {}, String(a.attempt)),
        el("td", {}, a.deployment),
        status,
        el("td", { class: "mono" }, a.error_code || "–"),
        el("td", { class: "num" }, ms(a.latency_ms)),
        el("td", { class: "num" }, a.prompt_tokens + " / " + a.completion_tokens),
        el("td", { class: "num" }, usd(a.cost))
      );
      table.append(row);
    }
    return table;
  }

  // -- start -----------------------------------------------------------------------------------------------------

  function start() {
    const select = $("window");
    select.value = windowKey;
    select.addEventListener("change", () => {
      windowKey = select.value;
      query.set("window", windowKey);
      history.replaceState(null, "", "?" + query.toString());
      refresh();
    });
    wireKeyForm();
    let resizing = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => lastSeries && drawCharts(lastSeries), 150);
    });
    $("refresh-info").textContent = refreshS ? "refresh every " + refreshS + " s" : "auto-refresh off";
    if (refreshS) {
      setInterval(() => {
        if (!document.hidden) refresh();
      }, refreshS * 1000);
      document.addEventListener("visibilitychange", () => {
        if (!document.hidden) refresh();
      });
    }
    refresh();
  }

  start();
})();
