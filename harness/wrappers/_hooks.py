"""The seam the decoding wrappers share: forward hooks that make a causal LM return a decoding
rule's scores in place of its logits (harness.wrappers.decoding says how the evaluation sees them)."""

from __future__ import annotations

import math
from typing import Any

from harness.errors import HarnessError
from harness.wrappers._anatomy import decoder_of

CHUNK = 256
"""Rows (positions that get logits) scored at a time."""

_APPLIED = "_harness_decoding"
"""Model attribute naming the decoding wrapper applied to it: the model is all that two wrappers'
`apply` calls share, so this is where a second decoding wrapper finds the first and refuses."""


def _argument(args: tuple, kwargs: dict, name: str, position: int) -> Any:
    return kwargs[name] if name in kwargs else (args[position] if len(args) > position else None)


class ScoreHooks:
    """Forward hooks that make a causal LM return a decoding rule's scores as its logits.

    Subclasses name themselves (`name`) and implement `scores(model, final, hidden, call)`: `final`
    is the model's own logits as rows (positions that get logits x vocabulary), `hidden` the
    captured hidden states at the requested layers as matching rows, `call` the arguments of the
    forward pass; it returns the scores, same shape. While `inner` is set (a forward pass the
    wrapper runs itself, such as the amateur's), the model's own hooks do nothing and the captured
    states go to a separate dictionary.
    """

    name = ""

    def __init__(self, model: Any, layers: list[int]) -> None:
        decoder = decoder_of(model, self.name)
        if (applied := getattr(model, _APPLIED, None)) is not None:
            raise HarnessError(f"{self.name}: the model already has the decoding wrapper {applied.name}; one decoding wrapper per variant")
        self.depth = len(decoder.layers)
        self.generating = False
        self.inner = False
        self.hidden: dict[int, Any] = {}
        self.tokens = 0
        """Rows scored so far, less those a 2-D attention mask marks as padding (lm-eval's
        log-likelihood batches come right-padded without a mask: their padding rows count)."""
        for layer in sorted(set(layers)):
            module = model.get_input_embeddings() if layer == 0 else decoder.layers[layer - 1]
            module.register_forward_hook(lambda m, a, o, layer=layer: self.hidden.__setitem__(layer, o[0] if isinstance(o, tuple) else o))
        model.register_forward_pre_hook(self._pre, with_kwargs=True)
        model.register_forward_hook(self._post, with_kwargs=True)
        self._wrap_generate(model)
        setattr(model, _APPLIED, self)

    def _wrap_generate(self, model: Any) -> None:
        """Replace `generate` on the model instance by one that sets `generating` (which turns on the
        plausibility mask) while the original runs, and refuses beam search. transformers offers no
        hook around `generate`, and a forward pass cannot tell whether generate called it; the mask
        must hold for every caller of the built model (lm-eval's HFLM, a user's code), so the
        instance's own method is the place."""
        original = model.generate

        def generate(*args: Any, **kwargs: Any) -> Any:
            config = kwargs.get("generation_config") or model.generation_config
            if (kwargs.get("num_beams") or getattr(config, "num_beams", None) or 1) > 1:
                raise HarnessError(f"{self.name}: beam search is not supported (num_beams must be 1)")
            self.generating = True
            try:
                return original(*args, **kwargs)
            finally:
                self.generating = False

        model.generate = generate

    def head(self, model: Any, hidden: Any, norm: bool) -> Any:
        """Log-probabilities of the model's head on (optionally final-normed) hidden-state rows."""
        if norm:
            hidden = decoder_of(model, self.name).norm(hidden)
        return model.get_output_embeddings()(hidden).float().log_softmax(-1)

    def plausible(self, scores: Any, logprobs: Any, share: float) -> Any:
        """In generation, -inf where the model's probability is below `share` x its largest."""
        if not self.generating or share <= 0:
            return scores
        floor = logprobs.max(-1, keepdim=True).values + math.log(share)
        return scores.masked_fill(logprobs < floor, float("-inf"))

    def scores(self, model: Any, final: Any, hidden: dict[int, Any], call: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _pre(self, module: Any, args: tuple, kwargs: dict) -> None:
        if self.inner:
            return
        if kwargs.get("labels") is not None:
            raise HarnessError(f"{self.name}: labels= is not supported (the loss would be of the model's own logits)")
        if _argument(args, kwargs, "input_ids", 0) is None:
            raise HarnessError(f"{self.name}: the model must be called with input_ids (not inputs_embeds)")
        if len(decoder_of(module, self.name).layers) != self.depth:
            raise HarnessError(
                f"{self.name}: the model's depth changed after {self.name} was applied; "
                f"put exit/skip before {self.name} in the model string"
            )
        self.hidden = {}

    def _post(self, module: Any, args: tuple, kwargs: dict, output: Any) -> Any:
        import torch
        from transformers.modeling_utils import slice_logits_to_keep

        if self.inner:
            return None
        keep = kwargs.get("logits_to_keep", 0)
        logits = output.logits
        vocabulary = logits.shape[-1]
        hidden = {layer: slice_logits_to_keep(h, keep).reshape(-1, h.shape[-1]) for layer, h in self.hidden.items()}
        call = {
            "input_ids": _argument(args, kwargs, "input_ids", 0),
            "attention_mask": _argument(args, kwargs, "attention_mask", 1),
            "position_ids": _argument(args, kwargs, "position_ids", 2),
            "kwargs": kwargs,
        }
        ids, mask = call["input_ids"], call["attention_mask"]
        counted = None
        if mask is not None and mask.ndim == 2 and mask.shape[1] >= ids.shape[1]:
            current = mask[:, -ids.shape[1] :, None]  # the current tokens' columns
            counted = slice_logits_to_keep(current, keep).reshape(-1).bool()
        call["counted"] = counted
        with torch.no_grad():
            scores = self.scores(module, logits.reshape(-1, vocabulary), hidden, call)
        self.tokens += int(counted.sum()) if counted is not None else scores.shape[0]
        self.hidden = {}
        output.logits = scores.reshape(logits.shape).to(logits.dtype)
        return output
