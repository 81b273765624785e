"""The parser: shared options carry the shared defaults, -q and -v go anywhere, and building it stays light."""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from harness._util import log
from harness._util.paths import DEFAULT_OUTPUT_DIR, REFERENCE_RUNS_DIR
from harness.analysis import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES
from harness.cli._main import _parser, main
from harness.errors import HarnessError
from harness.spec import DEFAULT_SEED, OPTIONS


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


def test_version_names_harness_and_lm_eval(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    expected = f"harness {importlib.metadata.version('harness')} (lm-eval {importlib.metadata.version('lm-eval')})\n"
    assert capsys.readouterr().out == expected


def test_eval_takes_lm_evals_spellings_of_its_options():
    """Every option with an underscore in its name takes lm-eval's spelling too (an option added
    later gets it as well); --output_path is --output-dir; --log_samples changes nothing."""
    parser = _parser()
    hyphens = parser.parse_args(["eval", "--num-fewshot", "3", "--batch-size", "auto", "--output-dir", "o", "--no-base"])
    underscores = parser.parse_args(["eval", "--num_fewshot", "3", "--batch_size", "auto", "--output_path", "o", "--no_base"])
    assert vars(underscores) == {**vars(hyphens), "lm_eval_log_samples": False}
    assert vars(parser.parse_args(["eval", "--log_samples"])) == {**vars(parser.parse_args(["eval"])), "lm_eval_log_samples": True}
    assert parser.parse_args(["eval", "--output_dir", "o"]).output_dir == "o"
    for setting in OPTIONS:
        if "_" in setting.name:
            value = [] if setting.switch else ["1"]
            assert getattr(parser.parse_args(["eval", f"--{setting.name}", *value]), setting.name) not in (None, False), setting.name
    # the last of the two spellings wins, as with one flag given twice
    assert parser.parse_args(["eval", "--num-fewshot", "1", "--num_fewshot", "2"]).num_fewshot == "2"
    # --help lists each option once, and says in a closing paragraph which spellings it takes too
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    shown = " ".join(commands.choices["eval"].format_help().split())
    assert "--num-fewshot NUM_FEWSHOT" in shown and "--num_fewshot NUM_FEWSHOT" not in shown and "--output_path OUTPUT" not in shown
    assert "with underscores (--num_fewshot, --batch_size); lm-eval's --output_path is --output-dir, and --log_samples" in shown


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
