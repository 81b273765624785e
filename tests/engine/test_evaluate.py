"""The libraries' output while lm-eval evaluates: in the run's log, kept and named when a run crashes."""

from __future__ import annotations

import logging

import pytest

from harness.engine._evaluate import _libraries_logged
from harness.errors import HarnessError


def test_a_run_that_crashes_keeps_its_log_and_names_it(caplog):
    with pytest.raises(RuntimeError), _libraries_logged() as log:
        logging.getLogger("lm_eval.api.task").warning("what led to it")
        raise RuntimeError("boom")
    try:
        assert "what led to it" in log.path.read_text()
        assert f"what the libraries said during the failed run: {log.path}" in caplog.text
    finally:
        log.path.unlink()


def test_a_refused_or_finished_run_leaves_no_log_behind(tmp_path):
    """A refusal is said in one line; a finished run's log is copied into its folder first."""
    with pytest.raises(HarnessError), _libraries_logged() as refused:
        raise HarnessError("bad input")
    assert not refused.path.exists()
    with _libraries_logged() as finished:
        logging.getLogger("lm_eval.evaluator").info("Running loglikelihood requests")
        finished.save(tmp_path)
    assert not finished.path.exists()
    assert "Running loglikelihood requests" in (tmp_path / "run.log").read_text()
