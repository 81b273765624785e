"""Reading a pickle that should hold only data, without running code that it names.

A pickle can name any importable callable (os.system included) and have it called while loading.
This unpickler resolves only a few standard-library containers, substitutes an inert attribute
holder for the classes the caller expects, and refuses every other name.
"""

from __future__ import annotations

import collections
import pickle
from collections.abc import Collection
from pathlib import Path
from typing import Any

# What a Keras Tokenizer's pickle names besides the Tokenizer itself; all are plain containers.
_ALLOWED: dict[tuple[str, str], type] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("builtins", "int"): int,
}


class AttributeHolder:
    """Stands in for a pickled class: pickle fills its __dict__, and none of the class's code runs."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, stand_ins: Collection[tuple[str, str]]) -> None:
        super().__init__(file)
        self._stand_ins = stand_ins

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._stand_ins:
            return AttributeHolder
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")


def load_data_pickle(path: Path, stand_ins: Collection[tuple[str, str]]) -> Any:
    """The object in `path`, with each (module, class) of `stand_ins` read as an AttributeHolder."""
    with open(path, "rb") as f:
        return _RestrictedUnpickler(f, stand_ins).load()
