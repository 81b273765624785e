"""The static leaderboard site in headless Chromium (Debian's `chromium`, driven by Playwright's
Python API through `executable_path`; no browser download), against the site built from the
committed releases: every row renders, sorting (by keyboard) and filtering work, the release
selector switches releases, the difference view shows the paired numbers, it fits a narrow screen,
and text from a record never runs as HTML or script. Without Chromium or Playwright these tests
fail (they are not skipped): see the README's Leaderboard section for the two install commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.leaderboard import build_release, build_site, read_release, release_paths
from harness.leaderboard._site import MARKER, href, render_site, script_json
from tests.helpers import REPO

BOARD = REPO / "leaderboard"
RELEASES = {r.version: r for r in (read_release(p) for p in release_paths(BOARD).values())}
LATEST = RELEASES[max(RELEASES, key=lambda v: tuple(map(int, v.split("."))))]
PAYLOAD = "<img src=x onerror=alert(1)>"
CLOSER = "</script><script>alert(2)</script>"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return build_site(BOARD, tmp_path_factory.mktemp("site") / "site").parent


@pytest.fixture
def page(browser, site):
    """index.html of the committed releases; fails the test on any script error or dialog."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    opened.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    opened.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    opened.goto((site / "index.html").as_uri())
    yield opened
    context.close()
    assert problems == []


def _rows(page) -> list[str]:
    return page.eval_on_selector_all("#board tbody tr", "rows => rows.map(r => r.dataset.identity)")


def _headline(release, family=None):
    return [
        c for c in release.columns if c.headline and (family is None or c.family == family) and any(c.id in r.cells for r in release.rows)
    ]


@pytest.mark.slow
def test_every_row_of_every_release_renders_grouped_by_base(page):
    for version, release in RELEASES.items():
        page.select_option("#release", label=page.locator("#release option", has_text=f"v{version}").inner_text())
        assert _rows(page) == [r.identity for r in release.rows]
        for row in release.rows:
            shown = page.locator(f'#board tr[data-identity="{row.identity}"]')
            name = shown.locator("th a")
            expected = row.model if row.identity == row.base else row.model[row.model.index("+") :]
            assert name.inner_text().replace("\n", "") == expected
            assert name.get_attribute("href") == f"variants/v{version}/{row.identity}.html"
            assert shown.get_attribute("class") == ("base" if row.identity == row.base else "variant")
        headers = page.eval_on_selector_all("#board thead th[data-column]", "ths => ths.map(t => t.dataset.column)")
        assert headers == [c.id for c in _headline(release)]
        assert page.locator("#board-caption").inner_text().startswith(f"Release v{version}")


@pytest.mark.slow
def test_every_variant_page_exists_and_links_back(site, browser):
    for version, release in RELEASES.items():
        for row in release.rows:
            assert (site / "variants" / f"v{version}" / f"{row.identity}.html").is_file()
    row = next(r for r in LATEST.rows if r.cost is not None and r.identity != r.base)
    opened = browser.new_page()
    opened.goto((site / "variants" / f"v{LATEST.version}" / f"{row.identity}.html").as_uri())
    assert opened.locator("h1").inner_text() == row.model
    assert opened.locator("table.results tbody tr").count() == len(row.cells)
    assert "weight (MB)" in opened.locator("table.facts").nth(1).inner_text()
    opened.locator("nav a").click()
    assert opened.url.endswith(f"index.html#release=v{LATEST.version}")
    opened.close()


def _column_with_most_cells(release):
    return max(_headline(release), key=lambda c: sum(c.id in r.cells for r in release.rows))


