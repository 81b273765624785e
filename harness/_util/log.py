"""What harness prints while it works, and where the libraries' output goes.

harness's own lines go through `logging`, to the `harness` logger and its children (a module's
`logging.getLogger(__name__)`); its progress bars and those lines go to the terminal (`terminal`).
The `harness` command sets the verbosity (`configured`): by default harness's lines at INFO and one
progress bar per variant and task; `-q` warnings and errors only, no bars; `-v` harness's debug
lines, and the libraries' records and output on the terminal as well as in the run's log.

While a run evaluates (`captured`), what the libraries say goes to the run's log file rather than
the terminal: the records of their loggers, Python warnings, and whatever is written to stderr by
Python code or below it (lm-eval runs `git describe`, and git complains on stderr outside a
repository; tokenizers and torch write there from native code). Everything is restored on exit:
the loggers' levels, handlers and propagation, the warning display, `sys.stderr` and file
descriptor 2.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm

LOGGER = "harness"
LIBRARIES = {
    "lm_eval": logging.INFO,
    "datasets": logging.WARNING,
    "transformers": logging.WARNING,
    "accelerate": logging.WARNING,
    "huggingface_hub": logging.WARNING,
}
"""The libraries' loggers, and what a run's log keeps of each: lm-eval's steps, the others' warnings."""
QUIET, NORMAL, VERBOSE = -1, 0, 1
_LEVELS = {QUIET: logging.WARNING, NORMAL: logging.INFO, VERBOSE: logging.DEBUG}
_FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_verbosity = NORMAL
_terminals: list[TextIO] = []
"""The terminal while stderr is captured (innermost last); sys.stderr when empty."""


def terminal() -> TextIO:
    """Where harness's lines and progress bars go: stderr as it was before any capture."""
    return _terminals[-1] if _terminals else sys.stderr


def progress(total: int, desc: str, unit: str, **options: Any) -> tqdm:
    """A labelled progress bar on the terminal (what, how many, rate, time left); none with -q or
    when there is nothing to do. tqdm's `options` (an iterable, mininterval). tqdm: lm-eval
    depends on it already."""
    from tqdm import tqdm

    quiet = _verbosity <= QUIET or total == 0
    return tqdm(total=total, desc=desc, unit=unit, file=terminal(), disable=quiet, dynamic_ncols=True, **options)


class _TerminalHandler(logging.StreamHandler[TextIO]):
    """Writes to the terminal of the moment, also while a run captures stderr."""

    def __init__(self, level: int = logging.NOTSET, form: str = "harness: %(message)s") -> None:
        super().__init__(terminal())
        self.setLevel(level)
        self.setFormatter(logging.Formatter(form))

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = terminal()  # emit runs under the handler's lock
        super().emit(record)


@contextmanager
def configured(level: int) -> Iterator[None]:
    """The `harness` command's output while inside: harness's lines on the terminal at `level`'s
    threshold (QUIET, NORMAL, VERBOSE), progress bars unless QUIET; outside a run (which keeps
    their output in its log) the libraries' errors only, unless VERBOSE. The loggers and the
    verbosity are as they were on exit (the command runs in-process in tests and notebooks)."""
    global _verbosity
    logger = logging.getLogger(LOGGER)
    kept_verbosity, kept_level, kept_propagate = _verbosity, logger.level, logger.propagate
    libraries = [logging.getLogger(name) for name in LIBRARIES]
    kept_levels = [library.level for library in libraries]
    handler = _TerminalHandler()
    _verbosity = level
    logger.setLevel(_LEVELS[level])
    logger.propagate = False  # its lines are printed here, once, whatever the root logger does
    logger.addHandler(handler)
    if level < VERBOSE:
        for library in libraries:
            library.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        _verbosity = kept_verbosity
        logger.setLevel(kept_level)
        logger.propagate = kept_propagate
        for library, kept in zip(libraries, kept_levels, strict=True):
            library.setLevel(kept)


@contextmanager
def captured(path: Path, libraries: Mapping[str, int] = LIBRARIES) -> Iterator[None]:
    """While inside, the `libraries` loggers (name -> level) write to the log file `path`, and so do
    Python warnings and everything written to stderr; harness's lines and bars still reach the
    terminal, and go to the file too, and so do the libraries' errors. With -v the terminal keeps
    what it would show without harness (stderr is not redirected), and the libraries' records go to
    both."""
    with open(path, "a", encoding="utf-8", errors="backslashreplace", buffering=1) as file, ExitStack() as stack:
        to_file = logging.StreamHandler(file)
        to_file.setFormatter(logging.Formatter(_FILE_FORMAT))
        echo = _verbosity >= VERBOSE
        shown = _TerminalHandler(logging.INFO if echo else logging.ERROR, "%(name)s: %(levelname)s: %(message)s")
        for name, level in libraries.items():
            stack.enter_context(_logger_set(logging.getLogger(name), level, [to_file, shown]))
        stack.enter_context(_harness_logged(to_file))
        stack.enter_context(_warnings_logged(file, echo))
        if not echo:
            stack.enter_context(_stderr_to(file))
        yield


