"""Log-likelihoods exactly as lm-eval's HFLM scores them, without its repeated work.

HFLM runs every (context, continuation) request as its own sequence and applies the LM head at
every position. For a multiple-choice question whose choices are longer than one token, the
context (TruthfulQA's six-shot preamble: ~300 tokens) is recomputed for each of its 4-13 choices,
and 49152 x 576 head products are spent on context positions that nobody reads. Here:

- Requests sharing a context are packed into one sequence: the context once, then each distinct
  continuation as a segment that sees the context and itself only (a block attention mask, and
  position ids that restart at the context's end for each segment). Each segment starts with the
  context's last token, whose output predicts the continuation's first token, so every position
  of a segment is scored and no other is.
- The decoder (`model.get_decoder()`) runs the packed rows; the LM head (`get_output_embeddings()`,
  called as a module, so hooks on it, such as eigenshift's projection, still apply) runs on the
  scored positions only.
- Rows are sorted by length and batched `batch_size` rows at a time, so little is padded; a batch
  whose rows each hold one segment runs under the plain causal mask, as HFLM's do.

Tokenization, truncation warnings and the request order stay HFLM's (TemplateLM.loglikelihood
encodes, this class only replaces `_loglikelihood_tokens`). Values agree with HFLM's to float32
rounding (the tests require 1e-4 per sample), and the greedy flags are the same. A model whose
scores the packed pass cannot reproduce falls back to HFLM's own path whole (`fast_path_refusal`
says why): hooks on the causal LM's forward (dola, contrast, the dynamic exit rewrite its output),
dynamically quantized layers (their activation scale depends on what else is in the batch, so even
HFLM's numbers depend on batching), sliding-window attention, logit softcapping, or an
architecture not known to compute `lm_head(decoder(...))`. Rolling
log-likelihoods (perplexity) and requests longer than the model's window take HFLM's path too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

# Causal LMs whose forward is `lm_head(decoder(...))` on the decoder's last hidden state and whose
# decoder takes a ready 4-D additive attention mask as it is (transformers' create_causal_mask).
_PLAIN_HEAD_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})


def fast_path_refusal(model: Any) -> str | None:
    """Why the packed pass cannot reproduce HFLM's scores for `model`, or None when it can."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in _PLAIN_HEAD_TYPES:
        return f"model type {model_type!r} is not one whose forward is lm_head(decoder(...))"
    if model.training:
        return "the model is in training mode (dropout)"
    if model._forward_hooks or model._forward_pre_hooks or getattr(model, "_forward_hooks_with_kwargs", None):
        return "hooks on the causal LM's forward rewrite its output"
    if getattr(config, "sliding_window", None) is not None and getattr(config, "use_sliding_window", True):
        return "sliding-window attention"
    if getattr(config, "final_logit_softcapping", None) is not None:
        return "logit softcapping"
    from torch.ao.nn.quantized import dynamic

    if any(isinstance(m, dynamic.Linear) for m in model.modules()):
        return "dynamically quantized layers (their activations' scale depends on the batch)"
    return None


@dataclass
class _Row:
    """One packed sequence: a context (less its last token) and the distinct segments after it."""

    prefix: list[int]
    segments: dict[tuple[int, ...], int] = field(default_factory=dict)
    """Segment tokens -> its start within the row."""
    length: int = 0

    def add(self, segment: tuple[int, ...]) -> int:
        if segment not in self.segments:
            self.segments[segment] = len(self.prefix) + self.length
            self.length += len(segment)
        return self.segments[segment]

    @property
    def size(self) -> int:
        return len(self.prefix) + self.length


def pack(requests: list[tuple[list[int], list[int]]]) -> tuple[list[_Row], list[tuple[int, int]]]:
    """Rows for (context, continuation) token lists, and for each request its (row, segment start).
    A request's segment is its context's last token followed by its continuation less the last
    token: exactly the inputs whose outputs score the continuation."""
    rows: dict[tuple[int, ...], _Row] = {}
    index: dict[tuple[int, ...], int] = {}
    where: list[tuple[int, int]] = []
    for context, continuation in requests:
        key = tuple(context)
        if key not in rows:
            rows[key] = _Row(prefix=list(context[:-1]))
            index[key] = len(index)
        segment = (context[-1], *continuation[:-1])
        where.append((index[key], rows[key].add(segment)))
    return list(rows.values()), where


