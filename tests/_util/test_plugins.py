"""Plugins through entry points: loaded when their registry is first used, a broken one reported in
one line naming it (and named again when a lookup misses), and the distribution a module comes from."""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import pytest

from harness._util import plugins
from harness._util.registry import Registry
from harness.errors import HarnessError

GROUP = "harness.test-widgets"


def _distribution(site: Path, name: str, version: str, entry_points: dict[str, str]) -> None:
    """An installed distribution as importlib.metadata reads it: its dist-info with METADATA and entry_points.txt."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path for distributions made by the test, and the plugin state as it was after."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(plugins, "_loaded_from", {})
    monkeypatch.setattr(plugins, "_failures", {})
    plugins._entry_points.cache_clear()
    yield folder
    plugins._entry_points.cache_clear()


def test_plugins_load_on_first_use_and_a_broken_one_is_reported_in_one_line(site, monkeypatch, caplog):
    widgets: Registry[object] = Registry("widget", populate=lambda: widgets.register("builtin", 0), plugins=GROUP)
    monkeypatch.setitem(sys.modules, "widget_registry", types.SimpleNamespace(WIDGETS=widgets))
    (site / "good_widgets").mkdir()
    (site / "good_widgets" / "__init__.py").write_text(  # registers where it comes from, asked while it loads (as register_wrapper does)
        "from harness._util.plugins import distribution_of\nfrom widget_registry import WIDGETS\n"
        "WIDGETS.register('good', distribution_of(__name__))\n"
    )
    (site / "clashing_widgets.py").write_text("from widget_registry import WIDGETS\nWIDGETS.register('builtin', 2)\n")
    _distribution(site, "good-widgets", "1.2", {"good": "good_widgets"})
    _distribution(site, "broken-widgets", "0.1", {"broken": "broken_widgets"})
    _distribution(site, "clashing-widgets", "3.0", {"clash": "clashing_widgets"})

    assert "good_widgets" not in sys.modules  # nothing is imported before the registry is used
    with caplog.at_level(logging.WARNING, logger="harness.plugins"):
        assert widgets.get("good") == "good-widgets==1.2" and widgets.get("builtin") == 0
    monkeypatch.delitem(sys.modules, "good_widgets")
    monkeypatch.delitem(sys.modules, "clashing_widgets", raising=False)

    lines = sorted(record.getMessage() for record in caplog.records)
    assert lines == [
        f"plugin 'broken' (broken-widgets==0.1, entry point {GROUP}) failed to load: No module named 'broken_widgets'",
        f"plugin 'clash' (clashing-widgets==3.0, entry point {GROUP}) failed to load: widget 'builtin' is already registered",
    ]
    assert widgets.names() == ["builtin", "good"]
    with pytest.raises(HarnessError) as missing:
        widgets.get("brokn")
    assert str(missing.value) in {f"unknown widget 'brokn'; {'; '.join(order)}" for order in (lines, lines[::-1])}
    assert plugins.distribution_of("good_widgets.sub") == "good-widgets==1.2"


def test_where_a_module_comes_from():
    import yaml

    assert plugins.distribution_of("harness.wrappers.depth") is None
    assert plugins.distribution_of(yaml.__name__) == f"PyYAML=={yaml.__version__}"
    assert plugins.distribution_of("__main__") == "__main__"
    assert plugins.distribution_of("my_notebook_helpers.wrappers") == "my_notebook_helpers.wrappers"
