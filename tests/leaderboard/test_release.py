"""Leaderboard releases from hand-made runs (tests/helpers.py's): rows, columns, cells and
their paired differences, byte-identical rebuilds, the proposed versions
(cases/leaderboard_versions.json), column splitting (cases/leaderboard_columns.json), refusals
(cases/leaderboard_refusals.json), normalised scores, and the committed reference release."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.analysis._compare import compare
from harness.cli._main import main
from harness.errors import HarnessError
from harness.leaderboard import build_release, read_release, release_paths
from harness.records._runs import load_run
from harness.records._schema import InterventionRecord
from tests.helpers import REPO, read_cases, write_synthetic_run

COLUMNS = read_cases("leaderboard_columns.json")["cases"]
VERSIONS = read_cases("leaderboard_versions.json")["cases"]
REFUSALS = read_cases("leaderboard_refusals.json")["cases"]
VARIANTS = ("base", "bits=4", "bits=8")


def make_run(folder: Path, name: str, variants=VARIANTS, field=None, value=None, drop=None) -> Path:
    """The hand-made run `20260101T00000NZ-<name>`, with one fact of quiz_a changed for every
    variant (`field` = `value`), or the results of task `drop` left out."""
    run = write_synthetic_run(folder / name, run_id=f"20260101T00000{ord(name[0]) - 96}Z-{name}", variants=tuple(variants))
    path = run / "record.json"
    record = json.loads(path.read_text())
    results = [r for r in record["results"] if r["task"] != drop]
    for result in results:
        if result["task"] != "quiz_a" or field is None:
            continue
        if field == "data_sha256":
            for f in result["data_files"]:
                f["sha256"] = value * 16
        elif field == "scorer":
            result["scorer"]["name"] = value
        elif field == "value":
            result["metrics"]["acc"]["value"] = value
        elif field == "n_samples":  # fewer documents: the sample log holds only those
            result[field] = value
            log = run / result["samples_file"]
            log.write_text("".join(log.read_text().splitlines(keepends=True)[:value]))
        else:
            result[field] = value
    record["results"] = results
    path.write_text(json.dumps(record))
    return run


def test_rows_columns_and_cells_come_from_the_records(tmp_path):
    run = make_run(tmp_path, "a")
    (run / "report.html").write_text("<p>report</p>")
    built = build_release([run], tmp_path / "board")
    assert (built.version, built.status, built.rows, built.columns) == ("v1.0.0", "written", 3, 6)
    release = read_release(built.path)
    assert built.path == tmp_path / "board" / "releases" / "v1.0.0" / "release.json"

    # grouped by base: the base first, then its variants
    assert [r.model for r in release.rows] == ["tiny", "tiny+quantize:bits=4", "tiny+quantize:bits=8"]
    base, four, _ = release.rows
    assert four.base == base.identity == base.base and four.base_model == "tiny" and four.parent == base.identity
    assert [(s.name, s.family) for s in four.lineage] == [("tiny", "base"), ("quantize", "quantize")]
    assert four.lineage[1].params == {"bits": "4", "group": "64"}
    assert four.intervention.identity() == four.identity and four.cost.weight_bytes == 30_000_000

    columns = {(c.task, c.metric): c for c in release.columns}
    assert set(columns) == {
        ("quiz_a", "acc"),
        ("quiz_b", "acc"),
        ("quizzes", "acc"),
        ("gen", "exact_match"),
        ("gen", "toxicity_probability"),
        ("ppl", "word_perplexity"),
    }
    quiz = columns[("quiz_a", "acc")]
    assert (quiz.version, quiz.num_fewshot, quiz.n_samples, quiz.kind, quiz.headline, quiz.higher_is_better) == (
        "1.0",
        0,
        8,
        "task",
        False,
        True,
    )
    assert columns[("quizzes", "acc")].headline and columns[("quizzes", "acc")].n_samples == 10
    assert columns[("gen", "toxicity_probability")].scorer.name == "jigsaw-bilstm"

    # every record value is in its cell, with the run it came from
    record = load_run(run).record
    for result in record.results:
        for metric, value in result.metrics.items():
            cell = next(r for r in release.rows if r.identity == result.variant).cells[
                next(c.id for c in release.columns if (c.task, c.metric) == (result.task, metric))
            ]
            assert (cell.value, cell.stderr, cell.run) == (value.value, value.stderr, record.run_id)

    # the difference from the base is harness compare's, number for number
    expected = {(t.variant, t.task, m.metric): (t, m) for t in compare([load_run(run)]).tasks for m in t.metrics}
    assert len(expected) == 12
    for row in release.rows[1:]:
        for column in release.columns:
            t, m = expected[(row.identity, column.task, column.metric)]
            d = row.cells[column.id].difference
            assert (d.base_value, d.difference, d.ci_low, d.ci_high, d.n, d.base_run) == (
                m.base,
                m.difference,
                m.interval[0],
                m.interval[1],
                t.n,
                record.run_id,
            )
    assert all(cell.difference is None for cell in base.cells.values())
    assert release.runs[0].report == f"../{run.name}/report.html" and release.runs[0].run_id == record.run_id
    assert release.changelog.level == "first" and release.normalisation is None
    assert all(c.random_baseline is None for c in release.columns)


def test_a_rebuild_is_byte_identical(tmp_path):
    runs = [make_run(tmp_path, "a"), make_run(tmp_path, "b", variants=("base", "bits=8"))]
    first = build_release(runs, tmp_path / "one")
    text = first.path.read_bytes()
    again = build_release(runs, tmp_path / "one", version="1.0.0")
    assert again.status == "unchanged" and again.path.read_bytes() == text
    assert build_release(list(reversed(runs)), tmp_path / "two").path.read_bytes() == text
    assert build_release(runs, tmp_path / "one").status == "up to date"


@pytest.mark.parametrize("case", COLUMNS, ids=[c["name"] for c in COLUMNS])
def test_incompatible_cells_never_share_a_column(tmp_path, case):
    runs = [make_run(tmp_path, "a"), make_run(tmp_path, "b", field=case["field"], value=case["value"])]
    release = read_release(build_release(runs, tmp_path / "board").path)
    quiz = [c for c in release.columns if (c.task, c.metric) == ("quiz_a", "acc")]
    assert len(quiz) == case["columns"]
    for row in release.rows:
        sources = sorted(row.cells[c.id].run[-1] for c in quiz)
        assert sources == (["b"] if case["columns"] == 1 else ["a", "b"])
    if case["columns"] == 2:
        old, new = sorted(quiz, key=lambda c: row.cells[c.id].run)
        field = {"data_sha256": "data_sha256", "scorer": "scorer"}.get(case["field"], case["field"])
        assert getattr(old, field) != getattr(new, field)


@pytest.mark.parametrize("case", VERSIONS, ids=[c["name"] for c in VERSIONS])
def test_proposed_version(tmp_path, case):
    def runs(specs, folder):
        return [make_run(folder, s["id"], s.get("variants", VARIANTS), s.get("field"), s.get("value"), s.get("drop")) for s in specs]

    board = tmp_path / "board"
    # One folder for both: a release names where each run's report goes, so runs moved elsewhere are a change.
    assert build_release(runs(case["first"], tmp_path / "runs"), board).version == "v1.0.0"
    built = build_release(runs(case["second"], tmp_path / "runs"), board)
    assert (built.version, built.changelog.level) == (case["version"], case["level"])
    assert built.status == ("up to date" if case["level"] == "none" else "written")
    assert sorted(release_paths(board)) == sorted({(1, 0, 0), tuple(int(x) for x in case["version"][1:].split("."))})
    if case["level"] != "none":
        log = read_release(built.path).changelog
        assert log.previous == "1.0.0" and log.level == case["level"]


def test_changelog_names_what_changed(tmp_path):
    board = tmp_path / "board"
    build_release([make_run(tmp_path / "1", "a", variants=("base", "bits=8"))], board)
    second = [make_run(tmp_path / "2", "a"), make_run(tmp_path / "2", "b", field="version", value="2.0")]
    log = read_release(build_release(second, board).path).changelog
    four = InterventionRecord.model_validate(load_run(second[0]).record.variants[1].intervention.model_dump()).identity()
    assert log.new_rows == (four,) and log.retired_rows == () and log.retired_columns == ()
    assert [(v.task, v.old, v.new) for v in log.version_changes] == [("quiz_a", "1.0", "2.0")]
    release = read_release(release_paths(board)[(2, 0, 0)])
    (new_column,) = log.new_columns
    assert next(c for c in release.columns if c.id == new_column).version == "2.0"


@pytest.mark.parametrize("case", REFUSALS, ids=[c["name"] for c in REFUSALS])
def test_refusals(tmp_path, case, capsys):
    made = {"a": make_run(tmp_path, "a"), "b": make_run(tmp_path, "b", field="num_fewshot", value=5)}
    (tmp_path / "empty").mkdir()
    board = tmp_path / "board"
    assert main(["leaderboard", "build", str(made["a"]), "--out", str(board)]) == 0
    before = {p: p.read_bytes() for p in board.rglob("*") if p.is_file()}
    capsys.readouterr()
    paths = [str(made.get(name, tmp_path / name)) for name in case["runs"]]
    assert main(["leaderboard", "build", *paths, "--out", str(board), *case["args"]]) == 2
    err = capsys.readouterr().err
    assert err == case["error"].replace("{tmp}", str(tmp_path)) + "\n"
    assert {p: p.read_bytes() for p in board.rglob("*") if p.is_file()} == before


def test_normalised_scores_are_rescaled_to_the_random_baseline_and_labelled(tmp_path):
    run = make_run(tmp_path, "a")
    release = read_release(build_release([run], tmp_path / "board", normalise=True).path)
    assert "random baseline" in release.normalisation.method
    columns = {(c.task, c.metric): c for c in release.columns}
    assert columns[("quiz_a", "acc")].random_baseline == pytest.approx(1 / 3)  # three choices per question
    assert columns[("quizzes", "acc")].random_baseline == pytest.approx(1 / 3)
    assert columns[("gen", "exact_match")].random_baseline is None
    for row in release.rows:
        cell = row.cells[columns[("quiz_a", "acc")].id]
        assert cell.normalised == pytest.approx(100 * max(0.0, (cell.value - 1 / 3) / (2 / 3)))
        assert row.cells[columns[("ppl", "word_perplexity")].id].normalised is None
    # a per-document score that is not 0 or 1 (truthfulqa_mc2's probability mass) has no random baseline
    for log in run.glob("samples/*/quiz_b.jsonl"):
        log.write_text("".join(json.dumps({**row, "acc": 0.5}) + "\n" for row in map(json.loads, log.read_text().splitlines())))
    graded = read_release(build_release([run], tmp_path / "graded", normalise=True).path)
    assert [c.random_baseline for c in graded.columns if c.task == "quiz_b"] == [None]
    plain = read_release(build_release([run], tmp_path / "plain").path)
    assert all(cell.normalised is None for row in plain.rows for cell in row.cells.values())


def test_the_command_line_builds_and_reports_the_changes(tmp_path, capsys):
    board = tmp_path / "board"
    assert main(["leaderboard", "build", str(make_run(tmp_path, "a")), "--out", str(board), "--resamples", "200"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"v1.0.0 written: {board}/releases/v1.0.0/release.json (3 rows, 6 columns)"
    assert out[1].startswith("changes since nothing (first): 3 new rows,")
    assert read_release(board / "releases" / "v1.0.0" / "release.json").comparison.resamples == 200


@pytest.mark.parametrize("version", ["1.0.0", "0.3.0", "v2.1.5"])
def test_a_new_leaderboard_takes_the_version_given(tmp_path, capsys, version):
    """The README's `leaderboard build --version X` on a new folder (it crashed: a first release has no changelog level)."""
    board = tmp_path / "board"
    assert main(["leaderboard", "build", str(make_run(tmp_path, "a")), "--out", str(board), "--version", version]) == 0
    shown = "v" + version.removeprefix("v")
    assert capsys.readouterr().out.startswith(f"{shown} written: {board}/releases/{shown}/release.json")