@contextmanager
def _logger_set(logger: logging.Logger, level: int, handlers: list[logging.Handler]) -> Iterator[None]:
    """`logger` at `level`, writing only to `handlers` (not to its own, nor through its parents)."""
    kept = (logger.level, logger.propagate, logger.disabled, list(logger.handlers))
    for handler in kept[3]:
        logger.removeHandler(handler)
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    logger.disabled = False
    try:
        yield
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
        for handler in kept[3]:
            logger.addHandler(handler)
        logger.setLevel(kept[0])
        logger.propagate, logger.disabled = kept[1], kept[2]


@contextmanager
def _harness_logged(to_file: logging.Handler) -> Iterator[None]:
    """harness's own lines in the log file as well. A caller who configured no logging at all (a
    script, a notebook) sees harness's warnings through logging's last resort, which writes to the
    captured stderr: for that caller they go to the terminal instead."""
    logger = logging.getLogger(LOGGER)
    added = [to_file] if logger.hasHandlers() else [to_file, _TerminalHandler(logging.WARNING)]
    for handler in added:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for handler in added:
            logger.removeHandler(handler)


@contextmanager
def _warnings_logged(log: TextIO, echo: bool) -> Iterator[None]:
    """Python warnings written to the log file (and, with `echo`, shown as before); the warning
    filters and display are the caller's again on exit."""
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(
            message: Warning | str, category: type[Warning], filename: str, lineno: int, file: TextIO | None = None, line: str | None = None
        ) -> None:
            log.write(warnings.formatwarning(message, category, filename, lineno, line))
            if echo:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


@contextmanager
def _stderr_to(file: TextIO) -> Iterator[None]:
    """stderr into `file`, at both levels: `sys.stderr` for Python code (progress-bar redraws kept
    to their last state) and file descriptor 2 for native code and child processes. The terminal
    (where harness's lines and bars go meanwhile) is stderr as it was: a notebook's stream as it
    is; the process's own stderr through a copy of its descriptor."""
    stream = sys.stderr
    stream.flush()
    with ExitStack() as undo:  # its callbacks run last first
        shown = stream
        if _on_descriptor_2(stream):
            shown = undo.enter_context(open(os.dup(2), "w", encoding=stream.encoding or "utf-8", errors="backslashreplace", buffering=1))
        saved = os.dup(2)
        undo.callback(os.close, saved)
        os.dup2(file.fileno(), 2)
        undo.callback(os.dup2, saved, 2)
        sys.stderr = captured = _LogStream(file)
        undo.callback(setattr, sys, "stderr", stream)
        undo.callback(captured.finish)
        _terminals.append(shown)
        undo.callback(_terminals.pop)
        yield


def _on_descriptor_2(stream: TextIO) -> bool:
    """Whether `stream` writes to file descriptor 2 (not a notebook's stream or a test's capture)."""
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


class _LogStream:
    """`sys.stderr` while a run captures it: lines into the log file, a progress bar's redraws
    (carriage returns) reduced to its last state, so the log reads as lines. A library may keep it
    (a logging handler made meanwhile holds the sys.stderr of the moment): once the capture ends it
    writes to stderr as it is then."""

    def __init__(self, file: TextIO) -> None:
        self._file: TextIO | None = file
        self._pending = ""
        self.encoding = "utf-8"

    def _stream(self) -> TextIO:
        return self._file or sys.stderr

    def write(self, text: str) -> int:
        if self._file is None:
            return sys.stderr.write(text)
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._file.write(_last_state(line) + "\n")
        self._pending = _last_state(self._pending) + ("\r" if self._pending.endswith("\r") else "")
        return len(text)

    def flush(self) -> None:
        self._stream().flush()  # not the pending line: a progress bar flushes after every redraw

    def finish(self) -> None:
        """The last, unfinished line, as a line; from now on, stderr as it is."""
        if self._file is not None and (state := _last_state(self._pending)):
            self._file.write(state + "\n")
        self._pending = ""
        self._file = None

    def fileno(self) -> int:
        return self._stream().fileno()

    def isatty(self) -> bool:
        return self._file is None and sys.stderr.isatty()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing: the log file is the capture's, stderr the process's (a library that kept this
        stream closes it at exit)."""


def _last_state(line: str) -> str:
    """What a terminal would show of `line` after its carriage returns."""
    drawn = [part for part in line.split("\r") if part]
    return drawn[-1] if drawn else ""
