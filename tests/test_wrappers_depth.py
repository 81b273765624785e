"""Depth wrappers (exit, skip): each does what it claims and nothing else.

Tiny random Llamas built in memory (16 layers, hidden size 32), one check on the embedded default
(30 layers) through the real load path.
"""

from __future__ import annotations

import copy

import pytest
import torch

from harness.errors import HarnessError
from harness.spec._spec import VariantSpec
from harness.wrappers import WRAPPERS, canonical_text
from harness.wrappers._cost import measure_cost

DEPTH = 16
BASE = "smollm2-135m-instruct"


def _tiny(depth: int = DEPTH, init: float = 0.02):
    """A random llama; a larger `init` gives peaked next-token distributions (for exit rules)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=256,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=depth,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        initializer_range=init,
    )
    return LlamaForCausalLM(config).eval()


def _ids(batch: int = 2, length: int = 12) -> torch.Tensor:
    return torch.randint(3, 256, (batch, length), generator=torch.Generator().manual_seed(1))


def _apply(model, model_string_params: str):
    """Apply `NAME:key=value,...` to `model` as a variant would (resolve, then apply)."""
    ((name, params),) = VariantSpec.parse(f"{BASE}+{model_string_params}").resolved()
    return WRAPPERS.get(name).apply(model, None, params)


def _count_layer_calls(model) -> list[int]:
    """Hooks every decoder layer in the model's tree; the list gets each call's position in it."""
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    calls: list[int] = []
    layers = [m for m in model.modules() if isinstance(m, LlamaDecoderLayer)]
    for n, module in enumerate(layers):
        module.register_forward_hook(lambda m, a, o, n=n: calls.append(n))
    return calls


def _generate_both_ways(model, ids: torch.Tensor, new: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.ones_like(ids)
    kwargs = dict(attention_mask=mask, max_new_tokens=new, do_sample=False, pad_token_id=0)
    return model.generate(ids, use_cache=True, **kwargs), model.generate(ids, use_cache=False, **kwargs)


def _cache_depth(model, ids: torch.Tensor) -> int:
    with torch.no_grad():
        return len(model(ids, use_cache=True).cache.layers)


# --- parameters ------------------------------------------------------------------------------------


def test_layer_lists_parse_to_numbers_and_print_canonically():
    skip = WRAPPERS.get("skip")
    assert tuple(skip.resolve({"layers": "16-22"})["layers"]) == tuple(range(16, 23))
    value = skip.resolve({"layers": "7-9,3,5"})["layers"]
    assert tuple(value) == (3, 5, 7, 8, 9) and canonical_text(value) == "3,5,7-9"
    # through a model string: a comma piece without `=` continues the value
    ((name, params),) = VariantSpec.parse(f"{BASE}+skip:layers=3,5,7-9").resolved()
    assert name == "skip" and canonical_text(params["layers"]) == "3,5,7-9"
    assert tuple(skip.resolve({"layers": "0"})["layers"]) == (0,)
    exit_default = {"layer": 12, "threshold": None, "rule": "maxprob", "min_layer": 1}
    assert WRAPPERS.get("exit").resolve({"layer": "12"}) == exit_default
    assert WRAPPERS.get("exit").resolve({"threshold": "0.5", "rule": "entropy"})["threshold"] == 0.5


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("exit:layer=0", "exit:layer=0: must be >= 1"),
        ("exit:layer=twelve", "exit:layer='twelve': expected int"),
        ("exit:layer=4,threshold=0.9", "exit: give layer= (a static exit) or threshold= (a dynamic exit), not both"),
        ("exit", "exit: needs layer=N (run the first N layers) or threshold=T (a dynamic exit)"),
        ("exit:threshold=0.9,rule=confidence", "exit:rule='confidence': must be one of maxprob, margin, entropy"),
        ("exit:layer=4,rule=entropy", "exit:rule=entropy: a rule applies only to a dynamic exit (threshold=...)"),
        ("exit:threshold=1.5", "exit:threshold=1.5: must be <= 1 for rule=maxprob (a probability)"),
        ("exit:threshold=-1,rule=entropy", "exit:threshold=-1.0: must be >= 0.0"),
        ("exit:threshold=nan,rule=entropy", "exit:threshold=nan: must be a finite number"),
        ("exit:threshold=0.5,min_layer=0", "exit:min_layer=0: must be >= 1"),
        ("exit:layer=4,min_layer=3", "exit:min_layer=3: applies only to a dynamic exit (threshold=...)"),
        ("skip", "skip: needs layers=... (indices of decoder layers to drop, from 0: 16-22 or 3,5,7-9)"),
        ("skip:layers=16-", "skip:layers='16-': bad layer range '16-': expected layer indices like 16-22 or 3,5,7-9"),
        ("skip:layers=-3", "skip:layers='-3': bad layer range '-3': expected layer indices like 16-22 or 3,5,7-9"),
        ("skip:layers=22-16", "skip:layers='22-16': bad layer range '22-16': its end is before its start"),
        ("skip:layers=3,5,4-6", "skip:layers='3,5,4-6': layer 5 given twice"),
        ("skip:layers=0-99999999999", "skip:layers='0-99999999999': layer 99999999999 is beyond any model's depth"),
        ("skip:layers=a", "skip:layers='a': bad layer range 'a': expected layer indices like 16-22 or 3,5,7-9"),
        ("skip:layers=3;5", "skip:layers='3;5': bad layer range '3;5': expected layer indices like 16-22 or 3,5,7-9"),
    ],
)
def test_bad_parameters_fail_at_parse_time_in_one_line(model, message):
    with pytest.raises(HarnessError) as error:
        VariantSpec.parse(f"{BASE}+{model}")
    assert str(error.value) == message and "\n" not in message


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("exit:layer=17", "exit:layer=17: the model has 16 decoder layers"),
        ("exit:threshold=0.5,min_layer=17", "exit:min_layer=17: the model has 16 decoder layers"),
        ("skip:layers=14-16", "skip:layers=14-16: the model has 16 decoder layers, 0-15 (no layer 16)"),
        ("skip:layers=0-15", "skip:layers=0-15: that is every decoder layer of the model"),
    ],
)
def test_layers_beyond_the_model_fail_at_apply_time_in_one_line(model, message):
    tiny = _tiny()
    with pytest.raises(HarnessError) as error:
        _apply(tiny, model)
    assert str(error.value) == message
    assert len(tiny.model.layers) == DEPTH  # nothing was changed


def test_a_model_without_decoder_layers_is_refused_in_one_line():
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=64, n_positions=32))
    for model in ("exit:layer=1", "skip:layers=0", "exit:threshold=0.5"):
        with pytest.raises(HarnessError, match=r"^\w+: GPT2LMHeadModel has no list of decoder layers"):
            _apply(gpt2, model)


# --- exit:layer ------------------------------------------------------------------------------------


def test_static_exit_runs_the_first_layers_then_norm_and_head():
    base, ids = _tiny(), _ids()
    with torch.no_grad():
        hidden = base(ids, output_hidden_states=True).hidden_states
        expected = base.lm_head(base.model.norm(hidden[12]))  # hidden[12]: layer 12's output, before the norm

    model = copy.deepcopy(base)
    applied = _apply(model, "exit:layer=12")
    assert applied.info == {"mode": "static", "layers_run": 12, "depth_before": DEPTH}
    calls = _count_layer_calls(model)
    with torch.no_grad():
        logits = model(ids).logits
    assert calls == list(range(12))  # exactly the first twelve, once each
    assert torch.equal(logits, expected)

    # the config and the KV cache follow: twelve layers, numbered 0..11
    assert model.config.num_hidden_layers == 12
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == list(range(12))
    assert _cache_depth(model, ids) == 12
    cached, uncached = _generate_both_ways(model, ids)
    assert torch.equal(cached, uncached)

    # the cost is that of the shallower tree
    per_layer = sum(p.numel() for p in base.model.layers[0].parameters())
    assert measure_cost(model).parameters == measure_cost(base).parameters - 4 * per_layer
    assert measure_cost(model).flops_per_token < measure_cost(base).flops_per_token


def test_static_exit_at_full_depth_is_the_base():
    base, ids = _tiny(), _ids()
    model = copy.deepcopy(base)
    _apply(model, f"exit:layer={DEPTH}")
    with torch.no_grad():
        assert torch.equal(model(ids).logits, base(ids).logits)


def test_static_exit_on_the_embedded_default(embedded_default):
    from harness.models import load_model
    from harness.variant._variant import Variant

    base = load_model(embedded_default, "cpu")
    ids = base.tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        hidden = base.model(ids, output_hidden_states=True).hidden_states
        expected = base.model.lm_head(base.model.model.norm(hidden[12]))
    assert len(hidden) == 31
    del base, hidden

    built = Variant(VariantSpec.parse(f"{BASE}+exit:layer=12"), embedded_default).load("cpu")
    model = built.model
    calls = _count_layer_calls(model)
    with torch.no_grad():
        logits = model(ids).logits
    assert calls == list(range(12))
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    cached, uncached = _generate_both_ways(model, ids, new=4)
    assert torch.equal(cached, uncached)
    assert [r.info for r in built.applied_records()] == [{"mode": "static", "layers_run": 12, "depth_before": 30}]


# --- skip ------------------------------------------------------------------------------------------


def _manual(base, ids: torch.Tensor, keep: list[int]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Run the base's own layers at positions `keep` by hand: (each one's output, the logits)."""
    from transformers.masking_utils import create_causal_mask

    decoder = base.model
    with torch.no_grad():
        hidden = decoder.embed_tokens(ids)
        positions = torch.arange(ids.shape[1])[None]
        mask = create_causal_mask(config=base.config, inputs_embeds=hidden, attention_mask=None, cache=None, position_ids=positions)
        rotary = decoder.rotary_emb(hidden, position_ids=positions)
        outputs = []
        for i in keep:
            hidden = decoder.layers[i](hidden, attention_mask=mask, position_embeddings=rotary, position_ids=positions)
            outputs.append(hidden)
        return outputs, base.lm_head(decoder.norm(hidden))


