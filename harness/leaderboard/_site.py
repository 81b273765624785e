"""The static site: every release under a leaderboard folder, as HTML, CSS and JavaScript.

No server: index.html carries the releases' JSON in a `<script type="application/json">` block
(browsers refuse fetch() of file:// URLs, so the data travels inside the page), and
assets/leaderboard.js draws the table from it with DOM text nodes only, never HTML strings. The
per-variant pages are rendered here by jinja2 with autoescaping on. So everything that comes from a
record shows as text: a model named `<img src=x onerror=alert(1)>` is that string on the page.
The site is built in a staging folder and moved into place in one rename; the same releases give
the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from harness._util.files import build_dir
from harness._util.paths import DEFAULT_LEADERBOARD_DIR, check_output_folder, inside
from harness.analysis import _curves
from harness.analysis._compare import number, short_name, signed
from harness.errors import HarnessError
from harness.leaderboard._release import read_release, release_paths
from harness.leaderboard._schema import Release, Row

if TYPE_CHECKING:
    import jinja2

PACKAGE = Path(__file__).parent
MARKER = ".harness-leaderboard-site"
"""Present in every generated site: only a folder holding it is ever replaced."""


def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(PACKAGE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(number=number, signed=signed, short_name=short_name)
    return env


def script_json(value: Any) -> str:
    """JSON that cannot end its <script> block: `<`, `>` and `&` become \\u escapes, which
    JSON.parse reads back as the same characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def href(target: Path, start: Path) -> str:
    """A relative, percent-encoded link that always starts with `./` or `../` (so no path from a
    record can read as a `javascript:` or other scheme)."""
    relative = Path(os.path.relpath(target, start)).as_posix()
    encoded = quote(relative)
    return encoded if encoded.startswith("../") else f"./{encoded}"


def variant_page(version: str, identity: str) -> str:
    return f"variants/v{version}/{identity}.html"


def _report_links(release: Release, root: Path, start: Path) -> dict[str, str]:
    """Links to the runs' reports that exist when the site is built (a release names where each
    run's report goes, present or not)."""
    reports = {r.run_id: root.resolve() / r.report for r in release.runs if r.report}
    return {run: href(path, start) for run, path in reports.items() if path.is_file()}


def _costs(row: Row) -> list[tuple[str, str]]:
    return [(label, number(value)) for label, value in _curves.cost_facts(row.cost, row.applied) if value is not None]


class _ReleasePages:
    """What every variant page of one release shares (they all live in one folder)."""

    def __init__(self, release: Release, root: Path, site: Path) -> None:
        self.release = release
        self.folder = site / Path(variant_page(release.version, "x")).parent
        self.rows = {r.identity: r for r in release.rows}
        self.columns = {c.id: c for c in release.columns}
        self.variants: dict[str, list[Row]] = {}
        for r in release.rows:
            if r.identity != r.base:
                self.variants.setdefault(r.base, []).append(r)
        self.shared = {
            "release": release,
            "reports": _report_links(release, root, self.folder),
            "dirty": {r.run_id for r in release.runs if r.git_dirty},
            "dirty_title": "made from a checkout with uncommitted changes (git_dirty); published with --allow-dirty",
            "confidence": f"{release.comparison.confidence:.0%}",
            "home": href(site / "index.html", self.folder),
            "assets": href(site / "assets", self.folder),
        }

    def context(self, row: Row) -> dict[str, Any]:
        cells = [(self.columns[c], cell) for c, cell in row.cells.items()]
        cells.sort(key=lambda pair: (not pair[0].headline, pair[0].family, pair[0].task, pair[0].metric))
        return {
            **self.shared,
            "row": row,
            "base_row": self.rows.get(row.base) if row.base != row.identity else None,
            "parent_row": self.rows.get(row.parent) if row.parent else None,
            "variants": self.variants.get(row.identity, []) if row.base == row.identity else [],
            "intervention": json.dumps(row.intervention.model_dump(mode="json"), indent=2),
            "applied": [(a.name, json.dumps(a.info, indent=1, sort_keys=True)) for a in row.applied],
            "costs": _costs(row),
            "cells": cells,
        }


def render_site(root: Path, site: Path) -> dict[str, str]:
    """Every file of the site (path relative to the site -> text), from the releases under `root`."""
    paths = release_paths(root)
    if not paths:
        raise HarnessError(f"{root} holds no releases (releases/vX.Y.Z/release.json): run `harness leaderboard build` first")
    releases = [read_release(p) for p in reversed(paths.values())]  # newest first
    env = _environment()
    data = {"releases": [{**r.model_dump(mode="json"), "links": {"reports": _report_links(r, root, site)}} for r in releases]}
    files = {
        MARKER: "A site generated by `harness leaderboard site`; generating it again replaces this folder.\n",
        "index.html": env.get_template("index.html.j2").render(
            data=script_json(data),
            latest=releases[0],
            page=variant_page,
        ),
    }
    for asset in sorted((PACKAGE / "assets").iterdir()):
        files[f"assets/{asset.name}"] = asset.read_text(encoding="utf-8")
    page = env.get_template("variant.html.j2")
    for release in releases:
        pages = _ReleasePages(release, root, site)
        for row in release.rows:
            files[variant_page(release.version, row.identity)] = page.render(pages.context(row))
    return files


def build_site(root: str | Path = DEFAULT_LEADERBOARD_DIR, out: str | Path | None = None) -> Path:
    """Write the site of the releases under `root` into `out` (default root/site); return index.html."""
    root = Path(root)
    site = check_output_folder(out, "--out") if out else root / "site"
    if site.exists() and not (site / MARKER).is_file():
        raise HarnessError(f"{site} exists and is not a generated leaderboard site: give an empty or new --out")
    files = render_site(root, site.resolve())

    def write(staging: Path) -> None:
        for name, text in files.items():
            path = inside(staging, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.chmod(staging, 0o755)

    build_dir(site, write)
    return site / "index.html"
