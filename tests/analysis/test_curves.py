"""Curves: the axes of `--pareto` on a committed run whose metric names hold commas; the cost facts
a report and a variant page show, bits per parameter checked by hand on a tiny 4-bit Llama."""

from __future__ import annotations

import pytest

from harness.analysis._curves import QUANTIZED_LABEL, cost_facts, parse_pareto, quantized_linear_bits, sweeps
from harness.errors import HarnessError
from harness.records._runs import load_run
from harness.records._schema import AppliedRecord, CostRecord
from tests.helpers import REPO


def test_pareto_axes_resolve_with_commas_in_metric_names():
    run = load_run(REPO / "results" / "20261128T044743Z-27e4ee26")
    a, b = parse_pareto(run, "mgsm_direct/exact_match,flexible-extract,xcopa/acc")
    assert (a.task, a.metric, b.task, b.metric) == ("mgsm_direct", "exact_match,flexible-extract", "xcopa", "acc")
    with pytest.raises(HarnessError, match="no metric 'xcopa/accc'"):
        parse_pareto(run, "xcopa/accc,cost/weight_mb")
    assert sweeps(run) == []


def _tiny_llama():
    """Two decoder layers, hidden 128 (two groups of 64 per row), tied 384 x 128 embeddings."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=384,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


def test_bits_per_parameter_add_up_by_hand_for_a_4_bit_variant():
    from harness.wrappers import WRAPPERS
    from harness.wrappers._cost import measure_cost

    model = _tiny_llama()
    quantize = WRAPPERS.get("quantize")
    applied = quantize.apply(model, None, quantize.resolve({"bits": "4", "group": "64"}))
    facts = dict(cost_facts(measure_cost(model), [AppliedRecord(name="quantize", info=applied.info)]))
    # Per layer: q and o 128x128, k and v 64x128 (2 of 4 heads), gate and up 256x128, down 128x256.
    quantized = 2 * (2 * 128 * 128 + 2 * 64 * 128 + 3 * 256 * 128)
    # Each group of 64 weights: 64 4-bit codes, a 4-bit zero point and a float16 scale.
    per_weight = (64 * 4 + 4 + 16) / 64
    floats = 384 * 128 + (2 * 2 + 1) * 128  # the tied embedding; two norms per layer and the final one, float32
    assert (quantized, per_weight, floats) == (294_912, 4.3125, 49_792)
    assert facts[QUANTIZED_LABEL] == per_weight
    assert facts["whole model: stored bits per parameter"] == pytest.approx((quantized * per_weight + 32 * floats) / (quantized + floats))
    assert facts["whole model: stored bits per parameter"] == pytest.approx(8.3119, abs=1e-4)
    assert facts["parameters (millions)"] == (quantized + floats) / 1e6


def test_only_the_last_quantizer_declares_the_stored_bits_and_a_float_model_has_none():
    first = AppliedRecord(name="quantize", info={"quantized_weights": 100, "stored_bits_per_weight": 8.25})
    second = AppliedRecord(name="quantize", info={"quantized_weights": 100, "stored_bits_per_weight": 4.3125})
    steer = AppliedRecord(name="meandiff", info={"layer": 3})
    assert quantized_linear_bits([first, steer, second]) == (100, 4.3125)
    assert quantized_linear_bits([steer]) is None
    cost = CostRecord(parameters=10, weight_bytes=40, flops_per_token=20.0)
    assert dict(cost_facts(cost, [steer])) == {
        "weight (MB)": 40 / 1e6,
        QUANTIZED_LABEL: None,
        "whole model: stored bits per parameter": 32.0,
        "forward GFLOPs per token": 20 / 1e9,
        "parameters (millions)": 10 / 1e6,
    }