def test_skip_drops_the_block_and_leaves_the_kept_layers_alone():
    base, ids = _tiny(), _ids()
    keep = [i for i in range(DEPTH) if not 5 <= i <= 8]
    manual_outputs, manual_logits = _manual(base, ids, keep)
    with torch.no_grad():
        base_hidden = base(ids, output_hidden_states=True).hidden_states

    model = copy.deepcopy(base)
    applied = _apply(model, "skip:layers=5-8")
    assert applied.info == {"layers_skipped": [5, 6, 7, 8], "depth_before": DEPTH, "depth_after": 12}
    outputs: list[torch.Tensor] = []
    for layer in model.model.layers:
        layer.register_forward_hook(lambda m, a, o: outputs.append(o))
    with torch.no_grad():
        logits = model(ids).logits

    assert len(outputs) == 12
    for n in range(5):  # layers 0-4, before the block: bit-identical to the base's
        assert torch.equal(outputs[n], base_hidden[n + 1])
    for got, want in zip(outputs, manual_outputs, strict=True):  # every kept layer: as the base's layers by hand
        assert torch.equal(got, want)
    assert torch.equal(logits, manual_logits)
    assert not torch.allclose(logits, base(ids).logits)  # and the block did matter

    kept = [base.model.layers[i] for i in keep]
    for ours, theirs in zip(model.model.layers, kept, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True))
    assert model.config.num_hidden_layers == 12
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == list(range(12))
    assert _cache_depth(model, ids) == 12
    cached, uncached = _generate_both_ways(model, ids)
    assert torch.equal(cached, uncached)


