"""recipes/results_tables.py: every reference-result table of the docs is what the committed records
give (so CI fails when a table drifts from its records), an edited number is caught, and a region
without its table (or a table without its region) is an error."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from tests.helpers import REPO


def _script():
    spec = importlib.util.spec_from_file_location("results_tables", REPO / "recipes" / "results_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()


@pytest.fixture(scope="module")
def results():
    return SCRIPT.Results(REPO / "results")


def _copy_docs(tmp_path):
    for page in SCRIPT.PAGES:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / page, tmp_path / page)
    return tmp_path


def test_the_committed_docs_are_what_the_records_give(results):
    for path, (committed, generated) in SCRIPT.pages(REPO, results).items():
        stale = SCRIPT.changed_regions(committed, generated)
        assert committed == generated, f"{path.name}: {stale} differ from the records; run python recipes/results_tables.py"


def test_one_edited_number_fails_the_check_and_names_its_table(tmp_path, results):
    root = _copy_docs(tmp_path)
    page = root / "docs" / "results.md"
    text = page.read_text()
    assert text.count("| 0.238 ± 0.008 |") == 1
    page.write_text(text.replace("| 0.238 ± 0.008 |", "| 0.239 ± 0.008 |"))
    (before, after), *_ = (v for p, v in SCRIPT.pages(root, results).items() if p == page)
    assert before != after and SCRIPT.changed_regions(before, after) == ["embedded-default"]
    assert after == text  # regenerating puts the record's number back


def test_prose_outside_the_regions_is_left_as_written(tmp_path, results):
    root = _copy_docs(tmp_path)
    page = root / "docs" / "results.md"
    page.write_text(page.read_text().replace("## Token dropping\n", "## Token dropping\n\nA hand-written line.\n"))
    before, after = SCRIPT.pages(root, results)[page]
    assert before == after


def test_a_region_without_its_table_or_a_table_without_its_region_is_an_error(tmp_path, results):
    root = _copy_docs(tmp_path)
    analysis = root / "docs" / "analysis.md"
    text = analysis.read_text()
    analysis.write_text(text + "\n<!-- generated: no-such-table -->\n<!-- end generated -->\n")
    with pytest.raises(SystemExit, match=r"docs/analysis.md: no table named 'no-such-table'"):
        SCRIPT.pages(root, results)
    analysis.write_text(text.replace("<!-- generated: compare-example -->", "<!-- compare-example -->"))
    with pytest.raises(SystemExit, match=r"no region <!-- generated: NAME --> for compare-example"):
        SCRIPT.pages(root, results)


def test_every_committed_run_is_in_the_index(results):
    index = SCRIPT.runs(results)
    assert all(f"`results/{run}/`" in index for run in results.ids()) and len(results.ids()) == index.count("`results/")


def test_the_test_split_weighting_by_hand():
    # the VLM's open answers on 200 questions per type: shape 0.965, colour 0.5, yes/no 0.64
    weighted = SCRIPT._weighted({"shape": 0.965, "color": 0.5, "yesno": 0.64})
    assert weighted == pytest.approx((1257 * 0.965 + 1280 * 0.5 + 7136 * 0.64) / 9673) and round(weighted, 3) == 0.664


def test_the_vlm_builds_are_the_records_vlms_only(results):
    builds = SCRIPT.vlm_builds(results)
    assert "`llava-smollm2-easyvqa-d7d0ea5b05f94636` | `5a275ea165b47003653f0689e0a540e33f7afe87a3dcfe2fd0a62e4d04fcbb15`" in builds
    assert "arithmetic" not in builds and "xcopa" not in builds  # the merge experts are built too, but are no VLM
