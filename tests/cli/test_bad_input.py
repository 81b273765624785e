"""Bad input: one line on stderr, exit status 2, nothing written (cases in cases/bad_input.json)."""

from __future__ import annotations

import pytest

from tests.helpers import read_cases, run_cli

pytestmark = pytest.mark.slow  # each case starts the command line in a new process

CASES = read_cases("bad_input.json")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input_fails_in_one_line(case, env, tmp_path):
    if case.get("hide_cuda"):  # the case needs a machine without CUDA: hide it where there is one
        env = {**env, "CUDA_VISIBLE_DEVICES": ""}
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