def test_skipping_the_top_layers_is_the_static_exit():
    base, ids = _tiny(), _ids()
    cut, skipped = copy.deepcopy(base), copy.deepcopy(base)
    _apply(cut, "exit:layer=12")
    _apply(skipped, "skip:layers=12-15")
    with torch.no_grad():
        assert torch.equal(cut(ids).logits, skipped(ids).logits)


def test_skip_keeps_per_layer_types_in_step_with_the_cache():
    """Gemma 3 alternates sliding and full attention: the config's `layer_types` must follow the
    kept layers, or the cache would give a layer the wrong kind of KV store."""
    from transformers import DynamicCache, Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=6,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=4,
        max_position_embeddings=64,
        layer_types=["sliding_attention", "full_attention"] * 3,
        final_logit_softcapping=5.0,
        pad_token_id=0,
    )
    model = Gemma3ForCausalLM(config).eval()
    _apply(model, "skip:layers=1-2")
    assert model.config.layer_types == ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]
    assert [layer.self_attn.is_sliding for layer in model.model.layers] == [True, False, True, False]
    cache = DynamicCache(config=model.config)
    assert [type(layer).__name__ for layer in cache.layers] == [
        "DynamicSlidingWindowLayer",
        "DynamicLayer",
        "DynamicSlidingWindowLayer",
        "DynamicLayer",
    ]
    ids = torch.randint(3, 128, (1, 10), generator=torch.Generator().manual_seed(2))
    cached, uncached = _generate_both_ways(model, ids, new=6)
    assert torch.equal(cached, uncached)
    # and the dynamic exit reproduces Gemma's softcapped head
    _apply(model, "exit:threshold=0.9")


