"""The wrapper seam: typed parameters, model strings, sweeps, identity, independence of variants."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.spec._spec import VariantSpec, build_spec, expand_sweeps
from harness.wrappers import WRAPPERS, Param, canonical_text, register_wrapper
from harness.wrappers._params import resolve

BASE = "smollm2-135m-instruct"
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


def test_registering_a_name_twice_is_an_error():
    name = next(iter(WRAPPERS.names()))
    with pytest.raises(ValueError, match="already registered"):
        register_wrapper(name, doc="again")(lambda model, tokenizer, params: None)


def test_sweeps_expand_in_order_and_commas_stay_inside_values():
    assert expand_sweeps(f"{BASE}+quantize:bits=4|8,group=0|64") == [
        f"{BASE}+quantize:bits=4,group=0",
        f"{BASE}+quantize:bits=4,group=64",
        f"{BASE}+quantize:bits=8,group=0",
        f"{BASE}+quantize:bits=8,group=64",
    ]
    assert expand_sweeps(f"{BASE}+skip:layers=3,5,7-9") == [f"{BASE}+skip:layers=3,5,7-9"]
    assert expand_sweeps(BASE) == [BASE]


def test_a_sweep_becomes_distinct_variants_with_their_base_first():
    spec = build_spec({"model": [f"{BASE}+exit:layer=10|20"], "tasks": "arithmetic_2da"}, ["arithmetic_2da"])
    assert [v.model for v in spec.variants] == [BASE, f"{BASE}+exit:layer=10", f"{BASE}+exit:layer=20"]
    alone = build_spec({"model": [f"{BASE}+exit:layer=10|20"], "no_base": True}, ["arithmetic"])
    assert [v.model for v in alone.variants] == [f"{BASE}+exit:layer=10", f"{BASE}+exit:layer=20"]


def test_identity_uses_resolved_parameters():
    from harness.models import resolve_model
    from harness.variant._variant import Variant

    base = resolve_model(BASE)

    def identity(model: str) -> str:
        return Variant(VariantSpec.parse(model), base).identity

    default_group = canonical_text(WRAPPERS.get("quantize").resolve({})["group"])
    assert identity(f"{BASE}+quantize:bits=4") == identity(f"{BASE}+quantize:bits=4,group={default_group}")
    assert identity(f"{BASE}+quantize:bits=4") != identity(f"{BASE}+quantize:bits=8")
    assert identity(f"{BASE}+exit:layer=10") != identity(BASE)
    # order matters: quantize-then-exit is not exit-then-quantize
    assert identity(f"{BASE}+quantize:bits=4+exit:layer=10") != identity(f"{BASE}+exit:layer=10+quantize:bits=4")


def test_bad_wrapper_parameters_fail_at_parse_time():
    with pytest.raises(HarnessError, match="unknown parameter 'bitz' for wrapper quantize"):
        VariantSpec.parse(f"{BASE}+quantize:bitz=4")
    with pytest.raises(HarnessError, match="parameter 'bits' given twice"):
        VariantSpec.parse(f"{BASE}+quantize:bits=4,bits=8")
