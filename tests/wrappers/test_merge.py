"""Merge wrappers: the methods' arithmetic on hand-made tensors, RegMean and RegMean++ against hand
computations on toy decoders, and the wrapper end to end on tiny randomly initialised Llamas
(SmolLM2's tokenizer), never the 135M model."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from harness.errors import HarnessError
from harness.wrappers import _merge_methods as m
from harness.wrappers._merge_regmean import regmean, regmean_pp, solve


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


# --- RegMean and RegMean++ against hand computations on toy decoders ------------------------------


class _ToyLayer(nn.Module):
    """A decoder layer of one linear map and a tanh, returning a tuple as Hugging Face layers do."""

    def __init__(self, width: int):
        super().__init__()
        self.proj = nn.Linear(width, width, bias=False)

    def forward(self, hidden: torch.Tensor, **kwargs) -> tuple[torch.Tensor]:
        return (torch.tanh(self.proj(hidden)),)


class _ToyDecoder(nn.Module):
    def __init__(self, vocab: int, width: int, depth: int):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, width)
        self.layers = nn.ModuleList(_ToyLayer(width) for _ in range(depth))
        self.norm = nn.LayerNorm(width)

    def forward(self, input_ids: torch.Tensor, use_cache: bool = False) -> torch.Tensor:
        hidden = self.embed_tokens(input_ids)
        for layer in self.layers:
            hidden = layer(hidden)[0]
        return self.norm(hidden)


class _Toy(nn.Module):
    """A causal LM's shape as RegMean finds it: the decoder at `.model`, its layers and final norm."""

    def __init__(self, vocab: int = 40, width: int = 4, depth: int = 1):
        super().__init__()
        self.model = _ToyDecoder(vocab, width, depth)


def _toy_sources(depth: int) -> tuple[_Toy, list[_Toy]]:
    """A toy base and two sources whose layers and norms moved from it (embeddings kept, as an
    expert's are)."""
    torch.manual_seed(0)
    base = _Toy(depth=depth)
    sources = []
    for seed in (1, 2):
        source = copy.deepcopy(base)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in [*source.model.layers.parameters(), *source.model.norm.parameters()]:
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
        sources.append(source)
    return base, sources


def _toy_rows() -> list[torch.Tensor]:
    """Each source's calibration rows: 10 tokens from one part of the vocabulary, 40 from another."""
    generator = torch.Generator().manual_seed(3)
    return [torch.randint(0, 20, (2, 5), generator=generator), torch.randint(20, 40, (8, 5), generator=generator)]


def _hand_regmean(weights: list[torch.Tensor], inputs: list[torch.Tensor], alpha: float, mean: bool) -> torch.Tensor:
    """The paper's closed form, W^T = (sum_i G_i)^-1 sum_i G_i W_i^T, with G_i = X_i^T X_i divided by
    X_i's row count when `mean`, its off-diagonal entries scaled by alpha; in float64."""
    grams = []
    for x in inputs:
        x = x.double().reshape(-1, x.shape[-1])
        gram = x.T @ x / (len(x) if mean else 1)
        grams.append(alpha * gram + (1 - alpha) * torch.diag(torch.diagonal(gram)))
    right = sum(g @ w.double().T for g, w in zip(grams, weights, strict=True))
    return torch.linalg.solve(sum(grams), right).T


