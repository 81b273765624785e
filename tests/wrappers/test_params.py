"""Wrapper parameters are typed, defaulted and checked, with one clear line for each bad value."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.wrappers import Param
from harness.wrappers._params import resolve

PARAMS = (
    Param("bits", int, 4, "bits per weight", choices=(2, 3, 4, 8)),
    Param("alpha", float, 0.5, "strength", minimum=0.0, maximum=1.0),
    Param("head", bool, False, "also the head"),
)


def test_parameters_are_typed_defaulted_and_checked():
    assert resolve("w", PARAMS, {}) == {"bits": 4, "alpha": 0.5, "head": False}
    assert resolve("w", PARAMS, {"bits": "8", "head": "true"}) == {"bits": 8, "alpha": 0.5, "head": True}
    cases = {
        ("bits", "5"): "w:bits=5: must be one of 2, 3, 4, 8",
        ("bits", "four"): "w:bits='four': expected int",
        ("alpha", "1.5"): "w:alpha=1.5: must be <= 1.0",
        ("head", "maybe"): "w:head='maybe': expected true or false",
        ("bitz", "4"): "unknown parameter 'bitz' for wrapper w (did you mean bits?)",
    }
    for (key, value), message in cases.items():
        with pytest.raises(HarnessError) as error:
            resolve("w", PARAMS, {key: value})
        assert str(error.value) == message
