"""MLP-unit wrappers (aura, clamp) and neuron decoding (top_neuron_tokens) do what they claim.

Tiny random Llamas built in memory (hidden size 32, 64 neurons per layer) with a stand-in tokenizer
(token ids written as numbers), a tiny Llama saved as a folder for fit-on-first-use through
Variant, and the embedded default for the dog neuron.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

from harness.errors import HarnessError
from harness.spec._spec import VariantSpec
from harness.wrappers import WRAPPERS
from harness.wrappers.units import PROJECTIONS, auroc, factors, max_pooled, top_neuron_tokens

BASE = "smollm2-135m-instruct"
DEPTH = 3


def _tiny(depth: int = DEPTH, vocab: int = 256):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=depth,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config).eval()


class _NumberTokenizer:
    """Texts are token ids written out ("5 17 3"); tokens decode to "t<id>"."""

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": self.encode(text)}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [int(piece.removeprefix("t")) for piece in text.split()]

    def decode(self, ids: list[int]) -> str:
        return " ".join(f"t{i}" for i in ids)


def _resolve(model_string_params: str) -> tuple[str, dict]:
    ((name, params),) = VariantSpec.parse(f"{BASE}+{model_string_params}").resolved()
    return name, params


def _scores(model, seed: int = 3) -> dict[str, torch.Tensor]:
    """An AUROC per unit of `model`, some above and some below 0.5, with exact 0.5s among them."""
    generator = torch.Generator().manual_seed(seed)
    scores = {}
    for i, layer in enumerate(model.model.layers):
        for name in PROJECTIONS:
            values = torch.rand(getattr(layer.mlp, name).out_features, generator=generator)
            values[::7] = 0.5
            scores[f"layers.{i}.{name}"] = values
    return scores


def _artifact(tmp_path, scores) -> str:
    from safetensors.torch import save_file

    path = tmp_path / "aura.safetensors"
    save_file(scores, str(path))
    return str(path)


# --- parameters ------------------------------------------------------------------------------------


def test_parameters_are_checked_when_the_spec_is_parsed():
    name, params = _resolve("aura:mode=damp,k=100")
    assert name == "aura" and params["mode"] == "damp" and params["k"] == 100 and params["n"] is None
    assert _resolve("aura")[1] == {"mode": "aura", "k": None, "n": None, "tokens": None, "artifact": None}
    assert _resolve("clamp:layer=29,neuron=808,value=30")[1] == {"layer": 29, "neuron": 808, "value": 30.0}
    for bad, says in [
        ("aura:mode=zero", "must be one of aura, damp, det0"),
        ("aura:mode=damp,k=0", "must be >= 1"),
        ("aura:k=10", "mode=aura dampens by AUROC and takes no k"),
        ("aura:n=1", "must be >= 2"),
        ("aura:tokens=0", "must be >= 1"),
        ("aura:alpha=0.5", "unknown parameter 'alpha'"),
        ("clamp:layer=2,neuron=3", "needs value="),
        ("clamp:layer=-1,neuron=3,value=1", "must be >= 0"),
        ("clamp:layer=2,neuron=3,value=nan", "must be a finite number"),
    ]:
        with pytest.raises(HarnessError, match=says):
            VariantSpec.parse(f"{BASE}+{bad}").resolved()


# --- aura: AUROC and factors -----------------------------------------------------------------------


def test_auroc_is_sklearns_with_ties():
    from sklearn.metrics import roc_auc_score

    generator = torch.Generator().manual_seed(0)
    responses = torch.randint(0, 6, (40, 50), generator=generator).float()  # many ties
    responses[:15, 0] += 10  # a perfect unit
    positive = torch.arange(40) < 15
    ours = auroc(responses, positive)
    theirs = roc_auc_score(positive[:, None].repeat(1, 50).numpy(), responses.numpy(), average=None)
    torch.testing.assert_close(ours, torch.tensor(theirs, dtype=torch.float32), rtol=0, atol=1e-6)
    assert ours[0] == 1.0


def test_factors_follow_the_formula_and_damp_det0_take_exactly_k():
    scores = _scores(_tiny())
    every = torch.cat(list(scores.values()))
    aura = torch.cat(list(factors(scores, "aura", None).values()))
    above = every > 0.5
    assert torch.equal(aura[above], 1 - 2 * (every[above] - 0.5))
    assert torch.equal(aura[~above], torch.ones(int((~above).sum())))
    assert (every == 0.5).any()  # exactly 0.5 is not dampened
    for mode, factor in [("damp", 0.5), ("det0", 0.0)]:
        alpha = torch.cat(list(factors(scores, mode, 37).values()))
        touched = alpha != 1
        assert int(touched.sum()) == 37 and set(alpha[touched].tolist()) == {factor}
        assert every[touched].min() >= every[~touched].max()  # the 37 best by AUROC
        everything = torch.cat(list(factors(scores, mode, None).values()))
        assert torch.equal(everything != 1, above)
    with pytest.raises(HarnessError, match=f"the model has {every.numel()} MLP units"):
        factors(scores, "damp", every.numel() + 1)


def test_max_pooled_is_each_texts_own_max_whatever_the_batching():
    """Padding is masked and rows come back in the texts' order (lengths 1-12, more than a batch)."""
    model = _tiny()
    generator = torch.Generator().manual_seed(2)
    texts = [torch.randint(3, 256, (int(n),), generator=generator).tolist() for n in torch.randint(1, 13, (37,), generator=generator)]
    pooled = max_pooled(model, texts)
    seen = {}
    mlp = model.model.layers[1].mlp
    handle = mlp.up_proj.register_forward_hook(lambda m, a, out: seen.update(out=out))
    with torch.no_grad():
        for row, text in enumerate(texts):
            model(torch.tensor([text]))
            torch.testing.assert_close(pooled["layers.1.up_proj"][row], seen["out"][0].amax(0), rtol=1e-5, atol=1e-6)
    handle.remove()
    assert set(pooled) == {f"layers.{i}.{p}" for i in range(DEPTH) for p in PROJECTIONS}
    assert pooled["layers.2.down_proj"].shape == (37, 32) and pooled["layers.0.gate_proj"].shape == (37, 64)