# --- exit:threshold --------------------------------------------------------------------------------


def _criterion(logits: torch.Tensor, rule: str) -> torch.Tensor:
    probs = torch.softmax(logits, dim=-1)
    if rule == "maxprob":
        return probs.max(-1).values
    if rule == "margin":
        top = probs.topk(2, dim=-1).values
        return top[..., 0] - top[..., 1]
    return -(probs * probs.log()).sum(-1)


def _static_exit_logits(base, ids: torch.Tensor, layer: int) -> torch.Tensor:
    model = copy.deepcopy(base)
    _apply(model, f"exit:layer={layer}")
    with torch.no_grad():
        return model(ids).logits


@pytest.mark.parametrize(("rule", "min_layer"), [("maxprob", 1), ("margin", 1), ("entropy", 1), ("maxprob", 6)])
def test_dynamic_exit_gives_each_token_its_static_exit(rule, min_layer):
    base, ids = _tiny(init=0.2), _ids()
    with torch.no_grad():
        hidden = base(ids, output_hidden_states=True).hidden_states
        scores = torch.stack([_criterion(base.lm_head(base.model.norm(h)), rule) for h in hidden[1:DEPTH]])
    threshold = float(scores.median())  # roughly half of the (token, layer) tests pass
    passes = scores <= threshold if rule == "entropy" else scores >= threshold
    passes[: min_layer - 1] = False
    expected = torch.where(passes.any(0), passes.int().argmax(0) + 1, DEPTH)  # first passing layer, else the last

    model = copy.deepcopy(base)
    applied = _apply(model, f"exit:threshold={threshold!r},rule={rule},min_layer={min_layer}")
    state = model._harness_dynamic_exit
    calls = _count_layer_calls(model)
    with torch.no_grad():
        logits = model(ids).logits
    assert calls == list(range(DEPTH))  # every layer runs: later tokens see full-depth keys and values
    assert torch.equal(state.last_exit_layers, expected)
    assert len(set(expected.flatten().tolist())) >= 3  # a real mixture of exits
    for layer in sorted(set(expected.flatten().tolist())):
        at = expected == layer
        torch.testing.assert_close(logits[at], _static_exit_logits(base, ids, layer)[at], rtol=0, atol=0)

    report = applied.report()
    shares = report["exit_share_by_layer"]
    assert report["tokens"] == ids.numel() and list(shares) == [str(n) for n in range(1, DEPTH + 1)]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert report["mean_exit_layer"] == pytest.approx(expected.float().mean().item())
    for n in range(1, DEPTH + 1):
        assert shares[str(n)] == pytest.approx((expected == n).float().mean().item())


