"""Bad input: one line on stderr, exit status 2, nothing written (cases in cases/bad_input.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

CASES = json.loads((Path(__file__).parent / "cases" / "bad_input.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input_fails_in_one_line(case, env, tmp_path):
    if case.get("needs_no_cuda"):
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("limt: 5\n")
    out = tmp_path / "out"
    args = [a.replace("{tmp}", str(tmp_path)) for a in case["args"]]
    done = run_cli(["eval", *args, "--output-dir", str(out)], env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("harness: ")
    assert case["error"].replace("{tmp}", str(tmp_path)) in lines[0]
    assert not out.exists(), "bad input must write nothing"