def test_a_unit_that_reads_the_toxic_token_gets_auroc_one():
    """A toy whose up_proj unit 5 in layer 0 reads one embedding direction that only token 7 has."""
    model = _tiny()
    with torch.no_grad():
        embeddings = model.model.embed_tokens.weight
        embeddings[:, 0] = 0
        embeddings[7] = 0
        embeddings[7, 0] = 1.0
        model.model.layers[0].mlp.up_proj.weight[5] = 0
        model.model.layers[0].mlp.up_proj.weight[5, 0] = 1.0
    generator = torch.Generator().manual_seed(4)
    plain = [[int(t) for t in torch.randint(8, 256, (6,), generator=generator)] for _ in range(40)]
    toxic = [[*ids[:3], 7, *ids[3:]] for ids in plain[:20]]
    pooled = max_pooled(model, toxic + plain[20:])
    scores = auroc(pooled["layers.0.up_proj"], torch.arange(40) < 20)
    assert scores[5] == 1.0 and scores.argmax() == 5


class _WordTokenizer:
    """One token per whitespace-separated word, its id the word's length."""

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": [len(word) for word in text.split()]}


def test_the_fit_reads_the_first_n_sentences_or_those_with_enough_tokens_cut_to_them(monkeypatch, data_dir):
    from harness.wrappers import _concept_data
    from harness.wrappers.units import _sentences

    monkeypatch.setenv("HARNESS_DATA_DIR", str(data_dir))
    every = _concept_data.sentences("nontoxic")
    assert len(_sentences(_WordTokenizer(), "nontoxic", 30, None)) == 30
    assert len(_sentences(_WordTokenizer(), "nontoxic", None, None)) == len(every)
    cut = _sentences(_WordTokenizer(), "nontoxic", 30, 12)
    long_enough = [text for text in every if len(text.split()) >= 12]
    assert len(long_enough) > 30
    assert cut == [[len(word) for word in text.split()[:12]] for text in long_enough[:30]]
    assert len(_sentences(_WordTokenizer(), "nontoxic", None, 12)) == len(long_enough)
    with pytest.raises(HarnessError, match="aura:tokens=1000: only 0 toxic ToxiGen sentences have that many"):
        _sentences(_WordTokenizer(), "toxic", None, 1000)


