"""lm-eval's parallel model args reach `--model harness` only to be refused in one clear line."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.lm._harness_lm import HarnessLM


@pytest.mark.parametrize("arg", ["parallelize=True", "device_map=auto", "tensor_parallel_size=2"])
def test_hflm_parallel_args_are_refused_with_the_alternatives(arg):
    with pytest.raises(
        HarnessError,
        match=r"--model harness does not take \w+: a variant runs on one device per process;"
        r" spread a grid with `harness eval --executor ray`",
    ):
        HarnessLM.create_from_arg_string(f"model=smollm2-135m-instruct,{arg}", {"batch_size": 1, "device": "cpu"})
