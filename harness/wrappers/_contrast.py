"""Contrast scores (`contrast:amateur=prompt,...`; see harness.wrappers.decoding for how they reach
the evaluation).

Per row (a position that gets logits):
    F = (log p_o - beta log p_a) + omega (log p_o^(l) - beta log p_a^(l))
p_o is the model on the input, p_a the amateur: the same model with the instruction
(decoding.INSTRUCTION) before the input, at the same input position; p^(l) is the early-exit
distribution after l layers, softmax(head(norm(h_l))) with the model's own final norm and head.
ICD's scoring is the first term with beta = 1 (`base_logits - evil_logits`, both log-softmaxed);
LOL adds the second. In generation, tokens with p_o < alpha x max p_o get -inf (contrastive
decoding's plausibility constraint). A log-likelihood sums F raw at the continuation's tokens, as
ICD's TruthfulQA script does (`post_softmax=False`), or log-softmaxed with `post_softmax=true`
(see harness.wrappers._dola).

The amateur runs as a second forward pass of the same model inside the hook after the model's own,
on the same tokens, with the instruction's I tokens first: its attention mask is the call's with I
ones before it, its position ids (when the call gives them, as generate does from the attention
mask) the call's plus I after 0..I-1. Alignment with the model's positions is kept by one rule:
- a call with a cache that already holds P tokens continues the amateur's own cache, which must
  hold I + P (it is kept on the model's cache object, so it lives and dies with it; a cache that
  was cropped or rebuilt is refused with one line rather than silently misaligned);
- any other call (full-sequence scoring, uncached generation, the first step of cached generation)
  runs the amateur over the instruction and the whole input, starting a fresh amateur cache when the
  call has a cache.
So cached generation gives what recomputing without a cache gives; beam search, which reorders the
model's cache, is refused.
"""

from __future__ import annotations

from typing import Any

from harness.errors import HarnessError
from harness.wrappers._hooks import CHUNK, ScoreHooks

_STASH = "_harness_contrast_amateur"
"""Attribute of the model's cache object that holds the amateur's cache."""


class Contrast(ScoreHooks):
    name = "contrast"

    def __init__(self, model: Any, instruction: list[int], beta: float, omega: float, layer: int | None, alpha: float) -> None:
        import torch

        super().__init__(model, [layer] if omega > 0 and layer is not None else [])
        self.instruction = torch.tensor(instruction, dtype=torch.long)
        self.beta, self.omega, self.layer, self.alpha = beta, omega, layer, alpha
        self.positions = 0
        """Input positions the model ran with the hooks active."""
        self.amateur_positions = 0
        """Input positions the amateur ran (the instruction's included)."""
        self._past = 0

    def _pre(self, module: Any, args: tuple, kwargs: dict) -> None:
        super()._pre(module, args, kwargs)
        if not self.inner:
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            self._past = cache.get_seq_length() if cache is not None else 0

    def _amateur(self, model: Any, call: dict[str, Any]) -> tuple[Any, dict[int, Any]]:
        """The amateur's logits and captured hidden states for the call's current positions."""
        import torch
        from transformers import DynamicCache

        kwargs = call["kwargs"]
        ids, mask, positions = call["input_ids"], call["attention_mask"], call["position_ids"]
        batch, length = ids.shape
        size = len(self.instruction)
        cache_key = "cache" if "cache" in kwargs else "past_key_values"
        cache = kwargs.get(cache_key)
        use_cache = cache is not None and kwargs.get("use_cache") is not False
        if mask is not None and mask.ndim != 2:
            raise HarnessError("contrast: only 2-D attention masks are supported")
        prefix = self.instruction.to(ids.device).expand(batch, size)
        fresh = not (use_cache and self._past > 0)
        if not fresh:
            amateur_cache = getattr(cache, _STASH, None)
            if amateur_cache is None or amateur_cache.get_seq_length() != size + self._past:
                raise HarnessError(
                    "contrast: the amateur's cache is out of step with the model's (a cache cropped, reordered or built elsewhere)"
                )
            amateur_ids = ids
        else:
            amateur_cache = DynamicCache(config=model.config) if use_cache else None
            if use_cache:
                setattr(cache, _STASH, amateur_cache)
            amateur_ids = torch.cat([prefix, ids], dim=1)
        inputs: dict[str, Any] = {"input_ids": amateur_ids, "use_cache": use_cache}
        if use_cache:
            inputs[cache_key] = amateur_cache
        if mask is not None:
            inputs["attention_mask"] = torch.cat([torch.ones_like(prefix, dtype=mask.dtype), mask], dim=1)
        if positions is not None:
            shifted = positions + size
            if fresh:
                start = torch.arange(size, device=positions.device).expand(shifted.shape[0], size)
                shifted = torch.cat([start, shifted], dim=1)
            inputs["position_ids"] = shifted
        keep = kwargs.get("logits_to_keep", 0)
        # Logits for the call's current positions only: the last `length` (or fewer) positions.
        inputs["logits_to_keep"] = keep if isinstance(keep, int) and keep > 0 else length
        saved, self.hidden, self.inner = self.hidden, {}, True
        try:
            logits = model(**inputs).logits
        finally:
            captured, self.hidden, self.inner = self.hidden, saved, False
        self.positions += batch * length
        self.amateur_positions += batch * amateur_ids.shape[1]
        return logits, {layer: h[:, -length:] for layer, h in captured.items()}

    def scores(self, model: Any, final: Any, hidden: dict[int, Any], call: dict[str, Any]) -> Any:
        import torch
        from transformers.modeling_utils import slice_logits_to_keep

        keep = call["kwargs"].get("logits_to_keep", 0)
        amateur, amateur_hidden = self._amateur(model, call)
        if not (isinstance(keep, int) and keep > 0):
            amateur = slice_logits_to_keep(amateur, keep)
        amateur = amateur.reshape(final.shape)
        amateur_hidden = {layer: slice_logits_to_keep(h, keep).reshape(-1, h.shape[-1]) for layer, h in amateur_hidden.items()}
        out = torch.empty(final.shape, dtype=torch.float32, device=final.device)
        for start in range(0, final.shape[0], CHUNK):
            rows = slice(start, start + CHUNK)
            log_model = final[rows].float().log_softmax(-1)
            score = log_model - self.beta * amateur[rows].float().log_softmax(-1)
            if self.omega > 0 and self.layer is not None:  # decoding._check_contrast: omega > 0 comes with a layer
                lower = self.head(model, hidden[self.layer][rows], True)
                lower_amateur = self.head(model, amateur_hidden[self.layer][rows], True)
                score = score + self.omega * (lower - self.beta * lower_amateur)
            out[rows] = self.plausible(score, log_model, self.alpha)
        return out
