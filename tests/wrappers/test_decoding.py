"""Decoding wrappers (dola, contrast): their scores equal a computation by hand from the plain model's
own outputs, generation with the KV cache gives what recomputing without it gives, and bad
parameters fail with one line.

Tiny random Llamas built in memory (16 layers, hidden size 32, weights drawn wide enough that the
next-token distributions are peaked, so the layer choices are not near-ties), a word-level stand-in
for a tokenizer, and one run of the CLI on the embedded default.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from harness.errors import HarnessError
from harness.records._schema import read_record
from harness.spec._spec import VariantSpec
from harness.wrappers import WRAPPERS, canonical_text
from harness.wrappers._cost import measure_cost
from harness.wrappers.decoding import INSTRUCTION, INSTRUCTION_SHA256, candidate_layers, premature_layers
from tests.helpers import run_cli

DEPTH = 16
BASE = "smollm2-135m-instruct"


def _tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=256,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=DEPTH,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        initializer_range=0.3,
    )
    return LlamaForCausalLM(config).eval()


class _Words:
    """Tokenizer stand-in: one id per word, inside the tiny vocabulary."""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [3 + sum(word.encode()) % 250 for word in text.split()]


def _ids(batch: int = 2, length: int = 12) -> torch.Tensor:
    return torch.randint(3, 256, (batch, length), generator=torch.Generator().manual_seed(1))


def _apply(model, wrapper: str):
    """Apply `NAME:key=value,...` to `model` as a variant would (resolve, then apply)."""
    ((name, params),) = VariantSpec.parse(f"{BASE}+{wrapper}").resolved()
    return WRAPPERS.get(name).apply(model, _Words(), params)


def _wrapped(wrapper: str):
    base = _tiny()
    model = copy.deepcopy(base)
    return base, model, _apply(model, wrapper)


def _generate(model, ids, mask, use_cache: bool):
    out = model.generate(
        ids,
        attention_mask=mask,
        max_new_tokens=6,
        min_new_tokens=6,
        do_sample=False,
        pad_token_id=0,
        use_cache=use_cache,
        output_logits=True,
        return_dict_in_generate=True,
    )
    return out.sequences, torch.stack(out.logits)


def _left_padded() -> tuple[torch.Tensor, torch.Tensor]:
    ids = _ids(2, 10)
    mask = torch.ones_like(ids)
    ids[0, :3], mask[0, :3] = 0, 0
    return ids, mask


# --- parameters ------------------------------------------------------------------------------------


def test_parameters_are_checked_when_the_model_string_is_parsed():
    ((name, params),) = VariantSpec.parse(f"{BASE}+dola:layers=high").resolved()
    assert name == "dola" and params == {"layers": "high", "early_norm": False, "relative_top": 0.1, "post_softmax": False}
    ((_, params),) = VariantSpec.parse(f"{BASE}+dola:layers=6-8,2,4,early_norm=true").resolved()
    assert canonical_text(params["layers"]) == "2,4,6-8" and params["early_norm"] is True
    ((_, params),) = VariantSpec.parse(f"{BASE}+contrast").resolved()
    assert params == {"amateur": "prompt", "beta": 1.0, "omega": 0.0, "layer": None, "alpha": 0.1, "post_softmax": False}
    ((_, params),) = VariantSpec.parse(f"{BASE}+contrast:omega=0.5,layer=4,beta=0.5").resolved()
    assert (params["omega"], params["layer"], params["beta"]) == (0.5, 4, 0.5)

    bad = {
        "dola": "needs layers=high",
        "dola:layers=middle": "or high, or low",
        "dola:layers=high,relative_top=1.5": "must be <= 1.0",
        "contrast:omega=0.5": "needs layer=L",
        "contrast:layer=3": "applies only with omega > 0",
        "contrast:amateur=model": "must be one of prompt",
        "contrast:beta=-1": "must be >= 0.0",
        "contrast:alpha=2": "must be <= 1.0",
    }
    for wrapper, message in bad.items():
        with pytest.raises(HarnessError, match=message) as caught:
            VariantSpec.parse(f"{BASE}+{wrapper}")
        assert "\n" not in str(caught.value)


def test_the_amateur_instruction_enters_the_identity():
    contrast = WRAPPERS.get("contrast")
    params = contrast.resolve({})
    assert hashlib.sha256(INSTRUCTION.encode("utf-8")).hexdigest() == INSTRUCTION_SHA256
    assert contrast.artifacts(params) == {"amateur_instruction": INSTRUCTION_SHA256}
    assert contrast.artifacts(params, None) == contrast.artifacts(params)  # the hook may also get the base


def test_candidate_layers_are_transformers_low_and_high():
    assert candidate_layers("high", 30, True) == list(range(15, 30, 2))
    assert candidate_layers("low", 30, True) == list(range(2, 15, 2))  # tied head: the embeddings are skipped
    assert candidate_layers("low", 16, False) == [0, 2, 4, 6]
    assert candidate_layers("high", 48, False) == list(range(28, 48, 2))
    assert candidate_layers("low", 48, True) == list(range(2, 20, 2))
    assert candidate_layers("low", 4, True) == [2]
    assert candidate_layers(premature_layers("0,3-5"), 16, False) == [0, 3, 4, 5]


def test_dola_refuses_the_final_layer_and_layers_beyond_it():
    for layers, message in (("10-16", "layer 16 is the model's final layer"), ("4,17", r"0-15 \(no layer 17\)")):
        with pytest.raises(HarnessError, match=message) as caught:
            _wrapped(f"dola:layers={layers}")
        assert "\n" not in str(caught.value)


def test_contrast_refuses_a_layer_at_or_beyond_the_final_one():
    with pytest.raises(HarnessError, match=r"in 0-15 \(the model has 16 decoder layers\)"):
        _wrapped(f"contrast:omega=0.5,layer={DEPTH}")


def test_one_decoding_wrapper_per_variant():
    _, model, _ = _wrapped("dola:layers=high")
    with pytest.raises(HarnessError, match="one decoding wrapper per variant"):
        _apply(model, "contrast")


# --- dola ------------------------------------------------------------------------------------------


def _dola_by_hand(model, ids: torch.Tensor, layers: list[int], early_norm: bool):
    """The authors' `lm_score` per position: pick the layer by their divergence, subtract."""
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
        final = out.logits.log_softmax(-1)
        expected = torch.empty_like(final)
        picks = []
        for b in range(ids.shape[0]):
            for t in range(ids.shape[1]):
                candidates = []
                for j in layers:
                    h = out.hidden_states[j][b, t]
                    log_q = model.lm_head(model.model.norm(h) if early_norm else h).log_softmax(-1)
                    m = 0.5 * (final[b, t].exp() + log_q.exp())
                    js = 0.5 * (F.kl_div(final[b, t], m, reduction="none").mean() + F.kl_div(log_q, m, reduction="none").mean())
                    candidates.append((float(js), log_q))
                order = sorted(range(len(layers)), key=lambda i: -candidates[i][0])
                # a clear winner, so that float summation order cannot flip the choice
                assert candidates[order[0]][0] - candidates[order[1]][0] > 1e-4 * candidates[order[0]][0]
                expected[b, t] = final[b, t] - candidates[order[0]][1]
                picks.append(layers[order[0]])
    return expected, picks


