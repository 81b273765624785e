"""The parser: shared options carry the shared defaults, -q and -v go anywhere, and building it stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness._util import log
from harness._util.paths import DEFAULT_OUTPUT_DIR, REFERENCE_RUNS_DIR
from harness.analysis import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES
from harness.cli._main import _parser
from harness.errors import HarnessError
from harness.spec import DEFAULT_SEED


def test_comparison_commands_share_the_bootstrap_defaults():
    parser = _parser()
    for argv in (["compare", "RUN"], ["report", "RUN"], ["leaderboard", "build"]):
        args = parser.parse_args(argv)
        assert (args.seed, args.resamples) == (DEFAULT_SEED, DEFAULT_RESAMPLES), argv
        assert getattr(args, "confidence", DEFAULT_CONFIDENCE) == DEFAULT_CONFIDENCE, argv


def test_building_the_parser_imports_nothing_heavy():
    heavy = ("torch", "lm_eval", "numpy", "pydantic", "yaml")
    code = f"import sys; from harness.cli._main import _parser; _parser(); print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_quiet_and_verbose_go_before_or_after_any_command():
    parser = _parser()
    assert parser.parse_args(["tasks"]).verbosity == log.NORMAL
    assert parser.parse_args(["-q", "eval"]).verbosity == log.QUIET
    assert parser.parse_args(["eval", "--verbose"]).verbosity == log.VERBOSE
    assert parser.parse_args(["-v", "leaderboard", "build"]).verbosity == log.VERBOSE
    assert parser.parse_args(["leaderboard", "build", "--quiet"]).verbosity == log.QUIET


def test_leaderboard_build_reads_the_committed_runs_by_default(monkeypatch, tmp_path):
    """`harness eval` writes to runs/ by default; the leaderboard is built from the committed
    reference runs in results/ unless told otherwise."""
    import harness.leaderboard
    from harness.cli._main import main

    given = []

    def build_release(runs, *args):
        given.append(runs)
        raise HarnessError("stop here")

    monkeypatch.setattr(harness.leaderboard, "build_release", build_release)
    assert main(["leaderboard", "build", "--out", str(tmp_path / "board")]) == 2
    assert given == [[str(REFERENCE_RUNS_DIR)]] and REFERENCE_RUNS_DIR == Path("results") != DEFAULT_OUTPUT_DIR
