"""Merge wrappers: the methods' arithmetic on hand-made tensors, and the wrapper end to end on tiny
randomly initialised Llamas (SmolLM2's tokenizer), never the 135M model."""

from __future__ import annotations

import pytest
import torch

from harness.errors import HarnessError
from harness.wrappers import _merge_methods as m
from harness.wrappers._merge_regmean import solve


def test_task_arithmetic_with_lambda_zero_is_the_base():
    base = torch.randn(5, 3)
    vectors = [torch.randn(5, 3), torch.randn(5, 3)]
    assert torch.equal(m.task_arithmetic(base, vectors, 0.0), base)
    assert torch.allclose(m.task_arithmetic(base, vectors, 0.5), base + 0.5 * (vectors[0] + vectors[1]))


def test_ties_trims_by_magnitude_and_elects_the_sign_of_the_summed_mass():
    assert torch.equal(m.trim(torch.tensor([0.1, -3.0, 2.0, -0.5, 0.2]), 0.4), torch.tensor([0.0, -3.0, 2.0, 0.0, 0.0]))
    a = torch.tensor([3.0, -1.0, 2.0, 0.0])
    b = torch.tensor([-1.0, -2.0, 0.0, 0.0])
    c = torch.tensor([-1.5, 4.0, -2.0, 0.0])
    # entry 0: mass 3 - 2.5 > 0, so only a counts: 3; entry 1: mass +1, only c: 4;
    # entry 2: mass 0, sign 0, nothing agrees: 0; entry 3: nothing kept: 0
    assert torch.equal(m.elect_and_merge([a, b, c]), torch.tensor([3.0, 4.0, 0.0, 0.0]))
    # the disjoint mean averages only the agreeing entries: (2 + 4) / 2, not / 3
    assert torch.equal(m.elect_and_merge([torch.tensor([2.0]), torch.tensor([4.0]), torch.tensor([-1.0])]), torch.tensor([3.0]))
    base = torch.zeros(4)
    merged = m.ties(base, [a.double(), b.double(), c.double()], density=0.5, lam=1.0)
    # trimmed to two entries each: a [3, 0, 2, 0], b [-1, -2, 0, 0], c [0, 4, -2, 0]; entry 2 ties at 0
    assert torch.equal(merged, torch.tensor([3.0, 4.0, 0.0, 0.0]))


def test_dare_rescaling_keeps_the_expected_value():
    vector = torch.linspace(-1, 1, 1000, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([m.drop_and_rescale(vector, 0.9, generator) for _ in range(2000)])
    kept = (draws != 0).double().mean()
    assert abs(kept - 0.1) < 0.005
    # each entry's mean over 2,000 draws: standard error sqrt(0.9/0.1 / 2000) |v| = 0.067 |v|
    error = (draws.mean(0) - vector).abs() / (vector.abs() * (9 / 2000) ** 0.5)
    assert error.max() < 5 and error.mean() < 1.0
    again = torch.Generator().manual_seed(0)
    assert torch.equal(m.drop_and_rescale(vector, 0.9, again), draws[0])


def test_regmean_with_identical_grams_is_the_average():
    x = torch.randn(50, 6, dtype=torch.float64)
    gram = x.T @ x
    weights = [torch.randn(4, 6, dtype=torch.float64) for _ in range(3)]
    for alpha in (0.0, 0.5, 1.0):
        merged, pinv = solve(weights, [gram, gram, gram], alpha)
        assert not pinv
        assert torch.allclose(merged, sum(weights) / 3, atol=1e-10)


def test_regmean_recovers_the_least_squares_solution_of_a_toy_regression():
    torch.manual_seed(0)
    xs = [torch.randn(40, 5, dtype=torch.float64), torch.randn(30, 5, dtype=torch.float64) * 3]
    weights = [torch.randn(2, 5, dtype=torch.float64) for _ in xs]
    merged, _ = solve(weights, [x.T @ x for x in xs], alpha=1.0)
    inputs = torch.cat(xs)
    targets = torch.cat([x @ w.T for x, w in zip(xs, weights, strict=True)])
    closed = torch.linalg.lstsq(inputs, targets).solution.T
    assert torch.allclose(merged, closed, atol=1e-9)


def test_regmean_falls_back_to_the_pseudo_inverse_when_a_direction_is_unseen():
    x = torch.randn(20, 4, dtype=torch.float64)
    x[:, 3] = 0  # no input reaches the last feature
    weights = [torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)]
    merged, pinv = solve(weights, [x.T @ x, x.T @ x], alpha=1.0)
    assert pinv
    assert torch.allclose(merged[:, :3], ((weights[0] + weights[1]) / 2)[:, :3], atol=1e-9)
    assert torch.equal(merged[:, 3], torch.zeros(3, dtype=torch.float64))  # the minimum-norm solution