# --- aura: apply -----------------------------------------------------------------------------------


def _projection_inputs(model) -> dict[str, torch.Tensor]:
    """Each projection's input in one forward pass (keyed like the artifact)."""
    seen = {}
    handles = [
        getattr(layer.mlp, name).register_forward_hook(lambda m, a, out, key=f"layers.{i}.{name}": seen.update({key: a[0]}))
        for i, layer in enumerate(model.model.layers)
        for name in PROJECTIONS
    ]
    with torch.no_grad():
        model(torch.randint(3, 256, (2, 9), generator=torch.Generator().manual_seed(1)))
    for handle in handles:
        handle.remove()
    return seen


@pytest.mark.parametrize("spec", ["aura", "aura:mode=damp,k=40", "aura:mode=det0,k=40"])
def test_aura_scales_each_unit_by_its_factor_and_leaves_the_rest(tmp_path, spec):
    base = _tiny()
    scores = _scores(base)
    name, params = _resolve(spec)
    model = copy.deepcopy(base)
    applied = WRAPPERS.get(name).apply(model, None, {**params, "artifact": _artifact(tmp_path, scores)})
    alpha = factors(scores, params["mode"], params["k"])
    inputs = _projection_inputs(model)
    for i, (old, new) in enumerate(zip(base.model.layers, model.model.layers, strict=True)):
        for projection in PROJECTIONS:
            key = f"layers.{i}.{projection}"
            untouched = alpha[key] == 1
            assert torch.equal(getattr(new.mlp, projection).weight[untouched], getattr(old.mlp, projection).weight[untouched])
            with torch.no_grad():
                before, after = getattr(old.mlp, projection)(inputs[key]), getattr(new.mlp, projection)(inputs[key])
            torch.testing.assert_close(after, before * alpha[key], rtol=1e-6, atol=1e-7)
            if params["mode"] != "aura":  # 0.5 and 0: exactly ml-aura's `output * alpha`
                assert torch.equal(after, before * alpha[key])
    touched = torch.cat(list(alpha.values()))
    touched = touched[touched != 1]
    assert applied.info["units_dampened"] == touched.numel() == sum(applied.info["dampened_per_layer"])
    assert applied.info["units"] == DEPTH * (64 + 64 + 32)
    assert applied.info["mean_factor"] == pytest.approx(float(touched.mean()), abs=1e-6)
    assert sum(applied.info["dampened_per_projection"].values()) == touched.numel()
    if params["k"] is not None:
        assert touched.numel() == params["k"]


def test_aura_as_weights_computes_what_ml_auras_output_hooks_compute(tmp_path):
    base = _tiny()
    scores = _scores(base)
    ids = torch.randint(3, 256, (2, 11), generator=torch.Generator().manual_seed(5))
    for spec in ("aura", "aura:mode=damp,k=100"):
        name, params = _resolve(spec)
        alpha = factors(scores, params["mode"], params["k"])
        hooked = copy.deepcopy(base)
        for i, layer in enumerate(hooked.model.layers):
            for projection in PROJECTIONS:
                getattr(layer.mlp, projection).register_forward_hook(
                    lambda m, a, out, factor=alpha[f"layers.{i}.{projection}"]: out * factor
                )
        weighted = copy.deepcopy(base)
        WRAPPERS.get(name).apply(weighted, None, {**params, "artifact": _artifact(tmp_path, scores)})
        with torch.no_grad():
            expected, got = hooked(ids).logits, weighted(ids).logits
        if params["mode"] == "damp":
            assert torch.equal(got, expected)
        else:
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(got, base(ids).logits, atol=1e-3)


def test_aura_refuses_projections_that_are_no_longer_float_linears(tmp_path):
    model = _tiny()
    name, params = _resolve("dynamic_int8")
    WRAPPERS.get(name).apply(model, None, params)
    name, params = _resolve("aura")
    with pytest.raises(HarnessError, match=r"layer 0's gate_proj is a .*, not a float linear layer"):
        WRAPPERS.get(name).apply(model, None, {**params, "artifact": _artifact(tmp_path, _scores(_tiny()))})


