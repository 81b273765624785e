"""harness's output: its lines and bars on the terminal, the libraries' output in the run's log, and
the process as it was afterwards."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings

import pytest

from harness._util import log

LIBRARIES = {"lm_eval": logging.INFO, "transformers": logging.WARNING}


def _state() -> dict:
    loggers = [logging.getLogger(name) for name in (*LIBRARIES, log.LOGGER)]
    return {
        "loggers": [(lg.level, lg.propagate, lg.disabled, list(lg.handlers)) for lg in loggers],
        "stderr": sys.stderr,
        "descriptor 2": os.fstat(2).st_ino,
        "showwarning": warnings.showwarning,
        "filters": list(warnings.filters),
        "terminal": log.terminal(),
    }


def test_the_libraries_output_goes_to_the_log_and_harness_s_to_the_terminal(tmp_path, capfd):
    path = tmp_path / "run.log"
    before = _state()
    with log.configured(log.NORMAL), log.captured(path, LIBRARIES):
        logging.getLogger("lm_eval.api.task").warning("metric acc is defined, but higher_is_better is not")
        logging.getLogger("lm_eval.evaluator").info("Running loglikelihood requests")
        logging.getLogger("lm_eval.evaluator").debug("below the log's level")
        logging.getLogger("transformers.modeling_utils").error("a library's error")
        warnings.warn("a library's warning", UserWarning, stacklevel=1)
        print("\r 10%|#", end="", file=sys.stderr)
        print("\r100%|##########| 5/5\n", end="", file=sys.stderr)
        subprocess.run(["git", "describe", "--always"], cwd=tmp_path, env={**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)})
        os.write(2, b"written by native code\n")
        logging.getLogger("harness.engine._run").info("harness's own line")
        with log.progress(3, "smollm2-135m-instruct arithmetic_2da", "req") as bar:
            bar.update(3)
    assert _state() == before

    err = capfd.readouterr().err
    assert "harness: harness's own line" in err
    assert "smollm2-135m-instruct arithmetic_2da: 100%" in err and "3/3" in err
    assert "transformers.modeling_utils: ERROR: a library's error" in err  # errors still reach the terminal
    for noise in ("higher_is_better", "Running loglikelihood", "a library's warning", "fatal:", "native code", "5/5"):
        assert noise not in err, noise

    written = path.read_text()
    for line in (
        "WARNING lm_eval.api.task: metric acc is defined, but higher_is_better is not",
        "INFO lm_eval.evaluator: Running loglikelihood requests",
        "UserWarning: a library's warning",
        "fatal: not a git repository",
        "written by native code",
        "INFO harness.engine._run: harness's own line",
        "\n100%|##########| 5/5\n",  # a bar's redraws reduced to its last state
    ):
        assert line in written, line
    assert "below the log's level" not in written and "10%" not in written


def test_with_verbose_the_terminal_shows_the_libraries_too(tmp_path, capfd):
    path = tmp_path / "run.log"
    with log.configured(log.VERBOSE), log.captured(path, LIBRARIES):
        logging.getLogger("lm_eval.api.task").warning("Custom kwargs can be passed to `--metadata`")
        subprocess.run(["git", "describe", "--always"], cwd=tmp_path, env={**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)})
        logging.getLogger("harness.lm").debug("a debug line")
    err = capfd.readouterr().err
    assert "lm_eval.api.task: WARNING: Custom kwargs" in err and "fatal: not a git repository" in err
    assert "harness: a debug line" in err
    assert "Custom kwargs" in path.read_text()


def test_quiet_leaves_warnings_and_no_progress_bars(tmp_path, capfd):
    with log.configured(log.QUIET), log.captured(tmp_path / "run.log", LIBRARIES):
        logging.getLogger("harness.lm").info("an info line")
        logging.getLogger("harness.lm").warning("a warning")
        with log.progress(3, "a bar", "req") as bar:
            bar.update(3)
    err = capfd.readouterr().err
    assert err == "harness: a warning\n"


def test_a_caller_without_logging_still_sees_harness_s_warnings(tmp_path):
    """A script or notebook that configured no logging: harness's warnings reach its stderr (not
    only the log, where logging's last resort would put them while stderr is captured). In a
    process of its own: pytest gives the root logger handlers."""
    code = (
        "import logging, sys\n"
        "from pathlib import Path\n"
        "from harness._util import log\n"
        "with log.captured(Path(sys.argv[1]), {'lm_eval': logging.INFO}):\n"
        "    logging.getLogger('harness.lm._request_cache').warning('request cache x: 1 answer(s) failed their checksum')\n"
        "    logging.getLogger('harness.lm').info('not shown: the caller asked for nothing')\n"
        "    logging.getLogger('lm_eval.api.task').warning('in the log only')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run.log")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "harness: request cache x: 1 answer(s) failed their checksum\n"
    assert "in the log only" in (tmp_path / "run.log").read_text()


def test_a_handler_made_during_the_capture_writes_to_stderr_afterwards(tmp_path, capfd):
    """A library that makes a logging handler while stderr is captured (absl does at import) keeps
    the stream of the moment: after the run it writes to stderr again, and closing it is harmless."""
    with log.captured(tmp_path / "run.log", LIBRARIES):
        handler = logging.StreamHandler()
        handler.stream.write("during the run\n")
    handler.stream.write("after the run\n")
    handler.close()
    handler.stream.close()
    assert capfd.readouterr().err == "after the run\n"
    assert "during the run" in (tmp_path / "run.log").read_text()


def test_the_process_is_restored_after_an_error(tmp_path):
    before = _state()
    with pytest.raises(RuntimeError), log.configured(log.NORMAL), log.captured(tmp_path / "run.log", LIBRARIES):
        raise RuntimeError("boom")
    assert _state() == before