# --- the wrapper, end to end on tiny models -------------------------------------------------------


def _tiny(folder, tokenizer_folder, seed: int, intermediate: int = 64):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=intermediate,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _finetuned(folder, out, seed: int):
    """`folder`'s model with every decoder weight moved a little and its embeddings kept, as an
    expert is fine-tuned."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(folder)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.model.layers.parameters():
            parameter.add_(0.02 * torch.randn(parameter.shape, generator=generator))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder).save_pretrained(out)
    return out


@pytest.fixture
def tiny(embedded_default, tmp_path):
    from harness.models import float_folder

    source = float_folder(embedded_default)
    calibration = tmp_path / "calibration.txt"
    calibration.write_text("\n".join(f"Q: What is {i} plus {i + 3}? A: {2 * i + 3}" for i in range(40)) + "\n")
    return {
        "a": _tiny(tmp_path / "a", source, 0),
        "b": _finetuned(tmp_path / "a", tmp_path / "b", 1),
        "wide": _tiny(tmp_path / "wide", source, 2, intermediate=96),
        "calibration": calibration,
    }


def _weights(folder) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def _build(model_string: str):
    from harness.models import resolve_model
    from harness.spec._spec import VariantSpec
    from harness.variant._variant import Variant

    spec = VariantSpec.parse(model_string)
    variant = Variant(spec, resolve_model(spec.base))
    return variant, variant.load("cpu")


METHOD_ARGS = {
    "linear": "",
    "task_arithmetic": "",
    "ties": "",
    "dare": ",p=0.5",
    "regmean": ",calibration={c};{c},calibration_examples=20",
    "regmean_pp": ",calibration={c};{c},calibration_examples=20",
}


@pytest.mark.parametrize("method", list(METHOD_ARGS))
def test_merging_a_model_with_itself_returns_it(tiny, method):
    a = tiny["a"]
    extra = METHOD_ARGS[method].format(c=tiny["calibration"])
    variant, built = _build(f"{a}+merge:method={method},sources={a};{a}{extra}")
    original = _weights(a)
    for name, merged in built.model.named_parameters():
        assert torch.allclose(merged, original[name], atol=1e-5), name
    record = variant.intervention.wrappers[0]
    assert set(record.artifacts) >= {f"source0:{a}", f"source1:{a}"}
    assert ("calibration0" in record.artifacts) == method.startswith("regmean")


def test_regmean_pp_sees_the_merged_earlier_layers_and_the_merge_is_cached(tiny):
    a, b, c = tiny["a"], tiny["b"], tiny["calibration"]
    merged = {}
    for method in ("regmean", "regmean_pp"):
        _, built = _build(f"{a}+merge:method={method},sources={a};{b},calibration={c};{c},calibration_examples=20")
        merged[method] = dict(built.model.named_parameters())
        assert built.applied[0][1].info["from_cache"] is False
    first = "model.layers.0.self_attn.q_proj.weight"
    later = "model.layers.1.mlp.down_proj.weight"
    # layer 0 sees the same inputs either way (the sources share the base's embeddings); layer 1
    # sees the merged layer 0's outputs under ++
    assert torch.allclose(merged["regmean"][first], merged["regmean_pp"][first], atol=1e-5)
    assert not torch.allclose(merged["regmean"][later], merged["regmean_pp"][later], atol=1e-4)
    # embeddings stay the base's
    assert torch.equal(merged["regmean"]["model.embed_tokens.weight"], _weights(a)["model.embed_tokens.weight"])
    _, again = _build(f"{a}+merge:method=regmean_pp,sources={a};{b},calibration={c};{c},calibration_examples=20")
    assert again.applied[0][1].info["from_cache"] is True
    for name, parameter in again.model.named_parameters():
        assert torch.equal(parameter, merged["regmean_pp"][name]), name


def test_a_source_of_another_shape_fails_in_one_line_naming_the_parameter(tiny):
    a, wide = tiny["a"], tiny["wide"]
    with pytest.raises(HarnessError, match=r"differs at model\.layers\.0\.mlp\.gate_proj\.weight: shape \[96, 32\], the base's \[64, 32\]"):
        _build(f"{a}+merge:method=linear,sources={a};{wide}")


def test_bad_merge_specs_fail_before_loading(tiny):
    a = tiny["a"]
    for text, message in (
        (f"{a}+merge:sources={a};{a}", "merge needs method="),
        (f"{a}+merge:method=ties,sources={a}", "two or more model strings"),
        (f"{a}+merge:method=ties,sources={a};expert:arithmatic", "did you mean arithmetic"),
        (f"{a}+merge:method=linear,sources={a};{a},weights=0.3;0.3", "sum to 1"),
        (f"{a}+merge:method=regmean,sources={a};{a}", "is not an expert"),
    ):
        with pytest.raises(HarnessError, match=message):
            _build(text)