@pytest.mark.slow
def test_sorting_by_a_column_with_the_keyboard(page):
    column = _column_with_most_cells(LATEST)
    button = page.locator(f'button.sort[data-sort="{column.id}"]')
    button.focus()
    page.keyboard.press("Enter")
    header = page.locator(f'#board thead th[data-column="{column.id}"]')
    first = "descending" if column.higher_is_better is not False else "ascending"
    assert header.get_attribute("aria-sort") == first
    for direction in (first, {"ascending": "descending", "descending": "ascending"}[first]):
        assert header.get_attribute("aria-sort") == direction
        for base in {r.base for r in LATEST.rows}:
            variants = [r for r in LATEST.rows if r.base == base and r.identity != base]
            present = [r for r in variants if column.id in r.cells and r.cells[column.id].value is not None]
            missing = [r for r in variants if r not in present]
            ordered = sorted(present, key=lambda r: r.cells[column.id].value, reverse=direction == "descending")
            shown = page.eval_on_selector_all(f'#board tbody tr.variant[data-base="{base}"]', "rows => rows.map(r => r.dataset.identity)")
            assert shown == [r.identity for r in ordered + missing]
        assert page.evaluate("document.activeElement.dataset.sort") == column.id  # focus stays on the header
        page.keyboard.press("Enter")


@pytest.mark.slow
def test_filtering_by_wrapper_family_and_task_family(page):
    page.select_option("#wrapper-family", "depth")
    shown = _rows(page)
    rows = {r.identity: r for r in LATEST.rows}
    depth = [r for r in LATEST.rows if "depth" in [s.family for s in r.lineage[1:]]]
    assert depth and [i for i in shown if rows[i].identity != rows[i].base] == [r.identity for r in depth]
    assert {rows[i].base for i in shown if rows[i].identity == rows[i].base} == {r.base for r in depth}
    page.select_option("#wrapper-family", "")
    assert len(_rows(page)) == len(LATEST.rows)

    page.select_option("#task-family", "vqa")
    headers = page.eval_on_selector_all("#board thead th[data-column]", "ths => ths.map(t => t.dataset.column)")
    assert headers == [c.id for c in _headline(LATEST, "vqa")] and headers
    page.check("#subtasks")
    headers = page.eval_on_selector_all("#board thead th[data-column]", "ths => ths.map(t => t.dataset.column)")
    assert len(headers) > len(_headline(LATEST, "vqa"))
    assert {c.family for c in LATEST.columns if c.id in headers} == {"vqa"}


@pytest.mark.slow
def test_the_release_selector_switches_releases_and_shows_the_changelog(page, site, browser):
    older, newer = sorted(RELEASES, key=lambda v: tuple(map(int, v.split("."))))[-2:]
    assert page.locator("#release option:checked").inner_text().startswith(f"v{newer}")
    assert len(_rows(page)) == len(RELEASES[newer].rows)
    log = RELEASES[newer].changelog
    assert f"({log.level} change from v{older})" in page.locator("#changelog").inner_text()
    assert f"New variants: {len(log.new_rows)}" in page.locator("#changelog").inner_text()

    page.select_option("#release", label=page.locator("#release option", has_text=f"v{older}").inner_text())
    assert _rows(page) == [r.identity for r in RELEASES[older].rows]
    assert page.url.endswith(f"#release=v{older}")
    assert page.locator("#runs li").count() == len(RELEASES[older].runs)

    direct = browser.new_page()
    direct.goto((site / "index.html").as_uri() + f"#release=v{older}")
    assert direct.locator("#release option:checked").inner_text().startswith(f"v{older}")
    direct.close()


def _shows(text: str, value: float) -> bool:
    """`text` is `value` to the precision it is shown with (4 decimals, 2 from 100, or 3 significant digits)."""
    text = text.replace("▲", "").replace("▼", "").strip()
    if "e" in text or (len(text.replace("-", "").replace("+", "").lstrip("0.")) == 3 and "." in text and abs(value) < 1e-4):
        return abs(float(text) - value) <= 0.01 * abs(value)
    decimals = len(text.partition(".")[2])
    return abs(float(text) - value) <= 0.51 * 10**-decimals


