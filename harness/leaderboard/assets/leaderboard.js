// harness leaderboard: draws the table from the releases' JSON embedded in index.html.
// Everything from a record goes into the page as a text node or an attribute value, never as HTML.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("releases").textContent);
  const RELEASES = DATA.releases; // newest first
  const HEX = /^[0-9a-f]{64}$/;
  const state = { release: 0, view: "value", wrapper: "", family: "", subtasks: false, normalised: false, sort: null,
    measure: "", sweep: 0, cost: "weight_mb" };
  const SVG = "http://www.w3.org/2000/svg";
  let plotCount = 0;
  const COSTS = {
    weight_mb: ["weight (MB)", (c) => c.weight_bytes / 1e6],
    gflops_per_token: ["forward GFLOPs per token", (c) => c.flops_per_token / 1e9],
    bits_per_parameter: ["whole model: stored bits per parameter", (c) => (8 * c.weight_bytes) / c.parameters],
  };
  const $ = (id) => document.getElementById(id);

  // Whether higher is better: as the column declares, but never for a spread (`*_std`), which is
  // neither better nor worse when it moves (harness.analysis._stats.direction).
  function direction(column) {
    return column.metric.split(",")[0].endsWith("_std") ? null : column.higher_is_better;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function fmt(value, digits = 4) {
    if (value === null || value === undefined) return "–";
    if (!isFinite(value)) return String(value);
    const size = Math.abs(value);
    if (value !== 0 && (size >= 1e5 || size < Math.pow(10, -digits))) return value.toPrecision(3);
    return value.toFixed(size >= 100 ? Math.min(2, digits) : digits);
  }
  const signed = (value) => (value > 0 ? "+" : "") + fmt(value);
  const shortName = (model) => (model.indexOf("+") < 0 ? model : model.slice(model.indexOf("+")));
  const families = (row) => row.lineage.slice(1).map((step) => step.family);
  const isBase = (row) => row.identity === row.base;
  const release = () => RELEASES[state.release];
  const variantHref = (version, identity) => (HEX.test(identity) ? `variants/v${version}/${identity}.html` : null);

  function columnLabel(column) {
    return `${column.task} ${column.metric}`;
  }
  function columnDetail(column) {
    const parts = [`v${column.version}`];
    if (column.num_fewshot !== null) parts.push(`${column.num_fewshot}-shot`);
    if (column.n_samples !== null) parts.push(`n=${column.n_samples}`);
    if (column.scorer) parts.push(`scorer ${column.scorer.name}`);
    if (direction(column) === false) parts.push("lower is better");
    return parts.join(" · ");
  }

  function visibleColumns(shown) {
    const rows = shown.flatMap((g) => (g.base ? [g.base] : []).concat(g.variants));
    return release().columns.filter((c) =>
      (state.subtasks || c.headline) && (!state.family || c.family === state.family) && rows.some((r) => c.id in r.cells)
      && (!state.normalised || state.view === "difference" || c.random_baseline !== null));
  }

  function groups() {
    const found = new Map();
    for (const row of release().rows) {
      if (!found.has(row.base)) found.set(row.base, { base: null, variants: [] });
      const group = found.get(row.base);
      if (isBase(row)) group.base = row; else group.variants.push(row);
    }
    const list = [...found.values()];
    if (!state.wrapper) return list;
    return list
      .map((g) => ({ base: g.base, variants: g.variants.filter((v) => families(v).includes(state.wrapper)) }))
      .filter((g) => g.variants.length > 0);
  }

  function cellNumber(row, column) {
    const cell = row.cells[column.id];
    if (!cell) return null;
    if (state.view === "difference" && !isBase(row)) return cell.difference ? cell.difference.difference : null;
    if (state.normalised) return cell.normalised;
    return cell.value;
  }

  function sortKey(row, key) {
    if (key === "name") return row.model;
    const column = release().columns.find((c) => c.id === key);
    return column ? cellNumber(row, column) : null;
  }

  function byKey(key, direction) {
    return (a, b) => {
      const x = sortKey(a, key), y = sortKey(b, key);
      if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1; // missing last
      if (y === null || y === undefined) return -1;
      const order = typeof x === "string" ? x.localeCompare(y) : x - y;
      return direction === "ascending" ? order : -order;
    };
  }

  function sorted(list) {
    if (!state.sort) return list;
    const compare = byKey(state.sort.key, state.sort.direction);
    const out = list.map((g) => ({ base: g.base, variants: [...g.variants].sort(compare) }));
    // groups follow their base (a group without its base in the release goes last)
    return out.sort((g, h) => (g.base && h.base ? compare(g.base, h.base) : g.base ? -1 : h.base ? 1 : 0));
  }

  function sortButton(key, label, detail, column) {
    const active = state.sort && state.sort.key === key;
    const arrow = active ? (state.sort.direction === "ascending" ? " ▲" : " ▼") : "";
    return el("button", { type: "button", class: "sort", "data-sort": key,
      "aria-label": `Sort by ${label}${detail ? " (" + detail + ")" : ""}` },
      label, el("span", { class: "arrow", "aria-hidden": "true" }, arrow),
      detail ? el("span", { class: "detail" }, detail) : null);
  }

  function header(columns) {
    const ariaSort = (key) => (state.sort && state.sort.key === key ? state.sort.direction : "none");
    const cells = [el("th", { scope: "col", "aria-sort": ariaSort("name") }, sortButton("name", "Variant", "", null))];
    for (const column of columns) {
      cells.push(el("th", { scope: "col", class: "num", "aria-sort": ariaSort(column.id), "data-column": column.id,
        title: `data sha256 ${column.data_sha256}${column.scorer ? "; scorer " + column.scorer.name + " " + column.scorer.version : ""}` },
        sortButton(column.id, columnLabel(column), columnDetail(column), column)));
    }
    return el("tr", {}, cells);
  }

  // Runs made from a dirty tree (uncommitted changes), published with --allow-dirty.
  const dirtyRuns = (r) => new Set(r.runs.filter((run) => run.git_dirty).map((run) => run.run_id));
  const DIRTY_TITLE = "made from a checkout with uncommitted changes (git_dirty); published with --allow-dirty";

  function nameCell(row) {
    const href = variantHref(release().version, row.identity);
    const name = isBase(row) ? row.model : shortName(row.model);
    // a line may break after + : , = (model strings have no spaces)
    const pieces = name.split(/(?<=[+:,=])/).flatMap((piece, i) => (i ? [el("wbr"), piece] : [piece]));
    const link = href ? el("a", { href, title: row.model }, pieces) : el("span", { title: row.model }, pieces);
    const tags = [...new Set(families(row))].map((f) => el("span", { class: "tag" }, f));
    const dirty = dirtyRuns(release());
    const from = [...new Set(Object.values(row.cells).map((cell) => cell.run))].filter((run) => dirty.has(run));
    const mark = from.length ? el("span", { class: "dirty", title: `values from run ${from.join(", ")}, ${DIRTY_TITLE}` }, "dirty tree") : null;
    return el("th", { scope: "row" }, link, tags, mark);
  }

  function valueCell(row, column) {
    const cell = row.cells[column.id];
    const attrs = { class: "num", "data-column": column.id };
    if (!cell) return el("td", attrs, el("span", { class: "missing", title: "not evaluated" }, "–"));
    const dirty = dirtyRuns(release()).has(cell.run) ? ` (${DIRTY_TITLE})` : "";
    attrs.title = `from run ${cell.run}${dirty}`;
    if (state.view === "difference" && !isBase(row)) {
      const d = cell.difference;
      if (!d || d.difference === null) {
        return el("td", attrs, el("span", { class: "missing", title: "its base was not evaluated on this column" }, "–"));
      }
      // An interval end within float rounding of 0 is 0 (harness.analysis._stats.bootstrap_interval
      // makes it so; releases built before that can hold ends like -2.7e-17).
      const same = 1e-12 * Math.max(1, Math.abs(d.base_value ?? 0));
      const excludesZero = d.ci_low !== null && d.ci_high !== null && (d.ci_low > same || d.ci_high < -same);
      const better = direction(column);
      let verdict = "", mark = "";
      if (excludesZero && better !== null) {
        const good = (d.difference > 0) === better;
        verdict = good ? "better" : "worse";
        mark = good ? "▲ " : "▼ ";
      }
      attrs.title = `from run ${cell.run}${dirty}, base from run ${d.base_run}; ${d.n} paired documents; base ${fmt(d.base_value)}`
        + (verdict ? `; ${verdict} than the base (interval excludes 0)` : "; interval includes 0");
      return el("td", attrs,
        el("span", { class: `difference ${verdict}` }, mark + signed(d.difference)),
        el("span", { class: "ci" }, `[${signed(d.ci_low)}, ${signed(d.ci_high)}]`));
    }
    if (state.normalised) {
      return el("td", attrs, cell.normalised === null ? el("span", { class: "missing", title: "no random baseline" }, "–")
        : el("span", { class: "value" }, fmt(cell.normalised, 1)));
    }
    const main = el("span", { class: state.view === "difference" ? "value reference" : "value" }, fmt(cell.value));
    return el("td", attrs, main, cell.stderr === null ? null : el("span", { class: "stderr" }, `± ${fmt(cell.stderr)}`));
  }

  function body(group, columns) {
    const rows = [];
    const rowOf = (row, kind) => el("tr", { class: kind, "data-identity": row.identity, "data-base": row.base },
      nameCell(row), columns.map((c) => valueCell(row, c)));
    if (group.base) rows.push(rowOf(group.base, "base"));
    for (const variant of group.variants) rows.push(rowOf(variant, "variant"));
    return el("tbody", { "data-base": group.base ? group.base.identity : "" }, rows);
  }

  function fillSelect(select, options, current) {
    select.replaceChildren(...options.map(([value, label]) => el("option", { value, selected: value === current }, label)));
  }

  function controls() {
    const r = release();
    fillSelect($("release"), RELEASES.map((x, i) => [String(i), `v${x.version}${i === 0 ? " (latest)" : ""}: ${x.rows.length} variants`]), String(state.release));
    const wrapperFamilies = [...new Set(r.rows.flatMap(families))].sort();
    if (!wrapperFamilies.includes(state.wrapper)) state.wrapper = "";
    fillSelect($("wrapper-family"), [["", "All"], ...wrapperFamilies.map((f) => [f, f])], state.wrapper);
    const taskFamilies = [...new Set(r.columns.map((c) => c.family))].sort();
    if (!taskFamilies.includes(state.family)) state.family = "";
    fillSelect($("task-family"), [["", "All"], ...taskFamilies.map((f) => [f, f])], state.family);
    const normalised = $("normalised");
    normalised.disabled = !r.normalisation;
    if (!r.normalisation) state.normalised = false;
    normalised.checked = state.normalised;
    $("subtasks").checked = state.subtasks;
    for (const radio of document.querySelectorAll("input[name=view]")) radio.checked = radio.value === state.view;
  }

  function changelog() {
    const r = release();
    const log = r.changelog;
    const previous = RELEASES.find((x) => x.version === log.previous);
    const models = new Map([...(previous ? previous.rows : []), ...r.rows].map((row) => [row.identity, row.model]));
    const labels = new Map([...(previous ? previous.columns : []), ...r.columns].map((c) => [c.id, `${columnLabel(c)} (${columnDetail(c)})`]));
    const list = (title, items) => items.length === 0 ? null : el("details", {},
      el("summary", {}, `${title}: ${items.length}`), el("ul", {}, items.map((text) => el("li", {}, text))));
    const intro = log.previous
      ? `Release v${r.version} (${log.level} change from v${log.previous}).`
      : `Release v${r.version}: the first release.`;
    $("changelog").replaceChildren(...[
      el("p", {}, intro, log.new_cells ? ` ${log.new_cells} new cells in existing columns.` : ""),
      list("New variants", log.new_rows.map((id) => models.get(id) || id)),
      list("Retired variants", log.retired_rows.map((id) => models.get(id) || id)),
      list("New columns", log.new_columns.map((id) => labels.get(id) || id)),
      list("Retired columns", log.retired_columns.map((id) => labels.get(id) || id)),
      list("Task version changes", log.version_changes.map((v) => `${v.task}: ${v.old} → ${v.new}`)),
      list("Changed values", log.changed_values.map((v) => `${models.get(v.row) || v.row}, ${labels.get(v.column) || v.column}: ${fmt(v.old)} → ${fmt(v.new)}`)),
      list("New runs", log.new_runs || []),
      list("Retired runs", log.retired_runs || []),
      (log.dirty_runs || []).length === 0 ? null : el("p", { class: "dirty-note" },
        el("span", { class: "dirty" }, "dirty tree"),
        ` ${log.dirty_runs.length} run${log.dirty_runs.length === 1 ? " was" : "s were"} made from a checkout with uncommitted changes`
        + ` and published with --allow-dirty until run again from a clean one: ${log.dirty_runs.join(", ")}.`),
    ].filter((node) => node !== null));
    $("runs").replaceChildren(...r.runs.map((run) => {
      const report = r.links.reports[run.run_id];
      return el("li", {}, el("code", {}, run.run_id), ` (${run.created_at}, harness ${run.harness_version})`,
        run.git_dirty ? el("span", { class: "dirty", title: DIRTY_TITLE }, "dirty tree") : null,
        report ? [" ", el("a", { href: report }, "report")] : null,
        el("br"), el("code", { class: "command" }, run.command.join(" ")));
    }));
  }

  function render() {
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.sort : undefined;
    controls();
    const r = release();
    const list = sorted(groups());
    const columns = visibleColumns(list);
    const table = $("board");
    table.tHead.replaceChildren(header(columns));
    for (const old of [...table.tBodies]) old.remove();
    for (const group of list) table.appendChild(body(group, columns));
    const variants = list.reduce((n, g) => n + g.variants.length, 0);
    $("board-caption").textContent = `Release v${r.version}: ${state.view === "difference" ? "difference of each variant from its base" : state.normalised ? "normalised scores" : "values"}`;
    const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
    $("summary").textContent = `${plural(list.length, "base")} with ${plural(variants, "variant")}; ${columns.length} of ${plural(r.columns.length, "column")} shown.`;
    const note = $("normalisation-note");
    note.hidden = !state.normalised;
    note.textContent = state.normalised && r.normalisation ? `Normalised scores: ${r.normalisation.method}.` : "";
    $("legend").textContent = state.view === "difference"
      ? `Variant − base on the same documents, with the ${Math.round(r.comparison.confidence * 100)}% paired bootstrap interval (${r.comparison.resamples} resamples). ▲ better, ▼ worse than the base when the interval excludes 0; base rows show the base's value.`
      : state.normalised ? "Normalised score: 0 is the random baseline (or below it), 100 a perfect score; only columns with a random baseline are shown."
      : "Value and its standard error (lm-eval's). Hover a cell for the run it comes from.";
    changelog();
    plots();
    if (focused) {
      const again = document.querySelector(`button.sort[data-sort="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
    history.replaceState(null, "", `#release=v${r.version}`);
  }

  // Plots: inline SVG drawn from the release's cells; labels are text nodes like everything else.
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function chart(title, xLabel, yLabel, points, options) {
    // points: [{x, y, err, label, front}]; options: {line, baseline, frontLine, categories}
    const W = 560, H = 320, L = 64, R = 16, T = 16, B = 48;
    const xs = points.map((p) => p.x), ys = points.flatMap((p) => [p.y - (p.err || 0), p.y + (p.err || 0)]);
    if (options.baseline !== null && options.baseline !== undefined) ys.push(options.baseline);
    const span = (lo, hi) => (hi > lo ? [lo, hi] : [lo - 1e-3 - Math.abs(lo) * 0.05, hi + 1e-3 + Math.abs(hi) * 0.05]);
    let [x0, x1] = span(Math.min(...xs), Math.max(...xs));
    let [y0, y1] = span(Math.min(...ys), Math.max(...ys));
    const padX = (x1 - x0) * 0.06, padY = (y1 - y0) * 0.08;
    x0 -= padX; x1 += padX; y0 -= padY; y1 += padY;
    const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
    const sy = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
    const id = `plot-${++plotCount}`;
    const parts = [svg("title", { id: `${id}-t` }, title),
      svg("desc", { id: `${id}-d` }, `${yLabel} against ${xLabel}: ` + points.map((p) => `${p.label} ${fmt(p.y)}`).join("; "))];
    const tick = (v) => String(Number(v.toPrecision(3)));
    for (let i = 0; i <= 4; i++) {
      const y = y0 + ((y1 - y0) * i) / 4;
      parts.push(svg("line", { class: "grid", x1: L, x2: W - R, y1: sy(y), y2: sy(y) }),
        svg("text", { x: L - 6, y: sy(y) + 4, "text-anchor": "end" }, tick(y)));
    }
    // x ticks where the points are (a sweep's values), thinned when they would crowd
    const ticks = new Map(points.map((p) => [p.x, p.category || tick(p.x)]));
    let last = -Infinity;
    for (const [x, label] of [...ticks].sort((a, b) => a[0] - b[0])) {
      if (sx(x) - last < 36) continue;
      last = sx(x);
      parts.push(svg("text", { x: sx(x), y: H - B + 16, "text-anchor": "middle" }, label));
    }
    parts.push(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }),
      svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }),
      svg("text", { x: (L + W - R) / 2, y: H - 10, "text-anchor": "middle" }, xLabel),
      svg("text", { x: 14, y: (T + H - B) / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${(T + H - B) / 2})` }, yLabel));
    if (options.baseline !== null && options.baseline !== undefined) {
      parts.push(svg("line", { class: "baseline", x1: L, x2: W - R, y1: sy(options.baseline), y2: sy(options.baseline) }));
    }
    const linked = options.line ? points : options.frontLine ? points.filter((p) => p.front) : [];
    if (linked.length > 1) {
      const ordered = [...linked].sort((a, b) => a.x - b.x);
      parts.push(svg("polyline", { class: "series", points: ordered.map((p) => `${sx(p.x)},${sy(p.y)}`).join(" ") }));
    }
    for (const p of points) {
      if (p.err) parts.push(svg("line", { class: "error", x1: sx(p.x), x2: sx(p.x), y1: sy(p.y - p.err), y2: sy(p.y + p.err) }));
      parts.push(svg("circle", { class: p.front ? "point front" : "point", cx: sx(p.x), cy: sy(p.y), r: 4.5,
        "data-identity": p.identity }, svg("title", {}, `${p.label}: ${fmt(p.y)}${p.err ? " ± " + fmt(p.err) : ""}`)));
    }
    const figure = el("figure", { class: "plot" });
    figure.appendChild(svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-t ${id}-d` }, parts));
    figure.appendChild(el("figcaption", {}, title));
    const table = el("table", {}, el("tr", {}, el("th", { scope: "col" }, "variant"), el("th", { scope: "col" }, xLabel), el("th", { scope: "col" }, yLabel)),
      points.map((p) => el("tr", {}, el("td", {}, p.label), el("td", { class: "num" }, p.category || fmt(p.x)), el("td", { class: "num" }, fmt(p.y)))));
    figure.appendChild(el("details", {}, el("summary", {}, "The numbers"), table));
    return figure;
  }

  function plots() {
    const r = release();
    const rows = new Map(r.rows.map((row) => [row.identity, row]));
    const measures = r.columns.filter((c) => c.headline && r.rows.filter((row) => c.id in row.cells).length >= 2);
    if (!measures.some((c) => c.id === state.measure)) {
      const counts = (c) => r.rows.filter((row) => c.id in row.cells).length;
      state.measure = measures.length ? [...measures].sort((a, b) => counts(b) - counts(a))[0].id : "";
    }
    fillSelect($("measure"), measures.map((c) => [c.id, `${columnLabel(c)} (${columnDetail(c)})`]), state.measure);
    if (state.sweep >= r.sweeps.length) state.sweep = 0;
    fillSelect($("sweep"), r.sweeps.map((s, i) => [String(i),
      `${s.base_model}: ${s.wrapper} ${s.parameter}${s.fixed.length ? " at " + s.fixed.map(([k, v]) => `${k}=${v}`).join(", ") : ""}`]), String(state.sweep));
    fillSelect($("cost"), Object.entries(COSTS).map(([key, [label]]) => [key, label]), state.cost);
    const column = r.columns.find((c) => c.id === state.measure);
    const yLabel = column ? `${columnLabel(column)}${direction(column) === false ? " (lower is better)" : ""}` : "";
    const sweepBox = $("sweep-plot"), frontBox = $("front-plots");
    sweepBox.replaceChildren();
    frontBox.replaceChildren();
    if (!column) return;
    const sweep = r.sweeps[state.sweep];
    if (sweep) {
      const numeric = sweep.points.every((p) => p.x !== null);
      const points = sweep.points.map((p, i) => ({ p, i, cell: rows.has(p.variant) ? rows.get(p.variant).cells[column.id] : undefined }))
        .filter(({ cell }) => cell && cell.value !== null)
        .map(({ p, i, cell }) => ({ x: numeric ? p.x : i, y: cell.value, err: cell.stderr, label: rows.get(p.variant).model,
          identity: p.variant, category: numeric ? null : p.value }));
      const base = rows.get(sweep.base);
      const baseline = base && base.cells[column.id] ? base.cells[column.id].value : null;
      sweepBox.appendChild(points.length >= 2
        ? chart(`Sweep of ${sweep.wrapper} ${sweep.parameter} on ${sweep.base_model}: ${yLabel} (± stderr; dashed: the base)`,
          `${sweep.wrapper} ${sweep.parameter}`, yLabel, points, { line: true, baseline, categories: !numeric })
        : el("p", { class: "note" }, "This sweep has no values of this measure."));
    }
    const [costLabel, costOf] = COSTS[state.cost];
    let drawn = 0;
    for (const group of groups()) {
      const members = (group.base ? [group.base] : []).concat(group.variants)
        .filter((row) => row.cost && row.cells[column.id] && row.cells[column.id].value !== null);
      if (members.length < 2) continue;
      const better = direction(column) !== false;
      const points = members.map((row) => ({ x: costOf(row.cost), y: row.cells[column.id].value, label: row.model, identity: row.identity }));
      // on the front: no other point costs no more and scores no worse, and is strictly better in one
      for (const p of points) {
        p.front = !points.some((q) => q !== p && q.x <= p.x && (better ? q.y >= p.y : q.y <= p.y)
          && (q.x < p.x || q.y !== p.y));
      }
      const baseModel = group.base ? group.base.model : group.variants[0].base_model;
      frontBox.appendChild(chart(`Pareto front of ${baseModel}: ${yLabel} against ${costLabel} (filled: on the front)`,
        costLabel, yLabel, points, { frontLine: true }));
      drawn += 1;
    }
    if (!drawn) frontBox.appendChild(el("p", { class: "note" }, "No base has two variants with a cost and this measure."));
  }

  function fromHash() {
    const match = /release=v([0-9.]+)/.exec(location.hash);
    const index = match ? RELEASES.findIndex((r) => r.version === match[1]) : -1;
    state.release = index >= 0 ? index : 0;
  }

  $("release").addEventListener("change", (e) => { state.release = Number(e.target.value); render(); });
  $("wrapper-family").addEventListener("change", (e) => { state.wrapper = e.target.value; render(); });
  $("task-family").addEventListener("change", (e) => { state.family = e.target.value; render(); });
  $("subtasks").addEventListener("change", (e) => { state.subtasks = e.target.checked; render(); });
  $("normalised").addEventListener("change", (e) => { state.normalised = e.target.checked; render(); });
  for (const radio of document.querySelectorAll("input[name=view]")) {
    radio.addEventListener("change", (e) => { if (e.target.checked) { state.view = e.target.value; render(); } });
  }
  $("board").addEventListener("click", (e) => {
    const button = e.target.closest("button.sort");
    if (!button) return;
    const key = button.dataset.sort;
    const column = release().columns.find((c) => c.id === key);
    const first = key === "name" || (column && direction(column) === false) ? "ascending" : "descending";
    const flip = { ascending: "descending", descending: "ascending" };
    state.sort = state.sort && state.sort.key === key ? { key, direction: flip[state.sort.direction] } : { key, direction: first };
    render();
  });
  $("measure").addEventListener("change", (e) => { state.measure = e.target.value; plots(); });
  $("sweep").addEventListener("change", (e) => { state.sweep = Number(e.target.value); plots(); });
  $("cost").addEventListener("change", (e) => { state.cost = e.target.value; plots(); });
  window.addEventListener("hashchange", () => { fromHash(); render(); });
  fromHash();
  render();
})();
