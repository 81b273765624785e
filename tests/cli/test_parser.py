"""The parser: shared options carry the shared defaults, and building it stays light."""

from __future__ import annotations

import subprocess
import sys

from harness.analysis import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES
from harness.cli._main import _parser
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