@pytest.mark.parametrize("layers,early_norm", [("high", False), ("0-5", True)])
def test_dola_scores_equal_a_hand_computation(layers, early_norm):
    base, model, applied = _wrapped(f"dola:layers={layers},early_norm={str(early_norm).lower()}")
    candidates = applied.info["candidate_layers"]
    assert candidates == ([8, 10, 12, 14] if layers == "high" else [0, 1, 2, 3, 4, 5])
    ids = _ids()
    expected, picks = _dola_by_hand(base, ids, candidates, early_norm)
    with torch.no_grad():
        scores = model(ids).logits
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(scores).all()  # no plausibility mask outside generation
    # what lm-eval takes: the scores log-softmaxed
    torch.testing.assert_close(scores.log_softmax(-1), expected.log_softmax(-1), rtol=1e-5, atol=1e-5)

    report = applied.report()
    assert report["tokens"] == ids.numel()
    shares = report["premature_share_by_layer"]
    assert set(shares) == {str(j) for j in candidates}
    for j in candidates:
        assert shares[str(j)] == pytest.approx(picks.count(j) / len(picks))
    assert len(set(picks)) > 1  # the choice is per token


def test_dola_generation_with_the_cache_equals_recomputing_and_masks_implausible_tokens():
    base, model, applied = _wrapped("dola:layers=high")
    ids, mask = _left_padded()
    cached, cached_scores = _generate(model, ids, mask, use_cache=True)
    recomputed, recomputed_scores = _generate(model, ids, mask, use_cache=False)
    assert torch.equal(cached, recomputed)
    finite = torch.isfinite(cached_scores)
    assert torch.equal(finite, torch.isfinite(recomputed_scores))
    torch.testing.assert_close(cached_scores[finite], recomputed_scores[finite], rtol=1e-4, atol=1e-4)

    # The first step's -inf tokens are those the final layer gives under 0.1 x its top probability.
    with torch.no_grad():
        probs = base(ids, attention_mask=mask).logits[:, -1].softmax(-1)
    implausible = probs < 0.1 * probs.max(-1, keepdim=True).values
    assert implausible.any() and torch.equal(~finite[0], implausible)
    # each step scores one row per sequence: 2 sequences x 6 steps, in each of the two generations
    assert applied.report()["tokens"] == 2 * 2 * 6


