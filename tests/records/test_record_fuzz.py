"""The record reader on any input (Hypothesis): generated JSON, and the committed run records
mutated (types flipped, keys dropped, strings made path-like or hostile, the text cut short) either
read as a valid run or are refused with HarnessError in one line, never another exception. What
reads on is then used as compare, report and export use it, with the same contract."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.records import Run, load_run
from harness.records._export import every_eval_ever_documents

# No example database: a test run writes nothing into the repository. The example count keeps
# this file under 30 s (the fast tier).
FAST = settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
RESULTS = Path(__file__).resolve().parents[2] / "results"
# The committed records small enough to validate hundreds of times in seconds.
RECORDS = {p.parent.name: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*/record.json")) if p.stat().st_size < 400_000}

HOSTILE = [
    "",
    "../../escaped",
    "/etc/passwd",
    "samples/../../../etc/passwd",
    "javascript:void(document.title='ran')//",
    "<script>alert(1)</script>",
    "a\nb",
    "\x1b]0;title\x07",
    "\x00",
    "C:\\Windows",
    "~root",
    "A" * 64,
    "0" * 64,
    "x" * 5000,
    "NaN",
    "2.0",
]
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(HOSTILE),
    st.text(max_size=8),
)
JSON = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document: the keys and indices that lead to it."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


PATHS = {name: _paths(record)[1:] for name, record in RECORDS.items()}


@st.composite
def mutated_records(draw) -> bytes:
    """A committed record with one to three changes, as the bytes of its file."""
    name = draw(st.sampled_from(sorted(RECORDS)))
    record = json.loads(json.dumps(RECORDS[name]))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(PATHS[name]))
        parent = record
        try:
            for key in where[:-1]:
                parent = parent[key]
            if not isinstance(parent, dict | list):  # an earlier change put a string (indexable) there
                continue
            current = parent[where[-1]]
        except (KeyError, IndexError, TypeError):  # an earlier change moved it
            continue
        change = draw(st.sampled_from(["flip", "drop", "hostile", "scalar", "json"]))
        if change == "drop":
            del parent[where[-1]]
        elif change == "hostile" or (change == "flip" and isinstance(current, str)):
            parent[where[-1]] = draw(st.sampled_from(HOSTILE))
        elif change == "flip":
            parent[where[-1]] = draw(st.sampled_from([None, 0, -1, 1.5, True, "text", [], {}, [current], {"x": current}]))
        elif change == "scalar":
            parent[where[-1]] = draw(JSON_SCALARS)
        else:
            parent[where[-1]] = draw(JSON)
    text = json.dumps(record).encode("utf-8")
    if draw(st.booleans()):
        return text
    return text[: draw(st.integers(0, len(text)))]  # cut short


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("run")


def _one_line(error: HarnessError) -> None:
    message = str(error)
    assert message and "\n" not in message and "\r" not in message and "\x1b" not in message, message


def _read_on(run: Run) -> None:
    """What compare, report and export take from a record that reads."""
    assert run.record.variants is not None
    for result in run.record.results:
        assert run.results[(result.variant, result.task)] is not None
        for task in run.headline_tasks:
            run.leaves(task)
    for relative, document in every_eval_ever_documents(run).items():
        assert not relative.startswith(("/", "..")) and ".." not in Path(relative).parts
        for entry in document["evaluation_results"]:
            assert math.isfinite(entry["score_details"]["score"])


def _check(folder: Path, text: bytes) -> None:
    (folder / "record.json").write_bytes(text)
    try:
        run = load_run(folder)
        _read_on(run)
    except HarnessError as error:
        _one_line(error)


@FAST
@given(mutated_records())
def test_a_mutated_record_reads_or_is_refused_in_one_line(run_folder, text):
    _check(run_folder, text)


@FAST
@given(st.one_of(JSON.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200)))
def test_any_json_reads_or_is_refused_in_one_line(run_folder, text):
    _check(run_folder, text)


def test_the_committed_records_read_as_they_are(run_folder):
    assert len(RECORDS) >= 8
    for record in RECORDS.values():
        _check(run_folder, json.dumps(record).encode())
        assert load_run(run_folder).record.run_id == record["run_id"]
