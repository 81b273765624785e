"""Run specs: model strings parse (and bad wrapper parameters fail) before anything loads, sweeps
expand in order, and a sweep becomes distinct variants with their base first."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.models import CATALOG, DEFAULT_MODEL
from harness.spec._spec import VariantSpec, build_spec, expand_sweeps

BASE = "smollm2-135m-instruct"


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


def test_bad_wrapper_parameters_fail_at_parse_time():
    with pytest.raises(HarnessError, match="unknown parameter 'bitz' for wrapper quantize"):
        VariantSpec.parse(f"{BASE}+quantize:bitz=4")
    with pytest.raises(HarnessError, match="parameter 'bits' given twice"):
        VariantSpec.parse(f"{BASE}+quantize:bits=4,bits=8")


def test_model_strings_parse_before_anything_loads():
    spec = VariantSpec.parse(DEFAULT_MODEL)
    assert spec.base == DEFAULT_MODEL and spec.wrappers == ()
    with pytest.raises(HarnessError, match="expected hf:ORG/NAME"):
        VariantSpec.parse("hf:nothing")
    with pytest.raises(HarnessError, match="did you mean smollm2-135m-instruct"):
        VariantSpec.parse("smollm2-135m-instuct")
    assert DEFAULT_MODEL in CATALOG.names()