def test_dynamic_exit_extremes_and_costs():
    base, ids = _tiny(init=0.2), _ids()
    tree = measure_cost(base).flops_per_token
    head = 2.0 * base.lm_head.weight.numel()
    with torch.no_grad():
        base_logits = base(ids).logits

    everyone = copy.deepcopy(base)
    applied = _apply(everyone, "exit:threshold=0,rule=maxprob")  # every token passes at layer 1
    assert applied.extra_flops_per_token == (DEPTH - 1) * head  # the bound: a head after every layer
    with torch.no_grad():
        logits = everyone(ids).logits
    assert torch.equal(everyone._harness_dynamic_exit.last_exit_layers, torch.ones_like(ids))
    torch.testing.assert_close(logits, _static_exit_logits(base, ids, 1), rtol=0, atol=0)
    report = applied.report()
    assert report["mean_exit_layer"] == 1.0 and report["exit_share_by_layer"]["1"] == 1.0
    assert report["executed_flops_per_token"] == tree + head
    static_1 = measure_cost(_exit_model(base, 1)).flops_per_token
    assert report["static_exit_flops_per_token"] == pytest.approx(static_1)

    for never in ("exit:threshold=1,rule=maxprob", "exit:threshold=0,rule=entropy"):
        nobody = copy.deepcopy(base)
        applied = _apply(nobody, never)
        with torch.no_grad():
            logits = nobody(ids).logits
        assert torch.equal(logits, base_logits)  # nothing exits early: the base, bit for bit
        report = applied.report()
        assert report["mean_exit_layer"] == DEPTH and report["exit_share_by_layer"][str(DEPTH)] == 1.0
        assert report["executed_flops_per_token"] == tree + applied.extra_flops_per_token
        assert report["static_exit_flops_per_token"] == tree

    later = copy.deepcopy(base)
    applied = _apply(later, "exit:threshold=0,min_layer=5")  # every token passes at the first test
    assert applied.extra_flops_per_token == (DEPTH - 5) * head
    with torch.no_grad():
        logits = later(ids).logits
    torch.testing.assert_close(logits, _static_exit_logits(base, ids, 5), rtol=0, atol=0)
    report = applied.report()
    assert report["mean_exit_layer"] == 5.0 and report["executed_flops_per_token"] == tree + head


def _exit_model(base, layer: int):
    model = copy.deepcopy(base)
    _apply(model, f"exit:layer={layer}")
    return model


def test_dynamic_exit_in_generation_picks_each_token_from_its_exit_layer():
    base, prompt = _tiny(init=0.2), _ids(batch=2, length=6)
    with torch.no_grad():
        hidden = base(prompt, output_hidden_states=True).hidden_states
        scores = torch.stack([_criterion(base.lm_head(base.model.norm(h)), "maxprob") for h in hidden[1:DEPTH]])
    threshold = float(scores.median())
    model = copy.deepcopy(base)
    applied = _apply(model, f"exit:threshold={threshold!r}")
    state = model._harness_dynamic_exit
    steps: list[torch.Tensor] = []
    model.register_forward_hook(lambda m, a, o: steps.append(state.last_exit_layers.clone()))
    new = 8
    cached, uncached = _generate_both_ways(model, prompt, new=new)
    assert torch.equal(cached, uncached)
    cached_steps = steps[:new]  # the prompt's pass, then one position per step
    assert cached_steps[0].shape == prompt.shape and all(s.shape == (2, 1) for s in cached_steps[1:])
    assert all((s[:, :-1] == 0).all() for s in cached_steps)  # only the last position gets logits
    assert applied.report()["tokens"] == 2 * new * 2  # both generations, one token per row and step

    exits = torch.cat([s[:, -1:] for s in cached_steps], dim=1)  # (batch, new)
    statics = {layer: _static_exit_logits(base, cached, layer) for layer in set(exits.flatten().tolist())}
    for b in range(2):
        for k in range(new):
            position = prompt.shape[1] - 1 + k
            chosen = statics[int(exits[b, k])][b, position]
            assert int(chosen.argmax()) == int(cached[b, position + 1])
    assert len(set(exits.flatten().tolist())) >= 2


def test_a_dynamic_exit_follows_a_later_cut():
    """`exit:threshold=...+exit:layer=10`: the dynamic exit runs over the ten layers left."""
    base, ids = _tiny(init=0.2), _ids()
    model = copy.deepcopy(base)
    dynamic = _apply(model, "exit:threshold=1")
    _apply(model, "exit:layer=10")
    with torch.no_grad():
        logits = model(ids).logits
    assert torch.equal(logits, _static_exit_logits(base, ids, 10))
    report = dynamic.report()
    assert list(report["exit_share_by_layer"]) == [str(n) for n in range(1, 11)] and report["mean_exit_layer"] == 10
    assert report["static_exit_flops_per_token"] == measure_cost(model).flops_per_token


def test_dynamic_exit_statistics_leave_out_masked_positions():
    model, ids = _tiny(init=0.2), _ids(batch=2, length=6)
    applied = _apply(model, "exit:threshold=0.5")
    mask = torch.ones_like(ids)
    mask[0, :2] = 0  # left padding
    with torch.no_grad():
        model(ids, attention_mask=mask)
        model.model(ids)  # the decoder alone produces no logits: not counted
    assert applied.report()["tokens"] == 10