@pytest.mark.slow
def test_the_difference_view_shows_the_paired_numbers(page):
    page.check("input[name=view][value=difference]")
    shown = 0
    for row in LATEST.rows:
        for column in _headline(LATEST):
            cell = row.cells.get(column.id)
            td = page.locator(f'#board tr[data-identity="{row.identity}"] td[data-column="{column.id}"]')
            if row.identity == row.base:
                if cell and cell.value is not None:
                    assert _shows(td.locator(".value.reference").inner_text(), cell.value)
                continue
            if cell is None or cell.difference is None or cell.difference.difference is None:
                assert td.inner_text() == "–"
                continue
            d = cell.difference
            assert _shows(td.locator(".difference").inner_text(), d.difference)
            low, high = td.locator(".ci").inner_text().strip("[]").split(", ")
            assert _shows(low, d.ci_low) and _shows(high, d.ci_high)
            # a spread (`*_std`) is neither better nor worse when it moves: never coloured
            excludes = (d.ci_low > 0 or d.ci_high < 0) and not column.metric.endswith("_std")
            better = (d.difference > 0) == column.higher_is_better
            verdict = td.locator(".difference").get_attribute("class")
            assert verdict == "difference " + (("better" if better else "worse") if excludes else "")
            shown += 1
    assert shown > 20


@pytest.mark.slow
def test_normalised_scores_are_labelled(page):
    assert LATEST.normalisation is not None
    page.check("#normalised")
    assert page.locator("#normalisation-note").inner_text() == f"Normalised scores: {LATEST.normalisation.method}."
    headers = page.eval_on_selector_all("#board thead th[data-column]", "ths => ths.map(t => t.dataset.column)")
    assert headers == [c.id for c in _headline(LATEST) if c.random_baseline is not None] and headers
    column = next(c for c in _headline(LATEST) if c.random_baseline is not None)
    row = next(r for r in LATEST.rows if column.id in r.cells)
    text = page.locator(f'#board tr[data-identity="{row.identity}"] td[data-column="{column.id}"]').inner_text()
    assert abs(float(text) - row.cells[column.id].normalised) < 0.05


@pytest.mark.slow
def test_a_narrow_screen_scrolls_the_table_not_the_page(browser, site):
    narrow = browser.new_page(viewport={"width": 390, "height": 844})
    narrow.goto((site / "index.html").as_uri())
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 390
    region = narrow.locator("#board-region")
    assert region.evaluate("r => r.scrollWidth > r.clientWidth") and region.get_attribute("tabindex") == "0"
    for control in ("#release", "#wrapper-family", "#task-family"):
        assert narrow.locator(control).bounding_box()["width"] <= 390
    narrow.close()


def _poisoned_run(folder: Path) -> Path:
    """A copy of a committed run whose model string, origin, command and applied facts carry
    markup (a task name with markup is refused on read: tests/test_hostile_records.py)."""
    source = REPO / "results" / "20261128T222306Z-f46efb77"
    run = folder / source.name
    shutil.copytree(source, run)
    record = json.loads((run / "record.json").read_text())
    variant = record["variants"][1]
    variant["model"] = f"llava-smollm2-easyvqa+{PAYLOAD}"
    record["variants"][0]["model"] = PAYLOAD + CLOSER
    variant["base_origin"] = CLOSER
    variant["applied"][0]["info"]["note"] = PAYLOAD
    record["command"] = ["harness", "eval", CLOSER]
    (run / "record.json").write_text(json.dumps(record))
    (run / "report.html").write_text("<p>report</p>")
    return run