def test_unknown_wrappers_and_unpaired_variants_still_make_rows(tmp_path):
    run = make_run(tmp_path, "a", variants=("bits=4",))
    release = read_release(build_release([run], tmp_path / "board").path)
    (row,) = release.rows
    assert release.unpaired == ("tiny+quantize:bits=4",) and row.parent is None and row.base_model == "tiny"
    assert all(cell.difference is None for cell in row.cells.values())


def make_dirty(run: Path) -> Path:
    path = run / "record.json"
    record = json.loads(path.read_text())
    record["environment"]["git_dirty"] = True
    path.write_text(json.dumps(record))
    return run


def test_a_run_from_a_dirty_tree_is_refused_in_one_line_before_anything_is_written(tmp_path, capsys):
    clean, dirty = make_run(tmp_path, "a"), make_dirty(make_run(tmp_path, "b", variants=("base", "bits=8")))
    board = tmp_path / "board"
    assert main(["leaderboard", "build", str(clean), str(dirty), "--out", str(board)]) == 2
    assert capsys.readouterr().err == (
        "harness: 1 run(s) made from a dirty tree (uncommitted changes, environment.git_dirty): 20260101T000002Z-b;"
        " run them again from a clean checkout, or give --allow-dirty to publish them marked\n"
    )
    assert not board.exists()


