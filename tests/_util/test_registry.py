import pytest

from harness._util.registry import Registry, did_you_mean
from harness.errors import HarnessError


def test_duplicate_names_are_refused():
    registry: Registry[int] = Registry("widget")
    registry.register("a", 1)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        registry.register("a", 2)
    assert registry.get("a") == 1


def test_unknown_names_get_suggestions():
    registry: Registry[int] = Registry("widget")
    for name in ("quantize", "eigenshift", "merge"):
        registry.register(name, 0)
    with pytest.raises(HarnessError, match=r"unknown widget 'quantise' \(did you mean quantize\?\)"):
        registry.get("quantise")
    with pytest.raises(HarnessError) as info:
        registry.get("zzz")
    assert "did you mean" not in str(info.value)
    assert registry.names() == ["quantize", "eigenshift", "merge"] and len(registry) == 3


def test_did_you_mean_falls_back_to_substrings():
    assert did_you_mean("2da", ["arithmetic_2da", "arithmetic_2ds"]) == " (did you mean arithmetic_2da?)"
