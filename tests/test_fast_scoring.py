"""The packed log-likelihood scorer gives lm-eval's HFLM numbers: per sample within 1e-4, the same
greedy flags, on a tiny randomly initialised Llama (the embedded default's tokenizer, so any text
works) and on the cases of tests/cases/fast_scoring.json, at several batch sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from harness.lm._fast_loglikelihood import FastHFLM, fast_path_refusal, pack

CASES = json.loads((Path(__file__).parent / "cases" / "fast_scoring.json").read_text())["cases"]


@pytest.fixture
def tokenizer(embedded_default):
    from transformers import AutoTokenizer

    from harness.models.loading import float_folder

    return AutoTokenizer.from_pretrained(float_folder(embedded_default))


def _tiny(vocab: int, tied: bool = True, max_positions: int = 512):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=tied,
    )
    return LlamaForCausalLM(config).eval()


def _requests(pairs: list[tuple[str, str]]) -> list[Instance]:
    return [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]


def _case_pairs() -> list[tuple[str, str]]:
    return [(case["context"], c) for case in CASES for c in case["continuations"]]


def _both(model, tokenizer, pairs, batch_size: int, **kwargs) -> tuple[list, list]:
    plain = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device="cpu", **kwargs)
    fast = FastHFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device="cpu", **kwargs)
    return plain.loglikelihood(_requests(pairs), disable_tqdm=True), fast.loglikelihood(_requests(pairs), disable_tqdm=True)


def _assert_same(theirs: list, ours: list) -> None:
    assert len(theirs) == len(ours)
    for (value, greedy), (mine, my_greedy) in zip(theirs, ours, strict=True):
        assert abs(value - mine) <= 1e-4, (value, mine)
        assert greedy == my_greedy


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_cases_match_hflm_at_every_batch_size(tokenizer, batch_size):
    model = _tiny(len(tokenizer))
    assert fast_path_refusal(model) is None
    _assert_same(*_both(model, tokenizer, _case_pairs(), batch_size))


def test_greedy_continuations_are_flagged_alike(tokenizer):
    """A continuation that is the model's own greedy output is flagged greedy by both."""
    model = _tiny(len(tokenizer))
    context = "Q: Name a colour.\nA:"
    ids = tokenizer(context, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=0)
    greedy = tokenizer.decode(out[0, ids.shape[1] :])
    theirs, ours = _both(model, tokenizer, [(context, greedy), (context, " blue")], 8)
    _assert_same(theirs, ours)
    assert [g for _, g in ours] == [True, False]


def test_head_hooks_apply_and_untied_heads(tokenizer):
    """A pre-hook on the LM head (how eigenshift projects) acts on the fast path too; untied heads."""
    model = _tiny(len(tokenizer), tied=False)
    basis = torch.linalg.qr(torch.randn(32, 4, generator=torch.Generator().manual_seed(3)))[0].T
    model.get_output_embeddings().register_forward_pre_hook(lambda m, a: (a[0] - 0.9 * (a[0] @ basis.T) @ basis,))
    theirs, ours = _both(model, tokenizer, _case_pairs(), 4)
    _assert_same(theirs, ours)
    unhooked = _tiny(len(tokenizer), tied=False)
    assert any(abs(a[0] - b[0]) > 1e-3 for a, b in zip(ours, _both(unhooked, tokenizer, _case_pairs(), 4)[1], strict=True))


def test_too_long_requests_are_truncated_as_hflm_does(tokenizer):
    model = _tiny(len(tokenizer), max_positions=24)
    pairs = [("one two three " * 10, " four five"), ("short", " one"), ("short", " two three")]
    _assert_same(*_both(model, tokenizer, pairs, 2, max_length=24))


def test_models_the_packed_pass_cannot_reproduce_fall_back(tokenizer):
    """A hook on the causal LM's forward (dola, contrast, the dynamic exit) sends scoring to HFLM's path."""
    model = _tiny(len(tokenizer))
    model.register_forward_hook(lambda m, a, out: out.__setitem__("logits", out.logits * 0.5) or out)
    assert "hooks" in fast_path_refusal(model)
    _assert_same(*_both(model, tokenizer, _case_pairs()[:5], 2))


def test_pack_runs_each_context_once_and_each_distinct_continuation_once():
    rows, where = pack([([5, 6, 7], [8, 9]), ([5, 6, 7], [10]), ([5, 6, 7], [8, 9]), ([1], [2, 3])])
    assert [r.prefix for r in rows] == [[5, 6], []]
    assert [list(r.segments) for r in rows] == [[(7, 8), (7,)], [(1, 2)]]
    assert where == [(0, 2), (0, 4), (0, 2), (1, 0)]
    assert [r.size for r in rows] == [5, 2]


def test_bf16_wrapper_computes_in_bfloat16_close_to_float32(tokenizer):
    """`+bf16` casts the whole model; its fast-path scores stay near float32's (log-softmax in float32)."""
    from harness.wrappers import WRAPPERS

    reference = _tiny(len(tokenizer))
    model = _tiny(len(tokenizer))
    applied = WRAPPERS.get("bf16").apply(model, tokenizer, {})
    assert applied.info == {"dtype": "bfloat16"}
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert fast_path_refusal(model) is None
    pairs = _case_pairs()
    ours = FastHFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu").loglikelihood(_requests(pairs))
    theirs = FastHFLM(pretrained=reference, tokenizer=tokenizer, batch_size=4, device="cpu").loglikelihood(_requests(pairs))
    gaps = [abs(a[0] - b[0]) for a, b in zip(ours, theirs, strict=True)]
    assert 0 < max(gaps) < 0.5