# --- aura: fit on first use through Variant ------------------------------------------------------------


@pytest.fixture
def tiny_folder(tmp_path, embedded_default):
    """A two-layer random Llama saved as a folder, with the embedded default's tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from harness.models.loading import float_folder

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
    )
    folder = tmp_path / "tiny"
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(float_folder(embedded_default)).save_pretrained(folder)
    return folder


def test_aura_fits_on_first_use_once_and_sweeps_reuse_the_fit(tiny_folder):
    from safetensors.torch import load_file

    from harness.models import load_model, resolve_model
    from harness.variant._variant import Variant
    from harness.wrappers._fitting import read_sidecar

    resolved = resolve_model(str(tiny_folder))
    variant = Variant(VariantSpec.parse(f"{tiny_folder}+aura:n=40"), resolved)
    built = variant.load("cpu")
    artifacts = list((tiny_folder.parent / "cache" / "artifacts").glob("aura-*.safetensors"))
    assert len(artifacts) == 1
    sidecar = read_sidecar(artifacts[0])
    assert sidecar["wrapper"] == "aura" and sidecar["params"] == {"n": 40, "tokens": None}
    assert sidecar["info"]["sentences"] == {"toxic": 40, "nontoxic": 40}
    assert sidecar["info"]["units"] == 2 * (64 + 64 + 32)
    assert all(path.startswith("toxicity/toxigen/prompts/") for path in sidecar["data"]["files"])
    assert variant.intervention.wrappers[0].artifacts["fit"]
    scores = load_file(str(artifacts[0]))
    assert all(float(v.min()) >= 0 and float(v.max()) <= 1 for v in scores.values())

    base = load_model(resolved, "cpu").model
    alpha = factors(scores, "aura", None)
    for i in range(2):
        for projection in PROJECTIONS:
            key = f"layers.{i}.{projection}"
            expected = getattr(base.model.layers[i].mlp, projection).weight * alpha[key][:, None]
            assert torch.equal(getattr(built.model.model.layers[i].mlp, projection).weight, expected)
    assert built.applied_records()[0].info["units_dampened"] == int((torch.cat(list(scores.values())) > 0.5).sum())

    fitted_at = artifacts[0].stat().st_mtime_ns
    damp = Variant(VariantSpec.parse(f"{tiny_folder}+aura:mode=damp,k=5,n=40"), resolved)
    assert damp.intervention.wrappers[0].artifacts == variant.intervention.wrappers[0].artifacts
    assert damp.identity != variant.identity
    assert damp.load("cpu").applied_records()[0].info["units_dampened"] == 5
    assert artifacts[0].stat().st_mtime_ns == fitted_at  # not fitted again
    other = Variant(VariantSpec.parse(f"{tiny_folder}+aura:n=30"), resolved)
    assert other.intervention.wrappers[0].artifacts != variant.intervention.wrappers[0].artifacts
    assert json.loads(artifacts[0].with_name(artifacts[0].name + ".json").read_text())["params"]["n"] == 40


# --- clamp -----------------------------------------------------------------------------------------


def _down_inputs(model, layer: int) -> list[torch.Tensor]:
    """down_proj's input of `layer` at each call, as down_proj receives it (after any pre-hook)."""
    seen: list[torch.Tensor] = []
    model.model.layers[layer].mlp.down_proj.register_forward_hook(lambda m, a, out: seen.append(a[0].detach()))
    return seen


def test_clamp_holds_the_neuron_at_every_position_and_leaves_the_others():
    base = _tiny()
    model = copy.deepcopy(base)
    name, params = _resolve("clamp:layer=1,neuron=3,value=7.5")
    applied = WRAPPERS.get(name).apply(model, _NumberTokenizer(), params)
    assert len(applied.info["neuron_top_tokens"]) == 10
    ids = torch.randint(3, 256, (2, 10), generator=torch.Generator().manual_seed(1))
    held, free = _down_inputs(model, 1), _down_inputs(base, 1)
    with torch.no_grad():
        model(ids)
        base(ids)
    assert torch.equal(held[0][..., 3], torch.full((2, 10), 7.5))
    others = torch.arange(64) != 3
    assert torch.equal(held[0][..., others], free[0][..., others])  # layers before are the base's
    held.clear()
    generated = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert generated.shape[1] == 14 and len(held) == 4  # the prompt, then each new token but the last
    assert all(bool((call[..., 3] == 7.5).all()) for call in held)