def _merged(method, base: _Toy, sources: list[_Toy], rows: list[torch.Tensor], alpha: float, normalise: bool) -> _Toy:
    model = copy.deepcopy(base)
    info = method(model, sources, rows, alpha, 3, normalise=normalise)  # batches of 3 rows: Grams summed over calls
    assert info == {"pinv_fallbacks": 0}
    return model


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_regmean_divides_each_sources_gram_by_its_token_count(alpha):
    base, sources = _toy_sources(depth=1)
    rows = _toy_rows()
    n1, n2 = (r.numel() for r in rows)
    assert (n1, n2) == (10, 40)
    weights = [s.model.layers[0].proj.weight.detach() for s in sources]
    with torch.no_grad():
        inputs = [s.model.embed_tokens(r) for s, r in zip(sources, rows, strict=True)]  # each source's own inputs to the layer
    x1, x2 = (x.double().reshape(-1, 4) for x in inputs)
    if alpha == 1.0:  # the brief's closed form, written out: (G1/n1 + G2/n2)^-1 (G1/n1 W1^T + G2/n2 W2^T)
        g1, g2 = x1.T @ x1 / n1, x2.T @ x2 / n2
        closed = torch.linalg.solve(g1 + g2, g1 @ weights[0].double().T + g2 @ weights[1].double().T).T
        torch.testing.assert_close(closed, _hand_regmean(weights, inputs, alpha, mean=True))
    mean = _hand_regmean(weights, inputs, alpha, mean=True)
    summed = _hand_regmean(weights, inputs, alpha, mean=False)
    assert (mean - summed).abs().max() > 0.01  # with 10 against 40 tokens the two forms part

    normalised = _merged(regmean, base, sources, rows, alpha, normalise=True)
    torch.testing.assert_close(normalised.model.layers[0].proj.weight.double(), mean, atol=1e-5, rtol=1e-5)
    unnormalised = _merged(regmean, base, sources, rows, alpha, normalise=False)
    torch.testing.assert_close(unnormalised.model.layers[0].proj.weight.double(), summed, atol=1e-5, rtol=1e-5)
    # the final norm, not a linear layer, is the sources' average; the embeddings stay the base's
    for merged in (normalised, unnormalised):
        average = (sources[0].model.norm.weight + sources[1].model.norm.weight) / 2
        torch.testing.assert_close(merged.model.norm.weight, average)
        assert torch.equal(merged.model.embed_tokens.weight, base.model.embed_tokens.weight)


def test_with_equal_token_counts_the_two_gram_forms_agree():
    base, sources = _toy_sources(depth=1)
    first, second = _toy_rows()
    # 10 tokens each, from different parts of the vocabulary, in 2 rows of 5 and in 5 rows of 2
    rows = [first, second.flatten()[:10].view(5, 2)]
    forms = [_merged(regmean, base, sources, rows, 0.5, normalise=n).model.layers[0].proj.weight for n in (True, False)]
    torch.testing.assert_close(forms[0], forms[1], atol=1e-6, rtol=1e-6)


