"""Run records and releases are untrusted input: the three attacks of issue 21 are inert.

1. A result's task `../../x` made `harness export` write outside `--out`; a variant identity
   `../../x` made `harness leaderboard site` write outside the site.
2. A record's `samples_file` could make the readers open any file on the machine.
3. An identity `javascript:...` became a working link on a variant page.
Each is refused in one line, exit status 2, nothing written; and a release that bypasses
validation still renders only relative links (checked in Chromium).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.cli._main import main
from harness.errors import HarnessError
from harness.leaderboard import build_release, build_site, read_release, release_paths
from harness.leaderboard._site import render_site
from harness.records import load_run, read_rows
from tests.helpers import REPO

SOURCE = REPO / "results" / "20261129T020008Z-bd4ab848"  # the smallest committed run
SCRIPT = "javascript:void(document.title='ran')//"


def _run(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    run = tmp_path / "runs" / SOURCE.name
    shutil.copytree(SOURCE, run)
    record = json.loads((run / "record.json").read_text())
    change(record)
    (run / "record.json").write_text(json.dumps(record))
    return run


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], tmp_path: Path, keep: set[Path]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: ") and err.count("\n") == 1 and "Traceback" not in err
    assert _files(tmp_path) == keep, "nothing is written"
    return err


def _climbing_task(record: dict[str, Any]) -> None:
    record["results"][0]["task"] = "../../escaped"


def test_export_refuses_a_task_name_that_climbs_out_of_its_folder(tmp_path, capsys):
    run = _run(tmp_path, _climbing_task)
    out = tmp_path / "out" / "a" / "b"
    err = _refused(capsys, ["export", str(run), "--out", str(out)], tmp_path, _files(tmp_path))
    assert "not a valid run record" in err and "task" in err
    assert not list(tmp_path.rglob("escaped*"))


@pytest.mark.parametrize("identity", ["../../../escaped", SCRIPT, "A" * 64])
def test_a_variant_identity_that_is_not_64_hex_characters_is_refused(tmp_path, capsys, identity):
    def change(record: dict[str, Any]) -> None:
        old = record["variants"][0]["identity"]
        record["variants"][0]["identity"] = identity
        for result in record["results"]:
            if result["variant"] == old:
                result["variant"] = identity

    run = _run(tmp_path, change)
    keep = _files(tmp_path)
    _refused(capsys, ["leaderboard", "build", str(run), "--out", str(tmp_path / "board")], tmp_path, keep)
    _refused(capsys, ["report", str(run), "--out", str(tmp_path / "report")], tmp_path, keep)


def test_an_identity_must_be_the_hash_of_its_intervention(tmp_path, capsys):
    def change(record: dict[str, Any]) -> None:
        record["variants"][0]["intervention"]["base"]["dtype"] = "float16"  # the identity no longer says what ran

    run = _run(tmp_path, change)
    err = _refused(capsys, ["compare", str(run)], tmp_path, _files(tmp_path))
    assert "identity is not the sha256 of its intervention record" in err


@pytest.mark.parametrize("where", ["relative", "absolute", "dotted"])
def test_a_samples_file_outside_its_run_folder_is_refused(tmp_path, capsys, where):
    """A well-formed sample log outside the run folder: the old readers read it and compared."""
    outside = tmp_path / "elsewhere.jsonl"
    shutil.copy(next((SOURCE / "samples").rglob("*.jsonl")), outside)
    short = next((SOURCE / "samples").iterdir()).name  # an existing folder, so the OS walks through it
    pointer = {"relative": "../../elsewhere.jsonl", "absolute": str(outside), "dotted": f"samples/{short}/../../../../elsewhere.jsonl"}

    def change(record: dict[str, Any]) -> None:
        for result in record["results"]:
            if result["samples_file"]:
                result["samples_file"] = pointer[where]

    run = _run(tmp_path, change)
    _refused(capsys, ["compare", str(run)], tmp_path, _files(tmp_path))


def test_a_sample_log_that_links_outside_its_run_folder_is_not_read(tmp_path):
    run = _run(tmp_path, lambda record: None)
    loaded = load_run(run)
    result = next(r for r in loaded.record.results if r.samples_file)
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"doc_id": 0, "metrics": []}\n')
    log = run / result.samples_file
    log.unlink()
    os.symlink(secret, log)
    with pytest.raises(HarnessError, match="outside"):
        read_rows(loaded, result)


@pytest.mark.parametrize(
    "text",
    ["[1, 2]", '"record"', "null", '{"schema_version": "1.3", "run_id"', '{"schema_version": "9.0"}', "\udcff"],
)
def test_records_that_are_not_records_get_one_line(tmp_path, capsys, text):
    run = tmp_path / "run"
    run.mkdir()
    (run / "record.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    _refused(capsys, ["compare", str(run)], tmp_path, _files(tmp_path))


def _board(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    board = tmp_path / "board"
    shutil.copytree(REPO / "leaderboard" / "releases", board / "releases")
    path = next(iter(release_paths(board).values()))
    release = json.loads(path.read_text())
    change(release)
    path.write_text(json.dumps(release))
    return board


@pytest.mark.parametrize("identity", ["../../../escaped", SCRIPT])
def test_the_site_refuses_a_release_whose_identity_is_a_path_or_a_scheme(tmp_path, capsys, identity):
    def change(release: dict[str, Any]) -> None:
        release["rows"][0]["identity"] = identity

    board = _board(tmp_path, change)
    err = _refused(capsys, ["leaderboard", "site", "--leaderboard", str(board)], tmp_path, _files(tmp_path))
    assert "is not a readable release" in err


@pytest.mark.slow  # starts Chromium
def test_a_release_that_bypasses_validation_still_links_only_inside_the_site(tmp_path, browser):
    """Defence in depth: even a row that never met the schema (built with model_construct) gets
    relative links only, and clicking the base link on a variant page runs nothing."""
    board = tmp_path / "board"
    build_release([_run(tmp_path, lambda record: None)], board)
    release = read_release(next(iter(release_paths(board).values())))
    base, *variants = release.rows
    assert variants, "the run has a variant and its base"

    def bypassing(identity: str) -> Any:
        rows = (base.model_construct(**{**dict(base), "identity": identity}),)
        rows += tuple(r.model_construct(**{**dict(r), "base": identity}) for r in variants)
        return release.model_construct(**{**dict(release), "rows": rows})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("harness.leaderboard._site.read_release", lambda path: bypassing("../../../escaped"))
        with pytest.raises(HarnessError, match="outside"):
            build_site(board, tmp_path / "site")
        patch.setattr("harness.leaderboard._site.read_release", lambda path: bypassing(SCRIPT))
        files = render_site(board, (tmp_path / "site").resolve())
    assert not (tmp_path / "site").exists() and not list(tmp_path.rglob("escaped*"))
    page_name = next(n for n in files if n.endswith(f"{variants[0].identity}.html"))
    page = tmp_path / "page" / page_name
    page.parent.mkdir(parents=True)
    page.write_text(files[page_name])
    assert 'href="javascript:' not in files[page_name]
    opened = browser.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    opened.goto(page.as_uri())
    link = opened.locator("a", has_text=base.model).first
    assert link.get_attribute("href").startswith("./")
    assert opened.evaluate("(a) => new URL(a.href).protocol", link.element_handle()) == "file:"
    link.click()
    opened.wait_for_load_state("load")
    assert dialogs == [] and opened.title() != "ran"
    opened.close()