def test_clamp_refuses_a_layer_or_neuron_the_model_lacks():
    for spec, says in [
        ("clamp:layer=3,neuron=0,value=1", "has 3 decoder layers, 0-2"),
        ("clamp:layer=0,neuron=64,value=1", "layer 0 has 64 neurons, 0-63"),
    ]:
        name, params = _resolve(spec)
        with pytest.raises(HarnessError, match=says):
            WRAPPERS.get(name).apply(_tiny(), _NumberTokenizer(), params)


# --- top_neuron_tokens -----------------------------------------------------------------------------


def test_top_neuron_tokens_are_the_explicit_head_times_down_column():
    model = _tiny()
    with torch.no_grad():  # a gain that is not all ones, so leaving it out would show
        model.model.norm.weight.copy_(torch.rand(32, generator=torch.Generator().manual_seed(6)) * 2 - 0.5)
    tokenizer = _NumberTokenizer()
    down = model.model.layers[2].mlp.down_proj.weight
    explicit = (model.lm_head.weight @ (model.model.norm.weight[:, None] * down)).detach()  # vocab x neurons
    listed = top_neuron_tokens(model, tokenizer, layer=2, top=5, tokens_per_neuron=4)
    assert [n["index"] for n in listed] == [0, 1, 2, 3, 4]
    for neuron in listed:
        column = explicit[:, neuron["index"]]
        assert neuron["tokens"] == [f"t{int(t)}" for t in column.topk(4).indices]
        assert neuron["score"] == pytest.approx(float(column.max()), rel=1e-4)
    ranked = top_neuron_tokens(model, tokenizer, layer=2, top=3, tokens_per_neuron=2, concept="t42")
    assert [n["index"] for n in ranked] == explicit[42].topk(3).indices.tolist()
    assert [n["score"] for n in ranked] == pytest.approx(explicit[42].topk(3).values.tolist(), rel=1e-4)
    assert len(top_neuron_tokens(model, tokenizer, layer=0, top=500)) == 64
    with pytest.raises(HarnessError, match="is 2 tokens"):
        top_neuron_tokens(model, tokenizer, layer=2, top=3, concept="t4 t5")
    with pytest.raises(HarnessError, match="has 3 decoder layers"):
        top_neuron_tokens(model, tokenizer, layer=3, top=3)


# --- the embedded default's dog neuron -------------------------------------------------------------


def test_the_dog_neuron_of_the_embedded_default_raises_p_dog_when_clamped(embedded_default, capsys):
    from harness.cli._main import main
    from harness.models import load_model
    from harness.variant._variant import Variant

    resolved = embedded_default
    base = load_model(resolved, "cpu")
    (found,) = top_neuron_tokens(base.model, base.tokenizer, layer=29, top=1, concept=" dog")
    assert found["index"] == 808 and {" dog", " dogs", "dog"} <= set(found["tokens"])
    assert main(["neurons", "--layer", "29", "--top", "1", "--concept", " dog", "--device", "cpu", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [found]
    built = Variant(VariantSpec.parse(f"{BASE}+clamp:layer=29,neuron=808,value=30"), resolved).load("cpu")
    assert " dog" in built.applied_records()[0].info["neuron_top_tokens"]
    tokenizer = base.tokenizer
    dog = tokenizer.encode(" dog", add_special_tokens=False)[0]
    ids = tokenizer("Once upon a time, there was a", return_tensors="pt").input_ids
    with torch.no_grad():
        before = base.model(ids).logits[0, -1].softmax(-1)[dog]
        after = built.model(ids).logits[0, -1].softmax(-1)[dog]
    assert before < 0.001 and after > 0.02
    ids = tokenizer("I went to the park and saw a", return_tensors="pt").input_ids
    plain, clamped = (
        m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False) for m in (base.model, built.model)
    )
    assert " dog" not in tokenizer.decode(plain[0, ids.shape[1] :])
    assert tokenizer.decode(clamped[0, ids.shape[1] :]).count(" dog") >= 3