def test_dola_cost_is_the_extra_head_evaluations():
    base, model, applied = _wrapped("dola:layers=high")
    head = base.lm_head.weight.numel()
    assert applied.extra_flops_per_token == 2.0 * head * 4
    assert measure_cost(model).flops_per_token == measure_cost(base).flops_per_token  # the tree is unchanged


# --- contrast --------------------------------------------------------------------------------------


def _contrast_by_hand(model, ids: torch.Tensor, beta: float, omega: float, layer: int | None):
    """Two separate forward passes: the model on the input, and on the instruction then the input."""
    instruction = torch.tensor(_Words().encode(INSTRUCTION, add_special_tokens=False))
    size = len(instruction)
    prompted = torch.cat([instruction.expand(ids.shape[0], size), ids], dim=1)
    with torch.no_grad():
        plain = model(ids, output_hidden_states=True)
        amateur = model(prompted, output_hidden_states=True)
        scores = plain.logits.log_softmax(-1) - beta * amateur.logits[:, size:].log_softmax(-1)
        if omega:

            def lower(h):
                return model.lm_head(model.model.norm(h)).log_softmax(-1)

            scores += omega * (lower(plain.hidden_states[layer]) - beta * lower(amateur.hidden_states[layer][:, size:]))
    return scores


@pytest.mark.parametrize("beta,omega,layer", [(1.0, 0.0, None), (0.5, 0.7, 4)])
def test_contrast_scores_equal_a_hand_computation(beta, omega, layer):
    wrapper = f"contrast:beta={beta}" + (f",omega={omega},layer={layer}" if omega else "")
    base, model, applied = _wrapped(wrapper)
    ids = _ids()
    with torch.no_grad():
        scores = model(ids).logits
    torch.testing.assert_close(scores, _contrast_by_hand(base, ids, beta, omega, layer), rtol=1e-5, atol=1e-5)
    assert torch.isfinite(scores).all()
    size = applied.info["instruction_tokens"]
    assert applied.report() == {"tokens": ids.numel(), "amateur_positions_per_position": (12 + size) / 12}


def test_contrast_lower_layer_term_changes_the_scores():
    ids = _ids()
    _, plain, _ = _wrapped("contrast:beta=0.5")
    _, fused, _ = _wrapped("contrast:beta=0.5,omega=0.7,layer=4")
    with torch.no_grad():
        assert (plain(ids).logits - fused(ids).logits).abs().max() > 0.1


