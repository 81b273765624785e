"""Where runs go: a folder git ignores, apart from the committed reference runs."""

from __future__ import annotations

import subprocess

from harness._util.paths import DEFAULT_OUTPUT_DIR, REFERENCE_RUNS_DIR
from harness.spec._spec import RunSpec
from tests.helpers import REPO


def _ignored(path: str) -> bool:
    done = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=REPO, capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0


def test_a_default_run_leaves_the_checkout_clean():
    """`make eval` or a bare `harness eval` in the checkout writes where git does not look; the
    committed reference runs stay tracked."""
    assert RunSpec.__dataclass_fields__["output_dir"].default == DEFAULT_OUTPUT_DIR
    assert _ignored(f"{DEFAULT_OUTPUT_DIR}/20261203T190857Z-38d918fd/record.json")
    assert _ignored(f"{DEFAULT_OUTPUT_DIR}/.incomplete/38d918fd.1.ab/run.log")
    assert not _ignored(f"{REFERENCE_RUNS_DIR}/20261128T043448Z-c33acd4f/record.json")
