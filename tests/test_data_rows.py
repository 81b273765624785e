"""A malformed data row stops the run with one line naming file and row (cases/malformed_rows.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

CASES = json.loads((Path(__file__).parent / "cases" / "malformed_rows.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_malformed_row_is_named(case, env, tmp_path):
    data = tmp_path / "data"
    for relative, text in case["files"].items():
        (data / relative).parent.mkdir(parents=True, exist_ok=True)
        (data / relative).write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    done = run_cli(["eval", "--tasks", case["task"], "--data-dir", str(data), "--output-dir", str(out)], env)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: "), done.stderr[-2000:]
    assert case["error"] in lines[0]
    assert not out.exists()