def test_contrast_generation_with_the_cache_equals_recomputing():
    _, model, _ = _wrapped("contrast:beta=0.5,omega=0.7,layer=4")
    ids, mask = _left_padded()
    cached, cached_scores = _generate(model, ids, mask, use_cache=True)
    recomputed, recomputed_scores = _generate(model, ids, mask, use_cache=False)
    assert torch.equal(cached, recomputed)
    finite = torch.isfinite(cached_scores)
    assert not finite.all() and torch.equal(finite, torch.isfinite(recomputed_scores))  # the alpha mask
    torch.testing.assert_close(cached_scores[finite], recomputed_scores[finite], rtol=1e-4, atol=1e-4)
    # The first step scores the prompt's last position as full-sequence scoring does (left padding
    # and all), bar the alpha mask.
    with torch.no_grad():
        full = model(ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits[:, -1]
    torch.testing.assert_close(cached_scores[0][finite[0]], full[finite[0]], rtol=1e-4, atol=1e-4)


def test_contrast_refuses_an_amateur_cache_out_of_step():
    from transformers import DynamicCache

    _, model, _ = _wrapped("contrast")
    ids = _ids(1, 8)
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(ids[:, :6], cache=cache, use_cache=True)
        cache.crop(-1)  # the model's cache moves back; the amateur's does not
        with pytest.raises(HarnessError, match="out of step"):
            model(ids[:, 5:6], cache=cache, use_cache=True)


# --- end to end ------------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapper", ["dola:layers=high", "contrast:omega=0.5,layer=4"])
@pytest.mark.slow
def test_loglikelihoods_sum_the_raw_scores_unless_post_softmax(embedded_default, wrapper):
    """The authors' multiple-choice scoring (raw differences summed) by default; lm-eval's
    log-softmaxed scores with post_softmax=true; both over the continuation's tokens as the full
    forward pass scores them."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from harness.lm._summed_scores import SummedScoresHFLM
    from harness.models.loading import float_folder

    tokenizer = AutoTokenizer.from_pretrained(float_folder(embedded_default))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=DEPTH,
        num_attention_heads=4,
        num_key_value_heads=2,
        initializer_range=0.3,
    )
    base = LlamaForCausalLM(config).eval()
    raw, normed = copy.deepcopy(base), copy.deepcopy(base)
    assert _apply(raw, wrapper).scoring == "raw_sum"
    assert _apply(normed, f"{wrapper},post_softmax=true").scoring == "log_softmax"
    pairs = [("Question: what is two plus two?\nAnswer:", " four"), ("The capital of France is", " Paris, of course.")]
    requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
    summed = SummedScoresHFLM(pretrained=raw, tokenizer=tokenizer, batch_size=1, device="cpu").loglikelihood(requests)
    softmaxed = HFLM(pretrained=normed, tokenizer=tokenizer, batch_size=2, device="cpu").loglikelihood(requests)
    for (context, continuation), (total, _), (normalised, _) in zip(pairs, summed, softmaxed, strict=True):
        context_ids = tokenizer.encode(context)
        continuation_ids = tokenizer.encode(context + continuation)[len(context_ids) :]
        ids = torch.tensor([context_ids + continuation_ids])
        with torch.no_grad():
            scores = raw(ids[:, :-1]).logits[0, -len(continuation_ids) :].float()
        target = torch.tensor(continuation_ids)[:, None]
        assert total == pytest.approx(float(scores.gather(1, target).sum()), rel=1e-6, abs=1e-4)  # float32 sums of ~700
        assert normalised == pytest.approx(float(scores.log_softmax(-1).gather(1, target).sum()), rel=1e-6, abs=1e-4)
        assert abs(total - normalised) > 1e-2


@pytest.mark.slow
def test_decoding_variants_through_the_cli(env, tmp_path):
    dola, contrast = f"{BASE}+dola:layers=high", f"{BASE}+contrast:omega=0.5,layer=10"
    done = run_cli(
        [
            "eval",
            "--model",
            dola,
            "--model",
            contrast,
            "--no-base",
            "--tasks",
            "arithmetic_2da",
            "--limit",
            "3",
            "--output-dir",
            str(tmp_path / "out"),
            "--output",
            "json",
        ],
        env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = read_record(Path(json.loads(done.stdout)["record"]))
    by_model = {v.model: v for v in record.variants}
    (applied,) = by_model[dola].applied
    assert applied.info["candidate_layers"] == list(range(15, 30, 2))
    assert applied.info["tokens"] > 0 and sum(applied.info["premature_share_by_layer"].values()) == pytest.approx(1)
    (wrapper,) = by_model[contrast].intervention.wrappers
    assert wrapper.artifacts == {"amateur_instruction": INSTRUCTION_SHA256}
    assert by_model[contrast].applied[0].info["amateur_positions_per_position"] > 1
    assert all(r.n_samples == 3 for r in record.results if r.kind == "task")