@pytest.mark.slow
def test_markup_in_a_record_is_shown_as_text_and_never_runs(tmp_path, browser):
    build_release([_poisoned_run(tmp_path / "runs")], tmp_path / "board", allow_dirty=True)  # the VQA run is a dirty one
    index = build_site(tmp_path / "board")
    release = read_release(next(iter(release_paths(tmp_path / "board").values())))
    pages = [index] + [index.parent / "variants" / f"v{release.version}" / f"{r.identity}.html" for r in release.rows]
    for path in pages:
        opened = browser.new_page()
        ran: list[str] = []
        opened.on("dialog", lambda d, ran=ran: (ran.append(d.message), d.dismiss()))
        opened.on("pageerror", lambda e, ran=ran: ran.append(f"page error: {e}"))
        opened.goto(path.as_uri())
        opened.wait_for_load_state("load")
        assert ran == []
        assert opened.locator("img").count() == 0
        assert opened.evaluate("document.scripts.length") == (2 if path == index else 0)
        text = opened.locator("body").inner_text()
        assert PAYLOAD in text.replace("\n", "") or PAYLOAD in opened.locator("title").inner_text()
        assert "dirty tree" in text  # every value of this release comes from a run made from a dirty tree
        opened.close()
    opened = browser.new_page()
    opened.goto(index.as_uri())
    assert opened.locator("#board tr.base th a").inner_text().replace("\n", "") == PAYLOAD + CLOSER
    assert CLOSER in opened.locator("#runs").inner_text()
    opened.close()


@pytest.mark.slow
def test_runs_from_a_dirty_tree_are_marked(page, site):
    dirty = {r.run_id for r in LATEST.runs if r.git_dirty}
    assert dirty and set(LATEST.changelog.dirty_runs) == dirty
    marked = 0
    for row in LATEST.rows:
        from_dirty = any(cell.run in dirty for cell in row.cells.values())
        mark = page.locator(f'#board tr[data-identity="{row.identity}"] th .dirty')
        assert mark.count() == from_dirty, row.model
        if from_dirty:
            assert mark.inner_text() == "dirty tree" and mark.is_visible()
            marked += 1
    assert 0 < marked < len(LATEST.rows)
    runs = page.locator("#runs li")
    assert [runs.nth(i).locator(".dirty").count() for i in range(runs.count())] == [r.git_dirty is True for r in LATEST.runs]
    assert "published with --allow-dirty" in page.locator("#changelog").inner_text()
    row = next(r for r in LATEST.rows if any(cell.run in dirty for cell in r.cells.values()))
    variant = (site / f"variants/v{LATEST.version}/{row.identity}.html").read_text()
    assert '<span class="dirty" title="made from a checkout with uncommitted changes' in variant


def test_script_json_cannot_close_its_block_and_reads_back():
    value = {"model": PAYLOAD + CLOSER + "<!-- & -->"}
    text = script_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == value


def test_links_from_records_stay_relative(tmp_path):
    assert href(tmp_path / "javascript:alert(1)" / "report.html", tmp_path) == "./javascript%3Aalert%281%29/report.html"
    assert href(tmp_path / "a b" / "r.html", tmp_path / "site") == "../a%20b/r.html"


def test_the_committed_site_is_the_one_the_committed_releases_give():
    committed = {
        p.relative_to(BOARD / "site").as_posix(): p.read_text(encoding="utf-8") for p in (BOARD / "site").rglob("*") if p.is_file()
    }
    assert committed == render_site(BOARD, (BOARD / "site").resolve())
    assert MARKER in committed


def test_the_site_refuses_to_replace_a_folder_it_did_not_make(tmp_path, capsys):
    from harness.cli._main import main

    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "mine.txt").write_text("mine")
    assert main(["leaderboard", "site", "--leaderboard", str(BOARD), "--out", str(tmp_path / "keep")]) == 2
    assert (
        capsys.readouterr().err
        == f"harness: {tmp_path / 'keep'} exists and is not a generated leaderboard site: give an empty or new --out\n"
    )
    assert (tmp_path / "keep" / "mine.txt").read_text() == "mine"
    assert main(["leaderboard", "site", "--leaderboard", str(tmp_path / "none"), "--out", str(tmp_path / "s")]) == 2
    assert "holds no releases" in capsys.readouterr().err


