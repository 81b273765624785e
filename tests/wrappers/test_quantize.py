"""quantize and dynamic_int8: each variant does what it claims (levels, rounding, bytes, the bit map,
the budget choice, the scores) and nothing else (norms, embeddings, the head, untied inputs).

All on tiny random Llamas built in memory (hidden 128, so every group size divides it, and tied
embeddings as in SmolLM2); the calibration text is the real one, read through a byte tokenizer.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from harness.errors import HarnessError
from harness.wrappers import WRAPPERS, canonical_text
from harness.wrappers._cost import measure_cost
from harness.wrappers._quant import fake_quant
from harness.wrappers._sensitivity import CALIBRATION_FILE, CALIBRATION_TOKENS, WINDOW, choose_widths, damage
from tests.helpers import read_cases

CASES = read_cases("quantize_params.json")
QUANTIZE = WRAPPERS.get("quantize")
DYNAMIC = WRAPPERS.get("dynamic_int8")
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is fastest, and immune to a busy machine's other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(layers: int = 4, hidden: int = 128, intermediate: int = 512, tie: bool = True) -> LlamaForCausalLM:
    """A random Llama; the same weights for the same shape (a fresh config each time)."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=384,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=tie,
        bos_token_id=1,
        eos_token_id=2,
    )
    return LlamaForCausalLM(config).eval()


