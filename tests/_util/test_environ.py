"""A caller's process kept around a call: loggers, logging.disable, warning filters, environment."""

from __future__ import annotations

import logging
import os
import warnings

from harness._util.environ import caller_process_kept


def test_the_callers_logging_warning_filters_and_environment_are_as_they_were(monkeypatch):
    mine, library = logging.getLogger("test_environ.mine"), logging.getLogger("test_environ.library")
    handler = logging.NullHandler()
    mine.setLevel(logging.DEBUG)
    mine.addHandler(handler)
    monkeypatch.setenv("TEST_ENVIRON_KEPT", "before")
    monkeypatch.setenv("TEST_ENVIRON_REMOVED", "before")
    monkeypatch.delenv("TEST_ENVIRON_ADDED", raising=False)
    filters = list(warnings.filters)
    root_handlers = list(logging.getLogger().handlers)
    try:
        with caller_process_kept():
            mine.setLevel(logging.ERROR)
            mine.handlers.clear()
            mine.propagate = False
            library.disabled = True
            logging.getLogger().addHandler(logging.NullHandler())
            made_inside = logging.getLogger("test_environ.made_inside")
            made_inside.setLevel(logging.CRITICAL)
            logging.disable(logging.WARNING)
            warnings.simplefilter("ignore")
            os.environ["TEST_ENVIRON_KEPT"] = "changed"
            os.environ["TEST_ENVIRON_ADDED"] = "added"
            del os.environ["TEST_ENVIRON_REMOVED"]
        assert (mine.level, mine.handlers, mine.propagate, library.disabled) == (logging.DEBUG, [handler], True, False)
        assert logging.getLogger().handlers == root_handlers and logging.root.manager.disable == logging.NOTSET
        assert made_inside.level == logging.CRITICAL  # a logger made inside is the library's: left as it was set
        assert warnings.filters == filters
        assert (os.environ["TEST_ENVIRON_KEPT"], os.environ["TEST_ENVIRON_REMOVED"]) == ("before", "before")
        assert "TEST_ENVIRON_ADDED" not in os.environ
    finally:
        mine.removeHandler(handler)
        mine.setLevel(logging.NOTSET)
