"""The lm-eval model type: lm-eval's parallel model args are refused in one clear line; a non-finite
log-likelihood is an error naming the variant and task, never an answer cached or a metric."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.lm._harness_lm import HarnessLM


@pytest.mark.parametrize("arg", ["parallelize=True", "device_map=auto", "tensor_parallel_size=2"])
def test_hflm_parallel_args_are_refused_with_the_alternatives(arg):
    with pytest.raises(
        HarnessError,
        match=(
            r"--model harness does not take \w+: a variant runs on one device per process; "
            r"spread a grid with `harness eval --executor ray`"
        ),
    ):
        HarnessLM.create_from_arg_string(f"model=smollm2-135m-instruct,{arg}", {"batch_size": 1, "device": "cpu"})


@pytest.mark.slow  # a tiny Llama with the embedded default's tokenizer
def test_a_nan_log_likelihood_is_refused_naming_the_variant_and_nothing_is_cached(embedded_default, tmp_path):
    from safetensors.torch import load_file, save_file

    from harness.lm._request_cache import RequestCache
    from harness.models import float_folder, resolve_model
    from harness.spec._spec import VariantSpec
    from harness.variant._variant import Variant
    from tests.helpers import request, tiny_llama

    folder = tiny_llama(tmp_path / "broken", float_folder(embedded_default))
    weights = load_file(str(folder / "model.safetensors"))
    weights["model.norm.weight"][:] = float("nan")  # noise in cached weights made every log-likelihood NaN
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    spec = VariantSpec.parse(str(folder))
    cache = RequestCache(tmp_path / "requests", "test", "context")
    lm = HarnessLM(variant=Variant(spec, resolve_model(spec.base)), cache=cache, task_hashes={"t": "config"}, device="cpu")
    with pytest.raises(HarnessError, match=r"broken.* gave a log-likelihood of nan on t: its weights or scores are broken"):
        lm.loglikelihood([request("loglikelihood", "2 + 2 =", " 4"), request("loglikelihood", "2 + 2 =", " 5")])
    assert len(cache) == 0