def test_regmean_pp_takes_the_second_layers_inputs_from_the_merged_first_layer():
    base, sources = _toy_sources(depth=2)
    rows = _toy_rows()
    alpha = 0.5
    first = [s.model.layers[0].proj.weight.detach().double() for s in sources]
    second = [s.model.layers[1].proj.weight.detach() for s in sources]
    with torch.no_grad():
        # RegMean++ feeds every source's data through the model being merged: the base's embeddings
        embedded = [base.model.embed_tokens(r).double() for r in rows]
    merged_first = _hand_regmean(first, embedded, alpha, mean=True)
    # the second layer's inputs: each source's data through the MERGED first layer ...
    through_merged = [torch.tanh(x @ merged_first.T) for x in embedded]
    expected = _hand_regmean(second, through_merged, alpha, mean=True)
    # ... where plain RegMean takes them through each source's own first layer
    through_own = [torch.tanh(x @ w.T) for x, w in zip(embedded, first, strict=True)]
    plain = _hand_regmean(second, through_own, alpha, mean=True)
    assert (expected - plain).abs().max() > 0.01

    merged = _merged(regmean_pp, base, sources, rows, alpha, normalise=True)
    torch.testing.assert_close(merged.model.layers[0].proj.weight.double(), merged_first, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(merged.model.layers[1].proj.weight.double(), expected, atol=1e-5, rtol=1e-5)
    # and plain RegMean, on the same model, is the other hand computation
    torch.testing.assert_close(
        _merged(regmean, base, sources, rows, alpha, normalise=True).model.layers[1].proj.weight.double(), plain, atol=1e-5, rtol=1e-5
    )


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
    longer = tmp_path / "longer.txt"  # another source's data, with about three times the tokens
    longer.write_text("\n".join(f"The premise {i} was said twice, so the effect of it is {i % 7}." for i in range(90)) + "\n")
    return {
        "a": _tiny(tmp_path / "a", source, 0),
        "b": _finetuned(tmp_path / "a", tmp_path / "b", 1),
        "c": _finetuned(tmp_path / "a", tmp_path / "c", 2),
        "wide": _tiny(tmp_path / "wide", source, 2, intermediate=96),
        "calibration": calibration,
        "longer": longer,
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
@pytest.mark.slow
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


@pytest.mark.slow
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


# Each tensor method with its documented defaults, written out: equal weights; task arithmetic's
# lam 0.4; TIES' density 0.2 and lam 1; DARE's p 0.9 and seed 0, then task arithmetic (lam 0.4) or,
# with dare_base=ties, TIES (density 0.2, lam 1). DARE draws its masks from one generator seeded
# once, parameter by parameter in the model's order, source by source.
def _by_hand(method: str, base: dict, sources: list[dict], names: list[str], dare_base: str = "task_arithmetic") -> dict:
    generator = torch.Generator().manual_seed(0)
    expected = {}
    for name in names:
        a = base[name].double()
        vectors = [s[name].double() - a for s in sources]
        if method == "linear":
            merged = (sources[0][name].double() + sources[1][name].double()) / 2
        elif method == "task_arithmetic":
            merged = a + 0.4 * (vectors[0] + vectors[1])
        elif method == "ties":
            merged = a + 1.0 * m.elect_and_merge([m.trim(v, 0.2) for v in vectors])
        else:
            dropped = [m.drop_and_rescale(v, 0.9, generator) for v in vectors]
            if dare_base == "ties":
                merged = a + 1.0 * m.elect_and_merge([m.trim(v, 0.2) for v in dropped])
            else:
                merged = a + 0.4 * (dropped[0] + dropped[1])
        expected[name] = merged.float()
    return expected


@pytest.mark.slow
@pytest.mark.parametrize(
    "method,extra,lam",
    [
        ("linear", "", None),
        ("task_arithmetic", "", 0.4),
        ("ties", "", 1.0),
        ("dare", "", 0.4),
        ("dare", ",dare_base=ties", 1.0),
    ],
)
def test_each_tensor_method_with_its_defaults_is_its_formula_on_experts_that_moved(tiny, method, extra, lam):
    a, b, c = tiny["a"], tiny["b"], tiny["c"]
    _, built = _build(f"{a}+merge:method={method},sources={b};{c}{extra}")
    info = built.applied[0][1].info
    assert info.get("lam") == lam
    merged = dict(built.model.named_parameters())
    base, sources = _weights(a), [_weights(b), _weights(c)]
    moved = [name for name in merged if not torch.equal(sources[0][name], base[name])]
    assert moved == [name for name in merged if ".layers." in name]  # the experts moved every decoder weight, only those
    expected = _by_hand(method, base, sources, list(merged), dare_base="ties" if extra else "task_arithmetic")
    for name, parameter in merged.items():
        torch.testing.assert_close(parameter, expected[name], rtol=0, atol=1e-6, msg=name)
    # the merge is neither the base nor a source
    name = moved[0]
    assert not torch.allclose(merged[name], base[name], atol=1e-4)
    assert not any(torch.allclose(merged[name], s[name], atol=1e-4) for s in sources)


def _linear_inputs(folder, rows: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every decoder linear layer's inputs, by parameter name, in a forward pass of `rows` through
    the model in `folder` (as a source sees its own data under RegMean)."""
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(folder).eval()
    seen: dict[str, list[torch.Tensor]] = {}
    handles = [
        layer.register_forward_pre_hook(lambda module, args, name=name: seen.setdefault(f"{name}.weight", []).append(args[0].detach()))
        for name, layer in model.named_modules()
        if isinstance(layer, nn.Linear) and ".layers." in name
    ]
    with torch.no_grad():
        model(rows)
    for handle in handles:
        handle.remove()
    return {name: torch.cat(found) for name, found in seen.items()}


@pytest.mark.slow
def test_regmean_by_default_weighs_sources_by_their_data_not_their_token_counts(tiny):
    from transformers import AutoTokenizer

    from harness.wrappers.merge import _rows

    a, b, c = tiny["a"], tiny["b"], tiny["c"]
    files = [tiny["calibration"], tiny["longer"]]
    tokenizer = AutoTokenizer.from_pretrained(a)
    rows = [_rows(tokenizer, [line for line in f.read_text().splitlines() if line]) for f in files]
    inputs = [_linear_inputs(folder, r) for folder, r in zip((b, c), rows, strict=True)]
    sources = [_weights(b), _weights(c)]
    spec = f"{a}+merge:method=regmean,sources={b};{c},calibration={files[0]};{files[1]}"
    merged = {}
    for gram in ("", ",gram=sum"):
        _, built = _build(spec + gram)
        tokens = built.applied[0][1].info["calibration_tokens"]
        assert tokens == [r.numel() for r in rows] and tokens[1] > 2 * tokens[0]
        merged[gram] = dict(built.model.named_parameters())
    assert set(inputs[0]) == {name for name in merged[""] if ".layers." in name and "proj" in name}
    for name in inputs[0]:
        weights = [s[name] for s in sources]
        mean = _hand_regmean(weights, [x[name] for x in inputs], 0.5, mean=True)
        summed = _hand_regmean(weights, [x[name] for x in inputs], 0.5, mean=False)
        assert (mean - summed).abs().max() > 1e-3, name
        torch.testing.assert_close(merged[""][name].double(), mean, rtol=1e-4, atol=1e-5, msg=name)
        torch.testing.assert_close(merged[",gram=sum"][name].double(), summed, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.slow
def test_a_source_of_another_shape_fails_in_one_line_naming_the_parameter(tiny):
    a, wide = tiny["a"], tiny["wide"]
    with pytest.raises(HarnessError, match=r"differs at model\.layers\.0\.mlp\.gate_proj\.weight: shape \[96, 32\], the base's \[64, 32\]"):
        _build(f"{a}+merge:method=linear,sources={a};{wide}")


@pytest.mark.slow
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


@pytest.mark.slow
def test_merged_weights_are_keyed_by_the_merge_code_and_an_edited_file_is_merged_again(tiny, monkeypatch, capsys):
    import os

    from harness._util.paths import cache_dir
    from harness.wrappers import merge

    a, b = tiny["a"], tiny["b"]
    model = f"{a}+merge:method=linear,sources={a};{b}"
    _, first = _build(model)
    assert first.applied[0][1].info["from_cache"] is False
    (cached,) = (cache_dir() / "merges").glob("*.safetensors")
    facts = json.loads(cached.with_name(cached.name + ".json").read_text())
    assert facts["weights_sha256"] == merge.fresh_sha256(cached)

    before = cached.stat()
    with open(cached, "r+b") as f:  # noise in the weights, the size kept and the mtime put back
        f.seek(before.st_size // 2)
        f.write(b"\xff" * 64)
    os.utime(cached, ns=(before.st_atime_ns, before.st_mtime_ns))
    capsys.readouterr()
    _, again = _build(model)
    assert again.applied[0][1].info["from_cache"] is False
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("harness:")]  # not the loaders' progress
    assert len(said) == 1 and said[0].endswith("its weights differ from their recorded sha256; merged again"), said
    for name, parameter in again.model.named_parameters():
        assert torch.equal(parameter, dict(first.model.named_parameters())[name]), name
    _, third = _build(model)
    assert third.applied[0][1].info["from_cache"] is True

    monkeypatch.setattr(merge, "code_digest", lambda *modules: "other code")
    _, edited = _build(model)
    assert edited.applied[0][1].info["from_cache"] is False  # other merge code: not the cached weights
