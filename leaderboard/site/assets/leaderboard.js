// harness leaderboard: draws the table from the releases' JSON embedded in index.html.
// Everything from a record goes into the page as a text node or an attribute value, never as HTML.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("releases").textContent);
  const RELEASES = DATA.releases; // newest first
  const HEX = /^[0-9a-f]{64}$/;
  const state = { release: 0, view: "value", wrapper: "", family: "", subtasks: false, normalised: false, sort: null };
  const $ = (id) => document.getElementById(id);

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
    if (column.higher_is_better === false) parts.push("lower is better");
    return parts.join(" · ");
  }

  function visibleColumns() {
    const rows = release().rows;
    return release().columns.filter((c) =>
      (state.subtasks || c.headline) && (!state.family || c.family === state.family) && rows.some((r) => c.id in r.cells));
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

  function nameCell(row) {
    const href = variantHref(release().version, row.identity);
    const name = isBase(row) ? row.model : shortName(row.model);
    // a line may break after + : , = (model strings have no spaces)
    const pieces = name.split(/(?<=[+:,=])/).flatMap((piece, i) => (i ? [el("wbr"), piece] : [piece]));
    const link = href ? el("a", { href, title: row.model }, pieces) : el("span", { title: row.model }, pieces);
    const tags = [...new Set(families(row))].map((f) => el("span", { class: "tag" }, f));
    return el("th", { scope: "row" }, link, tags);
  }

  function valueCell(row, column) {
    const cell = row.cells[column.id];
    const attrs = { class: "num", "data-column": column.id };
    if (!cell) return el("td", attrs, el("span", { class: "missing", title: "not evaluated" }, "–"));
    attrs.title = `from run ${cell.run}`;
    if (state.view === "difference" && !isBase(row)) {
      const d = cell.difference;
      if (!d || d.difference === null) {
        return el("td", attrs, el("span", { class: "missing", title: "its base was not evaluated on this column" }, "–"));
      }
      const excludesZero = d.ci_low !== null && d.ci_high !== null && (d.ci_low > 0 || d.ci_high < 0);
      let verdict = "", mark = "";
      if (excludesZero && column.higher_is_better !== null) {
        const good = (d.difference > 0) === column.higher_is_better;
        verdict = good ? "better" : "worse";
        mark = good ? "▲ " : "▼ ";
      }
      attrs.title = `from run ${cell.run}, base from run ${d.base_run}; ${d.n} paired documents; base ${fmt(d.base_value)}`
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
    ].filter((node) => node !== null));
    $("runs").replaceChildren(...r.runs.map((run) => {
      const report = r.links.reports[run.run_id];
      return el("li", {}, el("code", {}, run.run_id), ` (${run.created_at}, harness ${run.harness_version})`,
        report ? [" ", el("a", { href: report }, "report")] : null,
        el("br"), el("code", { class: "command" }, run.command.join(" ")));
    }));
  }

  function render() {
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.sort : undefined;
    controls();
    const r = release();
    const columns = visibleColumns();
    const list = sorted(groups());
    const table = $("board");
    table.tHead.replaceChildren(header(columns));
    for (const old of [...table.tBodies]) old.remove();
    for (const group of list) table.appendChild(body(group, columns));
    const variants = list.reduce((n, g) => n + g.variants.length, 0);
    $("board-caption").textContent = `Release v${r.version}: ${state.view === "difference" ? "difference of each variant from its base" : state.normalised ? "normalised scores" : "values"}`;
    $("summary").textContent = `${list.length} bases with ${variants} variants; ${columns.length} of ${r.columns.length} columns shown.`;
    const note = $("normalisation-note");
    note.hidden = !state.normalised;
    note.textContent = state.normalised && r.normalisation ? `Normalised scores: ${r.normalisation.method}.` : "";
    $("legend").textContent = state.view === "difference"
      ? `Variant − base on the same documents, with the ${Math.round(r.comparison.confidence * 100)}% paired bootstrap interval (${r.comparison.resamples} resamples). ▲ better, ▼ worse than the base when the interval excludes 0; base rows show the base's value.`
      : "Value and its standard error (lm-eval's). Hover a cell for the run it comes from.";
    changelog();
    if (focused) {
      const again = document.querySelector(`button.sort[data-sort="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
    history.replaceState(null, "", `#release=v${r.version}`);
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
    const first = key === "name" || (column && column.higher_is_better === false) ? "ascending" : "descending";
    const flip = { ascending: "descending", descending: "ascending" };
    state.sort = state.sort && state.sort.key === key ? { key, direction: flip[state.sort.direction] } : { key, direction: first };
    render();
  });
  window.addEventListener("hashchange", () => { fromHash(); render(); });
  fromHash();
  render();
})();