def _batch_tensors(rows: list[_Row], pad_id: int, device: Any, dtype: Any) -> tuple[Any, Any, Any]:
    """Input ids, position ids and the additive 4-D attention mask for rows packed side by side,
    right-padded to the longest. A segment sees the prefix and itself (causally); padding sees
    only itself, so no softmax row is empty."""
    import torch

    width = max(r.size for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    blocks = torch.full((len(rows), width), -1, dtype=torch.long)
    for b, row in enumerate(rows):
        n = len(row.prefix)
        ids[b, :n] = torch.tensor(row.prefix, dtype=torch.long)
        positions[b, :n] = torch.arange(n)
        blocks[b, :n] = 0
        for k, (segment, start) in enumerate(row.segments.items(), start=1):
            ids[b, start : start + len(segment)] = torch.tensor(segment, dtype=torch.long)
            positions[b, start : start + len(segment)] = torch.arange(n, n + len(segment))
            blocks[b, start : start + len(segment)] = k
        positions[b, row.size :] = torch.arange(width - row.size)
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    query, key = blocks[:, :, None], blocks[:, None, :]
    visible = causal & (key >= 0) & ((key == 0) | (key == query))
    visible |= torch.eye(width, dtype=torch.bool)  # padding sees itself
    mask = torch.zeros((len(rows), 1, width, width), dtype=dtype)
    mask.masked_fill_(~visible[:, None], torch.finfo(dtype).min)
    return ids.to(device), positions.to(device), mask.to(device)


def score_packed(
    model: Any, requests: list[tuple[list[int], list[int]]], batch_rows: int, pad_id: int, extra_heads: Sequence[Any] = ()
) -> list[list[tuple[float, bool]]]:
    """(sum of log-probabilities, greedy) for each (context, continuation), HFLM's numbers: one
    list for the model's own head, then one for each of `extra_heads` on the same decoder output
    (harness.lm._shared_trunk)."""
    import torch
    import torch.nn.functional as F

    rows, where = pack(requests)
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    device, dtype = head.weight.device, head.weight.dtype
    by_row: dict[int, list[int]] = {}
    for i, (r, _) in enumerate(where):
        by_row.setdefault(r, []).append(i)
    order = sorted(range(len(rows)), key=lambda r: -rows[r].size)
    heads = [head, *extra_heads]
    results: list[list[Any]] = [[None] * len(requests) for _ in heads]
    for first in range(0, len(order), batch_rows):
        batch = order[first : first + batch_rows]
        ids, positions, mask = _batch_tensors([rows[r] for r in batch], pad_id, device, dtype)
        if all(len(rows[r].segments) == 1 for r in batch):
            # Plain sequences (one continuation per context, or one-token ones): right padding under
            # the causal mask is what HFLM runs, and sdpa's causal kernel beats an explicit mask.
            positions = mask = None
        # Every request's scored positions, flattened over the batch: row b, positions start.. .
        flat: list[int] = []
        spans: list[tuple[int, int, int]] = []
        for b, r in enumerate(batch):
            for i in by_row[r]:
                start, n = where[i][1], len(requests[i][1])
                spans.append((i, len(flat), n))
                flat.extend(b * ids.shape[1] + start + j for j in range(n))
        with torch.no_grad():
            hidden = decoder(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)
            states = hidden.last_hidden_state.reshape(-1, hidden.last_hidden_state.shape[-1])
            wanted = torch.tensor(flat, dtype=torch.long, device=device)
            chosen = states.index_select(0, wanted)
            targets = torch.tensor([t for i, _, _ in spans for t in requests[i][1]], dtype=torch.long, device=device)
            for h, out in zip(heads, results, strict=True):
                logprobs = F.log_softmax(h(chosen).float(), dim=-1)
                picked = logprobs.gather(1, targets[:, None]).squeeze(1)
                greedy = logprobs.argmax(-1) == targets
                for i, offset, n in spans:
                    out[i] = (float(picked[offset : offset + n].sum()), bool(greedy[offset : offset + n].all()))
    return results


class FastHFLM(HFLM):
    """HFLM whose log-likelihood requests are scored by `score_packed` when the model allows it."""

    # The heads of the call in progress and their answers (loglikelihood_with_heads): lm-eval's
    # loglikelihood reaches _loglikelihood_tokens with no room for more arguments.
    _heads: Sequence[Any] = ()
    _head_answers: list[list[Any]]

    def loglikelihood_with_heads(
        self, requests: list[Instance], heads: Sequence[Any]
    ) -> tuple[list[tuple[float, bool]], list[list[tuple[float, bool] | None]]]:
        """HFLM's log-likelihoods of `requests`, and for each of `heads` its answers on the same
        decoder pass (harness.lm._shared_trunk), in request order, None where the packed pass did
        not run."""
        self._heads = tuple(heads)
        try:
            answers = self.loglikelihood(requests, disable_tqdm=True)
            return answers, self._head_answers
        finally:
            self._heads = ()

    def _loglikelihood_tokens(
        self, requests: list[tuple[Any, list[int], list[int]]], disable_tqdm: bool = False, override_bs: Any = None
    ) -> list[tuple[float, bool]]:
        self._head_answers = [[None] * len(requests) for _ in self._heads]
        rolling = any(key is None for key, _, _ in requests)  # loglikelihood_rolling's windows
        if rolling or self.backend != "causal" or fast_path_refusal(self.model) is not None:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        fits = [i for i, (_, c, x) in enumerate(requests) if len(c) + len(x) <= self.max_length + 1]
        fitting = set(fits)
        long = [i for i in range(len(requests)) if i not in fitting]
        results: list[Any] = [None] * len(requests)
        rows = self.batch_size if isinstance(self.batch_size, int) and self.batch_size > 0 else 8
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        scored, *extra = score_packed(self.model, [(requests[i][1], requests[i][2]) for i in fits], rows, pad, self._heads)
        for i, answer in zip(fits, scored, strict=True):
            results[i] = answer
        for answers, out in zip(extra, self._head_answers, strict=True):
            for i, answer in zip(fits, answers, strict=True):
                out[i] = answer
        if long:  # HFLM truncates these from the left; its own path does exactly that
            for i, answer in zip(long, super()._loglikelihood_tokens([requests[i] for i in long], disable_tqdm=True), strict=True):
                results[i] = answer
        for (key, _, _), answer in zip(requests, results, strict=True):
            self.cache_hook.add_partial("loglikelihood", key, answer)
        return results