@pytest.mark.slow
def test_sweep_and_pareto_plots_draw_the_release_numbers(page):
    from harness.analysis._curves import COSTS, pareto_front

    column = _column_with_most_cells(LATEST)
    assert page.locator("#measure").input_value() == column.id
    rows = {r.identity: r for r in LATEST.rows}
    index, sweep = next((i, s) for i, s in enumerate(LATEST.sweeps) if s.wrapper == "exit")
    page.select_option("#sweep", str(index))
    with_values = [p for p in sweep.points if column.id in rows[p.variant].cells]
    drawn = page.eval_on_selector_all("#sweep-plot circle", "cs => cs.map(c => c.dataset.identity)")
    assert drawn == [p.variant for p in with_values] and len(drawn) >= 2

    page.select_option("#cost", "gflops_per_token")
    base = rows[sweep.base]
    members = [r for r in LATEST.rows if r.base == base.identity and r.cost and column.id in r.cells]
    flags = pareto_front(
        [(COSTS["gflops_per_token"][1](r.cost), r.cells[column.id].value) for r in members], False, column.higher_is_better is not False
    )
    figure = page.locator("#front-plots figure", has_text=f"Pareto front of {base.model}:")
    front = figure.locator("circle.front").evaluate_all("cs => cs.map(c => c.dataset.identity)")
    assert sorted(front) == sorted(r.identity for r, on in zip(members, flags, strict=True) if on) and front
    assert figure.locator("circle").count() == len(members)
    assert figure.locator("svg").get_attribute("role") == "img"


def _luminance(rgb: str) -> float:
    channels = [int(x) / 255 for x in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.slow
def test_text_contrast_meets_wcag_aa(page):
    """Every kind of text on the page against its background, 4.5:1 or more (WCAG AA)."""
    page.check("input[name=view][value=difference]")
    page.check("#subtasks")
    # the reference runs may hold no significant gain: style a sample of each verdict in a table cell
    page.evaluate("""() => { const td = document.querySelector('#board tr.variant td');
        for (const v of ['better', 'worse']) { const s = document.createElement('span');
            s.className = 'difference ' + v; s.textContent = v; td.appendChild(s); } }""")
    selectors = [
        "h1",
        "p.note",
        "#summary",
        "#board th[scope=row] a",
        "button.sort",
        "button.sort .detail",
        ".tag",
        ".difference.better",
        ".difference.worse",
        ".ci",
        ".value.reference",
        ".missing",
        "#board tr.base td",
        "#changelog summary",
        "#runs a",
        "label",
    ]
    for selector in selectors:
        found = page.locator(selector).first
        assert found.count() == 1, selector
        colour, background = found.evaluate("""e => {
            let b = e; let bg = getComputedStyle(b).backgroundColor;
            while (bg === 'rgba(0, 0, 0, 0)' && b.parentElement) { b = b.parentElement; bg = getComputedStyle(b).backgroundColor; }
            return [getComputedStyle(e).color, bg === 'rgba(0, 0, 0, 0)' ? 'rgb(255, 255, 255)' : bg];
        }""")
        light, dark = sorted((_luminance(colour), _luminance(background)), reverse=True)
        assert (light + 0.05) / (dark + 0.05) >= 4.5, (selector, colour, background)


@pytest.mark.slow
def test_report_links_reach_the_committed_reports(page, site):
    from urllib.parse import unquote

    with_report = [r for r in LATEST.runs if r.report]
    assert with_report
    links = page.eval_on_selector_all("#runs a", "as => as.map(a => a.getAttribute('href'))")
    assert len(links) == len(with_report)
    for link in links:
        assert (site / unquote(link)).resolve().is_file()
    row = next(r for r in LATEST.rows if any(run in {x.run_id for x in with_report} for run in r.runs))
    variant = site / "variants" / f"v{LATEST.version}" / f"{row.identity}.html"
    page.goto(variant.as_uri())
    for link in page.eval_on_selector_all("a", "as => as.filter(a => a.textContent === 'report').map(a => a.getAttribute('href'))"):
        assert (variant.parent / unquote(link)).resolve().is_file()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
