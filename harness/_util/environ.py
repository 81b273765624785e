"""Environment variables set for one call and restored after it, and the whole of a caller's
logging, warning filters and environment kept around a call, so a library call leaves the caller's
process as it found it."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@contextmanager
def scoped_environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set each variable given a string; leave those given None as they are. On exit every named
    variable gets back its value from before (or is removed again), whoever changed it meanwhile."""
    before = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is not None:
                os.environ[name] = value
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass(frozen=True)
class _LoggerState:
    level: int
    handlers: list[logging.Handler]
    filters: list[Any]
    propagate: bool
    disabled: bool

    @classmethod
    def of(cls, logger: logging.Logger) -> _LoggerState:
        return cls(logger.level, list(logger.handlers), list(logger.filters), logger.propagate, logger.disabled)

    def restore(self, logger: logging.Logger) -> None:
        logger.setLevel(self.level)
        logger.handlers[:] = self.handlers
        logger.filters[:] = self.filters
        logger.propagate = self.propagate
        logger.disabled = self.disabled


@contextmanager
def caller_process_kept() -> Iterator[None]:
    """Around a call made from a user's program (harness.evaluate): every logger that exists before
    it gets back its level, handlers, filters and propagation, `logging.disable` its level, the warning
    filters theirs and the environment its variables, whatever the libraries imported or run inside
    changed (transformers, on import, sets the level of its logger even if the caller had)."""
    manager = logging.Logger.manager
    loggers = [logging.getLogger(), *(item for item in manager.loggerDict.values() if isinstance(item, logging.Logger))]
    kept = [(logger, _LoggerState.of(logger)) for logger in loggers]
    disabled = manager.disable
    environ = dict(os.environ)
    try:
        with warnings.catch_warnings():
            yield
    finally:
        for logger, state in kept:
            state.restore(logger)
        logging.disable(disabled)
        for name in set(os.environ) - set(environ):
            del os.environ[name]
        for name, value in environ.items():
            if os.environ.get(name) != value:
                os.environ[name] = value