class ByteTokenizer:
    """Bytes as token ids (the tiny model's vocabulary covers them)."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode("utf-8"))


def quantize(model, **given):
    return QUANTIZE.apply(model, ByteTokenizer(), QUANTIZE.resolve({k: str(v) for k, v in given.items()}))


def decoder_linears(model):
    return [
        (i, name, getattr(layer.self_attn if name.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else layer.mlp, name))
        for i, layer in enumerate(model.model.layers)
        for name in LINEARS
    ]


def groups_of(weight: torch.Tensor, group: int) -> torch.Tensor:
    """[rows, n_groups, group] (group 0: the whole row); the tiny model's widths divide evenly."""
    rows, cols = weight.shape
    size = cols if group == 0 else group
    assert cols % size == 0
    return weight.detach().reshape(rows, cols // size, size)


def distinct_per_group(weight: torch.Tensor, group: int) -> torch.Tensor:
    values = groups_of(weight, group).sort(-1).values
    return (values.diff(dim=-1) != 0).sum(-1) + 1


def not_linear_state(model) -> dict[str, torch.Tensor]:
    """Everything but the decoder's linear weights (and the head, which is tied to the embeddings)."""
    return {k: v for k, v in model.state_dict().items() if not k.endswith(tuple(f"{n}.weight" for n in LINEARS)) and k != "lm_head.weight"}


# ---------------------------------------------------------------------------- levels and rounding


@pytest.mark.parametrize("sym", [False, True])
@pytest.mark.parametrize("group", [0, 32, 64, 128])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_every_group_holds_at_most_its_levels_rounded_to_nearest(bits, group, sym):
    base, model = tiny(), tiny()
    applied = quantize(model, bits=bits, group=group, sym=sym)
    levels = 2**bits - 1 if sym else 2**bits
    tight = groups_of(base.model.layers[0].mlp.down_proj.weight, group).shape[-1] <= levels  # vacuous there
    for (i, name, linear), (_, _, original) in zip(decoder_linears(model), decoder_linears(base), strict=True):
        counts = distinct_per_group(linear.weight, group)
        assert counts.max() <= levels, (i, name)
        tight |= bool((distinct_per_group(original.weight, group) > levels).any())
        # round to nearest: no weight moved more than half a step (plus the float16 rounding of the step)
        w = groups_of(original.weight, group)
        if sym:
            step = w.abs().amax(-1, keepdim=True) / (2 ** (bits - 1) - 1)
        else:
            step = (w.amax(-1, keepdim=True).clamp_min(0) - w.amin(-1, keepdim=True).clamp_max(0)) / (2**bits - 1)
        error = (groups_of(linear.weight, group) - w).abs()
        assert (error <= 0.5 * step + step * 2 ** (bits - 9) + 1e-7).all(), (i, name)
    assert tight, "the bound never bit: the test would pass on the float model"  # 8 bits bite per channel only
    assert applied.info["bits_by_layer"] == [bits] * 4 and applied.info["average_bits"] == bits


def test_symmetric_levels_are_mirrored_and_asymmetric_ones_use_all_codes_both_holding_zero():
    for bits in (2, 3, 4, 8):
        model = tiny(layers=1)
        quantize(model, bits=bits, group=64, sym=True)
        qmax = 2 ** (bits - 1) - 1
        for _, _, linear in decoder_linears(model):
            w = groups_of(linear.weight, 64)
            step = w.abs().amax(-1, keepdim=True) / qmax  # the largest level is qmax steps
            codes = w / step
            assert (codes - codes.round()).abs().max() < 1e-3
            assert codes.round().abs().max() <= qmax  # hence every level's mirror image is a level
    for bits in (2, 3, 4):
        base, model = tiny(layers=1), tiny(layers=1)
        quantize(model, bits=bits, group=64)
        for (_, _, linear), (_, _, original) in zip(decoder_linears(model), decoder_linears(base), strict=True):
            q, w = groups_of(linear.weight, 64), groups_of(original.weight, 64)
            step = ((w.amax(-1, keepdim=True).clamp_min(0) - w.amin(-1, keepdim=True).clamp_max(0)) / (2**bits - 1)).half().float()
            codes = q / step
            assert (codes - codes.round()).abs().max() < 1e-3  # integer multiples of the step: 0 is a level
            assert (codes.round().amax(-1) - codes.round().amin(-1)).max() <= 2**bits - 1
            assert (distinct_per_group(linear.weight, 64) == 2**bits).any()  # all codes used (symmetric: one fewer)
    for sym in (False, True):
        base, model = tiny(layers=1), tiny(layers=1)
        for m in (base, model):
            with torch.no_grad():
                m.model.layers[0].mlp.up_proj.weight[:, ::5] = 0.0
        quantize(model, bits=3, group=32, sym=sym)
        assert (model.model.layers[0].mlp.up_proj.weight[:, ::5] == 0).all()  # exact zeros stay zero


def test_a_ragged_last_group_is_quantized_on_its_own_range():
    weight = torch.randn(3, 192)
    weight[:, 128:] *= 100  # the short last group's range must not leak into the first
    q = fake_quant(weight, 4, 128, False)
    assert distinct_per_group(q[:, :128], 0).max() <= 16 and distinct_per_group(q[:, 128:], 0).max() <= 16
    assert (q[:, :128] - weight[:, :128]).abs().max() < weight[:, :128].abs().max() / 8


# ------------------------------------------------------------------- nothing else is touched


def test_norms_embeddings_and_the_tied_head_are_bit_identical():
    base, model = tiny(), tiny()
    before = not_linear_state(base)
    info = quantize(model, bits=3, group=32).info
    after = not_linear_state(model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert any("norm" in k for k in before) and "model.embed_tokens.weight" in before
    assert model.lm_head.weight is model.model.embed_tokens.weight and model.config.tie_word_embeddings
    assert torch.equal(model.lm_head.weight, base.lm_head.weight)
    assert info["lm_head_bits"] is None
    for (_, _, linear), (_, _, original) in zip(decoder_linears(model), decoder_linears(base), strict=True):
        assert not torch.equal(linear.weight, original.weight)


def test_lm_head_true_unties_first_so_the_input_embeddings_stay_as_they_were():
    base, model = tiny(), tiny()
    info = quantize(model, bits="8@0,4@1-3", group=64, lm_head="true").info
    assert info["lm_head_bits"] == 8  # the widest width in use
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    assert not model.config.tie_word_embeddings
    assert torch.equal(model.model.embed_tokens.weight, base.model.embed_tokens.weight)
    assert not torch.equal(model.lm_head.weight, base.lm_head.weight)
    assert distinct_per_group(model.lm_head.weight, 64).max() <= 256
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():  # inputs embed as before: the first hidden state is unchanged
        assert torch.equal(model.model.embed_tokens(ids), base.model.embed_tokens(ids))
    rest_before, rest_after = not_linear_state(base), not_linear_state(model)
    assert all(torch.equal(rest_before[k], rest_after[k]) for k in rest_before)


# -------------------------------------------------------------------------------- storage cost


def _expected_linear_bytes(rows, cols, bits, group, sym):
    groups = rows * (1 if group == 0 else math.ceil(cols / group))
    return bits * rows * cols / 8 + groups * 2 + (0 if sym else groups * bits / 8)


@pytest.mark.parametrize(
    "bits,group,sym,per_weight",
    [
        (4, 64, False, 0.5 + 2.5 / 64),
        (4, 64, True, 0.5 + 2 / 64),
        (3, 32, False, 3 / 8 + 2.375 / 32),
        (8, 128, True, 1 + 2 / 128),
        (2, 64, True, 0.25 + 2 / 64),
    ],
)
def test_declared_bytes_are_the_codes_plus_a_float16_step_and_a_zero_point_per_group(bits, group, sym, per_weight):
    base, model = tiny(), tiny()
    info = quantize(model, bits=bits, group=group, sym=sym).info
    numel = sum(linear.weight.numel() for _, _, linear in decoder_linears(model))
    for _, _, linear in decoder_linears(model):
        assert linear.harness_weight_bytes == linear.weight.numel() * per_weight
    before, after = measure_cost(base), measure_cost(model)
    assert after.weight_bytes == before.weight_bytes - 4 * numel + numel * per_weight
    assert after.parameters == before.parameters and after.flops_per_token == before.flops_per_token
    assert info["stored_bits_per_weight"] == pytest.approx(8 * per_weight, abs=1e-4)
    assert info["quantized_weights"] == numel


def test_per_channel_and_ragged_group_bytes_and_an_untied_head():
    base, model = tiny(hidden=192, intermediate=384), tiny(hidden=192, intermediate=384)
    quantize(model, bits=4, group=128, lm_head="true")
    expected = 0
    for _, _, linear in decoder_linears(model):
        rows, cols = linear.weight.shape
        assert linear.harness_weight_bytes == _expected_linear_bytes(rows, cols, 4, 128, False)
        expected += linear.harness_weight_bytes
    head = model.lm_head.weight
    assert model.lm_head.harness_weight_bytes == 384 * (192 // 2 + 2 * 2.5)  # 192 columns: groups of 128 and 64
    linear_numel = sum(linear.weight.numel() for _, _, linear in decoder_linears(model))
    cost, base_cost = measure_cost(model), measure_cost(base)
    # the head is its own tensor now: counted once more, at its stored size
    assert cost.parameters == base_cost.parameters + head.numel()
    assert cost.weight_bytes == base_cost.weight_bytes - 4 * linear_numel + expected + model.lm_head.harness_weight_bytes

    model = tiny()
    quantize(model, bits=8, group=0)
    for _, _, linear in decoder_linears(model):
        rows, cols = linear.weight.shape
        assert linear.harness_weight_bytes == rows * cols + 3 * rows  # a step and an 8-bit zero point per row


# ------------------------------------------------------------------------ parameters and maps


@pytest.mark.parametrize("case", CASES["good_bits"], ids=lambda c: c["bits"])
def test_good_bit_values_resolve_to_their_canonical_form(case):
    given = {"bits": case["bits"], **({"budget": case["budget"]} if "budget" in case else {})}
    bits = QUANTIZE.resolve(given)["bits"]
    assert canonical_text(bits) == case["canonical"]
    assert QUANTIZE.resolve({**given, "bits": case["canonical"]})["bits"] == bits
    if "layers" in case:
        widths = bits.per_layer()
        assert len(widths) == case["layers"] == bits.n_layers
        for width, count in case.get("count", {}).items():
            assert widths.count(int(width)) == count


@pytest.mark.parametrize("case", CASES["bad"], ids=lambda c: json.dumps(c["params"]))
def test_every_bad_parameter_is_one_line_at_resolve_time(case):
    with pytest.raises(HarnessError) as error:
        WRAPPERS.get(case.get("wrapper", "quantize")).resolve(case["params"])
    assert str(error.value) == case["error"] and "\n" not in str(error.value)


@pytest.mark.slow
def test_parameters_resolve_without_torch_and_defaults_are_documented():
    code = (
        "import sys, harness.wrappers as w\n"
        "q = w.WRAPPERS.get('quantize')\n"
        "assert q.resolve({}) == {'bits': 4, 'group': 64, 'sym': False, 'lm_head': False, 'budget': None, 'score': 'taylor'}\n"
        "q.resolve({'bits': '3/4/8', 'budget': '4.5', 'score': 'pruning'}); q.resolve({'bits': '8@0-8,4@9-29'})\n"
        "w.WRAPPERS.get('dynamic_int8').resolve({'lm_head': 'true'})\n"
        "print(sorted(m for m in sys.modules if m in ('torch', 'harness.wrappers._quant', 'harness.wrappers._sensitivity')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_map_is_applied_per_layer_and_checked_against_the_model():
    model = tiny()
    info = quantize(model, bits="8@0,4@1-2,2@3", group=32).info
    assert info["bits_by_layer"] == [8, 4, 4, 2] and info["average_bits"] == 4.5 and info["bits_map"] == "8@0,4@1-2,2@3"
    for i, _, linear in decoder_linears(model):
        assert distinct_per_group(linear.weight, 32).max() <= 2 ** info["bits_by_layer"][i]
    assert (distinct_per_group(model.model.layers[0].mlp.down_proj.weight, 32) > 4).any()
    for bits, message in [
        ("8@0-5", "quantize:bits=8@0-5: layers 4-5 out of range: the model has 4 decoder layers (0-3)"),
        ("8@0-4", "quantize:bits=8@0-4: layer 4 out of range: the model has 4 decoder layers (0-3)"),
        ("8@0-1", "quantize:bits=8@0-1: layers 2-3 of the model's 4 decoder layers not covered"),
    ]:
        untouched = tiny()
        with pytest.raises(HarnessError) as error:
            quantize(untouched, bits=bits)
        assert str(error.value) == message
        assert all(torch.equal(a, b) for a, b in zip(untouched.state_dict().values(), tiny().state_dict().values(), strict=True))


# ------------------------------------------------------------------------ budget and sensitivity


@pytest.fixture
def calibration(monkeypatch, tmp_path, data_dir):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_DATA_DIR", str(data_dir))
    return data_dir / CALIBRATION_FILE


def _windows(path: Path, score: str) -> list[torch.Tensor]:
    ids = list(path.read_bytes()[: CALIBRATION_TOKENS[score]])
    return [torch.tensor([ids[i : i + WINDOW]]) for i in range(0, len(ids), WINDOW)]


def _perplexity(model, windows) -> float:
    with torch.no_grad():
        return math.exp(sum(float(model(input_ids=w, labels=w).loss) for w in windows) / len(windows))


def _best_by_search(costs, numels, widths, budget):
    combinations = itertools.product(widths, repeat=len(costs))
    fits = [c for c in combinations if sum(b * n for b, n in zip(c, numels, strict=True)) <= budget * sum(numels) + 1e-9]
    return min(sum(cost[b] for cost, b in zip(costs, c, strict=True)) for c in fits)


def test_taylor_budget_choice_respects_the_budget_is_optimal_deterministic_and_cached(calibration, tmp_path, monkeypatch):
    params = {"bits": "3/4/8", "budget": "5", "score": "taylor"}
    model = tiny(layers=5)
    first = QUANTIZE.apply(model, ByteTokenizer(), QUANTIZE.resolve(params))
    info = first.info
    widths = info["bits_by_layer"]
    assert set(widths) <= {3, 4, 8} and len(set(widths)) > 1
    assert info["average_bits"] <= 5 and info["average_bits"] == sum(widths) / 5
    sha = hashlib.sha256(calibration.read_bytes()).hexdigest()
    assert first.artifacts == {"calibration": sha} == QUANTIZE.artifacts(QUANTIZE.resolve(params))
    assert info["calibration"] == {"file": CALIBRATION_FILE, "sha256": sha, "tokens": CALIBRATION_TOKENS["taylor"], "window": WINDOW}
    assert info["sensitivity_cached"] is False
    json.dumps(info)
    for i, _, linear in decoder_linears(model):
        assert distinct_per_group(linear.weight, 64).max() <= 2 ** widths[i]

    # the score is sum |gradient x quantization error| of the layer's linear weights, per width
    reference = tiny(layers=5)
    windows = _windows(calibration, "taylor")
    for w in windows:
        (reference(input_ids=w, labels=w).loss / len(windows)).backward()
    with torch.no_grad():
        for layer in (0, 4):
            for bits in (3, 4, 8):
                expected = sum(
                    float((lin.weight.grad * (fake_quant(lin.weight, bits, 64, False) - lin.weight)).abs().sum())
                    for i, _, lin in decoder_linears(reference)
                    if i == layer
                )
                assert info["sensitivity"][layer][str(bits)] == pytest.approx(expected, rel=1e-4)
    # the widths minimise the summed score within the budget (exhaustive search agrees)
    costs = damage("taylor", info["sensitivity"], (3, 4, 8))
    assert sum(c[b] for c, b in zip(costs, widths, strict=True)) == pytest.approx(_best_by_search(costs, [1] * 5, (3, 4, 8), 5.0))

    again = QUANTIZE.apply(tiny(layers=5), ByteTokenizer(), QUANTIZE.resolve(params)).info
    assert again["sensitivity_cached"] is True and again["bits_by_layer"] == widths
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "other-cache"))
    fresh = QUANTIZE.apply(tiny(layers=5), ByteTokenizer(), QUANTIZE.resolve(params)).info
    assert fresh["sensitivity_cached"] is False and fresh["bits_by_layer"] == widths
    assert [s[k] for s in fresh["sensitivity"] for k in s] == pytest.approx([s[k] for s in info["sensitivity"] for k in s])
    # another model state is another cache entry
    other = tiny(layers=5)
    with torch.no_grad():
        other.model.layers[2].mlp.up_proj.weight.mul_(1.5)
    assert QUANTIZE.apply(other, ByteTokenizer(), QUANTIZE.resolve(params)).info["sensitivity_cached"] is False


def test_cached_scores_are_keyed_by_the_scoring_code_and_an_edited_entry_is_scored_again(calibration, tmp_path, monkeypatch, capsys):
    from harness.wrappers import _sensitivity

    params = QUANTIZE.resolve({"bits": "4/8", "budget": "6", "score": "pruning"})
    first = QUANTIZE.apply(tiny(layers=3), ByteTokenizer(), params).info
    (entry,) = (tmp_path / "cache" / "quantize").glob("*.json")
    content = json.loads(entry.read_text())
    assert content["key"]["code"] == _sensitivity.code_digest("harness.wrappers._sensitivity") and "torch" in content["key"]["libraries"]
    content["scores"][0] += 5.0  # a plausible edited score
    entry.write_text(json.dumps(content))
    capsys.readouterr()
    again = QUANTIZE.apply(tiny(layers=3), ByteTokenizer(), params).info
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "its content does not match its sha256; scored again" in err, err
    assert again["sensitivity_cached"] is False and again["sensitivity"] == pytest.approx(first["sensitivity"])
    assert QUANTIZE.apply(tiny(layers=3), ByteTokenizer(), params).info["sensitivity_cached"] is True

    monkeypatch.setattr(_sensitivity, "code_digest", lambda *modules: "other code")
    assert QUANTIZE.apply(tiny(layers=3), ByteTokenizer(), params).info["sensitivity_cached"] is False


def test_pruning_score_is_the_perplexity_change_of_pruning_only_that_layer(calibration):
    model = tiny(layers=3)
    info = QUANTIZE.apply(model, ByteTokenizer(), QUANTIZE.resolve({"bits": "4/8", "budget": "6", "score": "pruning"})).info
    windows = _windows(calibration, "pruning")
    reference = tiny(layers=3)
    base = _perplexity(reference, windows)
    assert info["calibration_perplexity"] == pytest.approx(base, rel=1e-4)
    for layer in range(3):
        pruned = tiny(layers=3)
        with torch.no_grad():
            for i, _, linear in decoder_linears(pruned):
                if i == layer:
                    w = linear.weight
                    threshold = w.abs().flatten().kthvalue(w.numel() // 2).values
                    w[w.abs() <= threshold] = 0
        assert info["sensitivity"][layer] == pytest.approx(_perplexity(pruned, windows) - base, rel=1e-4, abs=1e-4)
    widths, scores = info["bits_by_layer"], info["sensitivity"]
    assert sum(widths) / 3 <= 6 and info["sensitivity_cached"] is False
    # estimated damage max(score, 0) * 2^-width, minimised within the budget; wider goes to the more sensitive
    costs = damage("pruning", scores, (4, 8))
    assert sum(c[b] for c, b in zip(costs, widths, strict=True)) == pytest.approx(_best_by_search(costs, [1] * 3, (4, 8), 6.0))
    assert all(scores[i] >= scores[j] for i in range(3) for j in range(3) if widths[i] > widths[j])


def test_choice_is_the_optimum_within_the_budget_for_unequal_layers():
    generator = torch.Generator().manual_seed(3)
    for trial in range(200):
        n = 1 + trial % 5
        widths = [(3, 4, 8), (4, 8), (2, 3, 4, 8)][trial % 3]
        numels = [int(x) for x in torch.randint(1, 4, (n,), generator=generator) * 64]
        costs = [{b: float(torch.rand(1, generator=generator)) * 2.0**-b for b in widths} for _ in range(n)]
        budget = widths[0] + float(torch.rand(1, generator=generator)) * (widths[-1] - widths[0])
        chosen = choose_widths(costs, numels, widths, budget)
        assert sum(b * m for b, m in zip(chosen, numels, strict=True)) <= budget * sum(numels) + 1e-9
        assert sum(c[b] for c, b in zip(costs, chosen, strict=True)) == pytest.approx(_best_by_search(costs, numels, widths, budget))
        assert choose_widths(costs, numels, widths, budget) == chosen


def test_a_missing_calibration_text_is_one_line_before_loading(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    params = QUANTIZE.resolve({"bits": "4/8", "budget": "5"})
    with pytest.raises(HarnessError) as error:
        QUANTIZE.artifacts(params)
    assert str(error.value) == f"quantize:budget needs its calibration text: {tmp_path / CALIBRATION_FILE} is missing"
    assert QUANTIZE.artifacts(QUANTIZE.resolve({"bits": "4"})) == {}


# -------------------------------------------------------------------------------- dynamic int8


def test_dynamic_int8_replaces_the_decoder_linears_and_still_forwards_and_generates():
    base, model = tiny(), tiny()
    info = DYNAMIC.apply(model, None, DYNAMIC.resolve({})).info
    assert info["average_bits"] == 8.0 and info["bits_by_layer"] == [8] * 4 and info["lm_head_bits"] is None
    replaced = [
        m for m in model.modules() if type(m).__name__ == "Linear" and type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")
    ]
    assert len(replaced) == 4 * 7
    assert [n for n, m in model.named_modules() if isinstance(m, nn.Linear)] == ["lm_head"]
    assert model.lm_head.weight is model.model.embed_tokens.weight
    before = base.state_dict()
    after = {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor) and not k.endswith(("scale", "zero_point"))}
    assert all(torch.equal(before[k], v) for k, v in after.items()) and any("norm" in k for k in after)

    ids = torch.randint(3, 384, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = model(ids).logits, base(ids).logits
        assert not torch.equal(ours, theirs)
        assert (ours - theirs).abs().max() < 0.05 * theirs.abs().max()
        assert (ours.argmax(-1) == theirs.argmax(-1)).float().mean() >= 0.9
        mask = torch.ones_like(ids)
        generated = model.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False, min_new_tokens=6, pad_token_id=0)
        reference = base.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False, min_new_tokens=6, pad_token_id=0)
    assert generated.shape == reference.shape == (2, 30)
    assert (generated[:, 24:] == reference[:, 24:]).float().mean() >= 0.5


def test_dynamic_int8_declares_its_packed_weights():
    base, model = tiny(), tiny()
    linear_shapes = [tuple(lin.weight.shape) for _, _, lin in decoder_linears(base)]
    info = DYNAMIC.apply(model, None, DYNAMIC.resolve({"lm_head": "true"})).info
    assert info["lm_head_bits"] == 8 and not model.config.tie_word_embeddings
    assert torch.equal(model.model.embed_tokens.weight, base.model.embed_tokens.weight)
    shapes = [*linear_shapes, (384, 128)]
    numel = sum(r * c for r, c in shapes)
    stored = sum(r * c + 4 * r for r, c in shapes)  # int8 codes + a float32 scale per row
    assert sum(getattr(m, "harness_weight_bytes", 0) for m in model.modules()) == stored
    before, after = measure_cost(base), measure_cost(model)
    assert after.parameters == before.parameters + 384 * 128  # the tied head's packed copy is a tensor of its own
    assert after.weight_bytes == before.weight_bytes - 4 * (numel - 384 * 128) + stored
    assert after.flops_per_token == before.flops_per_token == 2 * numel
    assert info["stored_bits_per_weight"] == pytest.approx(8 * stored / numel, abs=1e-4)


def test_quantize_after_dynamic_int8_is_one_line():
    model = tiny(layers=1)
    DYNAMIC.apply(model, None, DYNAMIC.resolve({}))
    with pytest.raises(HarnessError, match=r"^quantize: decoder layer 0 has no float linear layers \(already quantized\?\)$"):
        quantize(model, bits=4)


def test_symmetric_quantization_of_its_own_output_changes_nothing():
    # the float simulation holds the stored grid exactly (float16 steps included); asymmetric
    # grids need not be fixed points: a rounded zero point can leave an end code unused
    model = tiny(layers=2)
    first = quantize(model, bits=4, group=64, sym=True).info
    weights = [lin.weight.clone() for _, _, lin in decoder_linears(model)]
    second = quantize(model, bits=4, group=64, sym=True).info
    assert first["changed_fraction"] > 0.9 and second["changed_fraction"] == 0
    assert all(torch.equal(a, lin.weight) for a, (_, _, lin) in zip(weights, decoder_linears(model), strict=True))
