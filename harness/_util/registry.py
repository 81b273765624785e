"""A typed name -> object registry: duplicate names are an error, unknown ones get suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from harness._util import plugins
from harness.errors import HarnessError

T = TypeVar("T")


def did_you_mean(name: str, options: list[str]) -> str:
    """' (did you mean a, b?)' for close matches of `name` among `options`, else ''."""
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.6)
    if not close:
        close = [o for o in options if name.lower() in o.lower()][:3]
    return f" (did you mean {', '.join(close)}?)" if close else ""


class Registry(Generic[T]):
    """Objects of one kind (models, wrappers, ...) under unique names, in registration order.

    `populate`, if given, is called once before the first lookup (not before `register`): it
    imports the modules that register the built-in objects, so a registry is lazy as lm-eval's is.
    `plugins`, an entry-point group (harness._util.plugins), is loaded then too, after them.
    """

    def __init__(self, kind: str, populate: Callable[[], None] | None = None, plugins: str | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._populate = populate
        self._plugins = plugins
        self._filling = populate is not None or plugins is not None

    def _filled(self) -> dict[str, T]:
        if self._filling:
            self._filling = False  # first: a plugin that looks a name up while it loads sees what is there
            if self._populate is not None:
                self._populate()
            if self._plugins is not None:
                plugins.load_plugins(self._plugins)
        return self._items

    def register(self, name: str, obj: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        return obj

    def get(self, name: str) -> T:
        items = self._filled()
        try:
            return items[name]
        except KeyError:
            broken = plugins.failures(self._plugins) if self._plugins is not None else []
            why = f"; {'; '.join(broken)}" if broken else ""
            raise HarnessError(f"unknown {self.kind} {name!r}{did_you_mean(name, list(items))}{why}") from None

    def names(self) -> list[str]:
        return list(self._filled())

    def __contains__(self, name: object) -> bool:
        return name in self._filled()

    def __iter__(self) -> Iterator[tuple[str, T]]:
        return iter(self._filled().items())

    def __len__(self) -> int:
        return len(self._filled())
