"""The wrapper registry: a name is registered once."""

from __future__ import annotations

import pytest

from harness.wrappers import WRAPPERS, register_wrapper


def test_registering_a_name_twice_is_an_error():
    name = next(iter(WRAPPERS.names()))
    with pytest.raises(ValueError, match="already registered"):
        register_wrapper(name, doc="again")(lambda model, tokenizer, params: None)