def test_allow_dirty_publishes_them_marked_in_the_release_and_its_changelog(tmp_path, capsys):
    clean, dirty = make_run(tmp_path, "a"), make_dirty(make_run(tmp_path, "b", variants=("base", "bits=8")))
    board = tmp_path / "board"
    assert main(["leaderboard", "build", str(clean), "--out", str(board)]) == 0
    assert main(["leaderboard", "build", str(clean), str(dirty), "--out", str(board), "--allow-dirty"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "marked as made from a dirty tree (--allow-dirty): 20260101T000002Z-b"
    release = read_release(board / "releases" / "v1.0.1" / "release.json")
    assert [(r.run_id, r.git_dirty) for r in release.runs] == [("20260101T000001Z-a", False), ("20260101T000002Z-b", True)]
    log = release.changelog
    assert (log.new_runs, log.retired_runs, log.dirty_runs) == (("20260101T000002Z-b",), (), ("20260101T000002Z-b",))
    first = read_release(board / "releases" / "v1.0.0" / "release.json").changelog
    assert (first.new_runs, first.dirty_runs) == (("20260101T000001Z-a",), ())


def test_a_release_does_not_depend_on_which_reports_exist(tmp_path):
    """Writing a run's report after its release left the release unbuildable (its bytes changed)."""
    run = make_run(tmp_path, "a")
    board = tmp_path / "board"
    built = build_release([run], board)
    assert read_release(built.path).runs[0].report == f"../{run.name}/report.html"
    (run / "report.html").write_text("<p>report</p>")
    assert build_release([run], board, version="1.0.0").status == "unchanged"


COMMITTED = {read_release(p).version: read_release(p) for p in release_paths(REPO / "leaderboard").values()}
LATEST = COMMITTED[max(COMMITTED, key=lambda v: tuple(map(int, v.split("."))))]


def test_the_latest_committed_release_rebuilds_byte_identical_from_the_committed_runs():
    """Older releases are frozen as the code of their day built them (a later schema adds fields);
    the latest one is what today's code makes of the committed runs, with the settings it records."""
    built = build_release(
        [REPO / "results" / ref.run_id for ref in LATEST.runs],
        REPO / "leaderboard",
        version=LATEST.version,
        normalise=LATEST.normalisation is not None,
        seed=LATEST.comparison.seed,
        resamples=LATEST.comparison.resamples,
        confidence=LATEST.comparison.confidence,
        allow_dirty=bool(LATEST.changelog.dirty_runs),
    )
    assert built.status == "unchanged"


def test_every_committed_run_is_in_the_latest_release():
    committed = sorted(p.parent.name for p in (REPO / "results").glob("*/record.json"))
    assert sorted(r.run_id for r in LATEST.runs) == committed, "rebuild the release: make leaderboard (docs/leaderboard.md)"
    dirty = tuple(r.run_id for r in LATEST.runs if load_run(REPO / "results" / r.run_id).record.environment.git_dirty)
    assert LATEST.changelog.dirty_runs == dirty == tuple(r.run_id for r in LATEST.runs if r.git_dirty)


@pytest.mark.parametrize("version", sorted(COMMITTED))
def test_every_value_of_a_committed_release_is_its_records(version):
    """Checked against every record of the release that is still committed (a run redone from a
    clean tree may replace a dirty one under results/; the latest release holds them all)."""
    release = COMMITTED[version]
    columns = {c.id: c for c in release.columns}
    folders = {ref.run_id: REPO / "results" / ref.run_id for ref in release.runs}
    runs = {run_id: load_run(folder) for run_id, folder in folders.items() if (folder / "record.json").is_file()}
    checked = 0
    for row in release.rows:
        for column_id, cell in row.cells.items():
            if cell.run not in runs:
                continue
            column = columns[column_id]
            value = runs[cell.run].results[(row.identity, column.task)].metrics[column.metric]
            assert (cell.value, cell.stderr) == (value.value, value.stderr), (row.model, column.task, column.metric)
            checked += 1
    assert checked > 0 or not runs


def test_a_broken_release_file_is_one_line(tmp_path):
    bad = tmp_path / "board" / "releases" / "v1.0.0" / "release.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{")
    with pytest.raises(HarnessError, match=r"release.json is not a readable release"):
        build_release([make_run(tmp_path, "a")], tmp_path / "board")
