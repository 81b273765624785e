"""Chunks: HarnessLM computes a task's requests in fixed chunks whatever its cache holds, and a
scale-out shard computes exactly the chunks that start at its documents (no model is built here)."""

from __future__ import annotations

import pytest
from lm_eval.api.instance import Instance

from harness.engine._shard_worker import ShardDone, ShardLM
from harness.lm._harness_lm import HarnessLM, chunk_size
from harness.lm._request_cache import RequestCache
from harness.models import resolve_model
from harness.spec._spec import VariantSpec
from harness.variant._variant import Variant

pytestmark = pytest.mark.slow  # the embedded default, converted

BATCH = 2  # chunks of 32 log-likelihood requests


def _requests(documents: int, per_document: int) -> list[Instance]:
    return [
        Instance(request_type="loglikelihood", doc={}, arguments=(f"doc {d}", f" choice {c}"), idx=c, metadata=("t", d, 1))
        for d in range(documents)
        for c in range(per_document)
    ]


def _lm(cls, tmp_path):
    spec = VariantSpec.parse("smollm2-135m-instruct")
    variant = Variant(spec, resolve_model(spec.base))
    lm = cls(
        variant=variant,
        cache=RequestCache(tmp_path / "requests", variant.identity, "context"),
        task_hashes={"t": "h"},
        batch_size=BATCH,
        device="cpu",
    )
    lm.hf = lambda: None  # every answer below comes from `compute`: nothing to build
    return lm


def _ask(lm, requests, parts: list[list[int]]):
    def compute(part):
        parts.append(list(part))
        return [[-float(i), False] for i in part]

    return lm._answer_indexed(requests, "loglikelihood", compute, lambda i: list(requests[i].args), [[i] for i in range(len(requests))])


def test_a_chunk_with_an_answer_missing_is_computed_whole_in_the_cold_run_s_cut(tmp_path, embedded_default):
    requests = _requests(40, 2)  # 80 requests: chunks [0, 32), [32, 64), [64, 80)
    assert chunk_size("loglikelihood", BATCH) == 32
    cold: list[list[int]] = []
    first = _ask(_lm(HarnessLM, tmp_path / "a"), requests, cold)
    assert cold == [list(range(0, 32)), list(range(32, 64)), list(range(64, 80))]

    lm = _lm(HarnessLM, tmp_path / "b")
    keys = [lm._cache.key("h", "loglikelihood", list(r.args)) for r in requests]
    lm._cache.put_many((keys[i], first[i]) for i in [*range(0, 32), *range(40, 50)])  # one whole chunk, part of another
    again: list[list[int]] = []
    assert _ask(lm, requests, again) == first
    assert again == [list(range(32, 64)), list(range(64, 80))]  # the partly cached chunk is computed whole
    assert lm.task_cached["t"] == 32 and lm.task_computed["t"] == 48


def test_a_shard_computes_the_chunks_that_start_at_its_documents(tmp_path, embedded_default):
    requests = _requests(40, 2)  # chunks start at documents 0, 16 and 32
    lm = _lm(ShardLM, tmp_path)
    answered = {}
    for first, end in ((0, 10), (10, 20), (20, 30), (30, 40)):
        lm.documents = range(first, end)
        parts: list[list[int]] = []
        with pytest.raises(ShardDone) as done:
            _ask(lm, requests, parts)
        answered[first] = [key for key, _ in done.value.answered]
        assert [requests[p[0]].doc_id for p in parts] == [d for d in (0, 16, 32) if first <= d < end]
    keys = [lm._cache.key("h", "loglikelihood", list(r.args)) for r in requests]
    assert answered == {0: keys[0:32], 10: keys[32:64], 20: [], 30: keys[64:80]}
