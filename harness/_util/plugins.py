"""Plugins: a user's package that registers wrappers, toxicity scorers or models, found through its
entry points (groups `harness.wrappers`, `harness.scorers`, `harness.models`; docs/api.md).

An entry point names the module whose import registers them (with harness.register_wrapper,
register_scorer, register_model). A registry loads its group when it is first used, so a command
that needs no wrapper imports no plugin. A plugin that fails to load is reported in one warning line
naming it and its error; the rest of harness goes on without it, and a lookup of a name it would
have registered says why the name is missing.

Which distribution registered a wrapper enters the wrapper's record, hence its variant's identity
(`distribution_of`): two plugins that register the same name are never one variant.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
from collections.abc import Mapping

GROUPS = ("harness.wrappers", "harness.scorers", "harness.models")

_log = logging.getLogger("harness.plugins")
_loaded_from: dict[str, str] = {}
"""Top-level module of a plugin loaded through its entry point -> `NAME==VERSION` of its distribution."""
_failures: dict[str, list[str]] = {}
"""Group -> one line per plugin of that group that failed to load."""


@functools.cache
def _entry_points(group: str) -> importlib.metadata.EntryPoints:
    """The installed entry points of `group` (reading them scans every distribution: once per process)."""
    return importlib.metadata.entry_points(group=group)


def load_plugins(group: str) -> None:
    """Import every plugin of `group`; each one that fails is reported and remembered, not raised."""
    for point in _entry_points(group):
        dist, top = point.dist, point.module.split(".")[0]
        named = f"{dist.name}=={dist.version}" if dist is not None else point.value
        new = dist is not None and top not in _loaded_from
        if new:  # before the import: its registrations ask where they come from while it runs
            _loaded_from[top] = named
        try:
            point.load()
        except Exception as exc:  # a broken plugin is the plugin's fault: harness goes on without it
            if new:
                del _loaded_from[top]
            reason = (str(exc).strip().splitlines() or [""])[0] or type(exc).__name__
            line = f"plugin {point.name!r} ({named}, entry point {group}) failed to load: {reason}"
            _failures.setdefault(group, []).append(line)
            _log.warning("%s", line)


def failures(group: str) -> list[str]:
    """The lines reported for the plugins of `group` that failed to load."""
    return list(_failures.get(group, ()))


@functools.cache
def _packages() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distribution_of(module: str) -> str | None:
    """Where code in `module` comes from, when not from harness: `NAME==VERSION` of the installed
    distribution that provides it, else the module's name (a script's or notebook's `__main__`, a
    folder on sys.path). None for harness's own modules."""
    top = module.split(".")[0]
    if top == "harness":
        return None
    if top in _loaded_from:
        return _loaded_from[top]
    for name in _packages().get(top, ()):
        try:
            return f"{name}=={importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return module
