"""Per-token dynamic exit (`exit:threshold=T,rule=...`), with forward hooks; see harness.wrappers.depth.

How one forward pass runs (every hook is a no-op outside a forward of the causal LM itself):
- a pre-hook on the causal LM notes which positions get logits (`logits_to_keep`) and the 2-D
  attention mask, if any;
- a hook on each decoder layer but the last computes, for the positions that get logits and have
  not exited yet, `lm_head(norm(h))` (the model's own norm and head, softcapped where the model
  softcaps), tests the rule and marks the tokens that pass as exited at that layer, keeping their
  normed hidden state. The layer's output is not changed: every token goes on through every layer;
- a hook on the final norm puts each exited token's normed exit state in place of its full-depth
  one, so the model's own head produces the exit layer's logits (the same as a static exit there);
- a hook after the causal LM counts the exit layers of the positions that got logits (those the
  attention mask marks as padding left out).
"""

from __future__ import annotations

import weakref
from typing import Any

from harness.errors import HarnessError
from harness.wrappers import Applied
from harness.wrappers._anatomy import decoder_of, head_module, matmul_weights, softcap
from harness.wrappers._cost import measure_cost

_CHUNK = 256
"""Rows per LM-head evaluation inside a layer hook (bounds the chunk x vocabulary logits)."""


class DynamicExit:
    """The state of one model's dynamic exit: hooks, the current pass, and the counts so far."""

    def __init__(self, model: Any, rule: str, threshold: float, min_layer: int = 1) -> None:
        import torch

        self._model = weakref.ref(model)
        self.rule = rule
        self.threshold = float(threshold)
        self.min_layer = min_layer
        decoder = decoder_of(model, "exit")
        self.depth = len(decoder.layers)
        self.counts = torch.zeros(self.depth, dtype=torch.int64)
        """Tokens that exited at each layer (index 0: layer 1)."""
        self.extra_heads = 0
        """LM-head evaluations inside the layers, summed over the counted tokens."""
        self.costs: dict[str, Any] | None = None
        """FLOPs per token of the model as evaluated (set by the first pass)."""
        self.last_exit_layers: Any = None
        """Exit layer (layers run, 1..depth) of each position of the last pass; 0 where it got no logits."""
        self._active = False
        self._inside = False
        self._reset_pass()

    # -- one pass ------------------------------------------------------------------------------------

    def _reset_pass(self) -> None:
        self._keep: Any = 0
        self._mask: Any = None
        self._positions: dict[int, int] = {}
        self._candidate: Any = None
        self._exit: Any = None
        self._normed: Any = None

    def _pre(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:

        if kwargs.get("labels") is not None:
            raise HarnessError("exit:threshold: labels= is not supported (the loss would be of full-depth logits)")
        self._reset_pass()
        self._active = True
        self._keep = kwargs.get("logits_to_keep", 0)
        self._mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        layers = decoder_of(module, "exit").layers
        self._positions = {id(layer): i for i, layer in enumerate(layers)}
        if self.costs is None or len(layers) != self.depth:
            # The first pass: the model is final (a later wrapper may have cut or quantized it).
            if int(self.counts.sum()):
                raise HarnessError("exit:threshold: the model's depth changed during evaluation")
            self.depth = len(layers)
            self.counts = self.counts.new_zeros(self.depth)
            self.costs = _costs(module)

    def _begin(self, hidden: Any) -> None:
        import torch

        batch, length = hidden.shape[:2]
        keep = self._keep
        candidate = torch.zeros(batch, length, dtype=torch.bool, device=hidden.device)
        if isinstance(keep, int):
            candidate[:, -keep if keep else 0 :] = True
        elif keep.ndim == 1:
            candidate[:, keep] = True
        elif keep.dtype == torch.bool:
            candidate = keep.to(hidden.device).clone()
        else:
            candidate.scatter_(1, keep.to(hidden.device), True)
        self._candidate = candidate
        self._exit = torch.zeros(batch, length, dtype=torch.int64, device=hidden.device)

    def _logits(self, model: Any, normed: Any) -> Any:
        import torch

        logits = head_module(model)(normed)
        cap = softcap(model)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def _norm(self, model: Any, hidden: Any) -> Any:

        self._inside = True
        try:
            return decoder_of(model, "exit").norm(hidden)
        finally:
            self._inside = False

    def _passes(self, logits: Any) -> Any:
        import torch

        probs = torch.softmax(logits.float(), dim=-1)
        if self.rule == "maxprob":
            return probs.max(dim=-1).values >= self.threshold
        if self.rule == "margin":
            top = probs.topk(2, dim=-1).values
            return top[:, 0] - top[:, 1] >= self.threshold
        return torch.special.entr(probs).sum(dim=-1) <= self.threshold

    def _after_layer(self, module: Any, args: tuple[Any, ...], output: Any) -> None:
        import torch

        if not self._active:
            return
        index = self._positions.get(id(module))
        if index is None or index == self.depth - 1 or index + 1 < self.min_layer:
            return
        model = self._model()
        hidden = output[0] if isinstance(output, tuple) else output
        if self._candidate is None:
            self._begin(hidden)
        where = (self._candidate & (self._exit == 0)).nonzero(as_tuple=True)
        if where[0].numel() == 0:
            return
        with torch.no_grad():
            rows = hidden[where]
            for start in range(0, rows.shape[0], _CHUNK):
                normed = self._norm(model, rows[start : start + _CHUNK])
                passed = self._passes(self._logits(model, normed))
                if not passed.any():
                    continue
                b, t = where[0][start : start + _CHUNK][passed], where[1][start : start + _CHUNK][passed]
                if self._normed is None:
                    shape = (*hidden.shape[:2], normed.shape[-1])
                    self._normed = torch.zeros(shape, dtype=normed.dtype, device=normed.device)
                self._exit[b, t] = index + 1
                self._normed[b, t] = normed[passed]

    def _after_norm(self, module: Any, args: tuple[Any, ...], output: Any) -> Any:
        if not self._active or self._inside or self._normed is None:
            return None
        exited = self._exit > 0
        out = output.clone()
        out[exited] = self._normed[exited].to(out.dtype)
        return out

    def _post(self, module: Any, args: tuple[Any, ...], output: Any) -> None:
        import torch

        try:
            if output is None or self._candidate is None:
                return
            candidate = self._candidate
            exits = torch.where(candidate & (self._exit == 0), self.depth, self._exit)
            self.last_exit_layers = torch.where(candidate, exits, 0).cpu()
            counted = candidate
            mask, (batch, length) = self._mask, candidate.shape
            if mask is not None and mask.ndim == 2 and mask.shape[0] == batch and mask.shape[1] >= length:
                counted = counted & mask[:, -length:].to(candidate.device).bool()  # the current tokens' columns
            chosen = exits[counted]
            self.counts += torch.bincount(chosen.cpu() - 1, minlength=self.depth)
            self.extra_heads += int((chosen.clamp(max=self.depth - 1) - self.min_layer + 1).clamp(min=0).sum())
        finally:
            self._active = False
            self._reset_pass()


def _check_head(model: Any, state: DynamicExit) -> None:
    """The dynamic exit builds each layer's logits as `head(norm(h))`; refuse a model whose own
    logits are not that of its last layer (a head with extra steps this code does not know)."""
    import torch

    decoder = decoder_of(model, "exit")
    device = next(model.parameters()).device
    captured: list[Any] = []
    handle = decoder.layers[-1].register_forward_hook(lambda m, a, o: captured.append(o[0] if isinstance(o, tuple) else o))
    try:
        with torch.no_grad():
            logits = model(input_ids=torch.arange(4, device=device)[None], use_cache=False).logits
            mine = state._logits(model, state._norm(model, captured[-1]))
    finally:
        handle.remove()
    if mine.shape != logits.shape or not torch.allclose(mine, logits, rtol=1e-4, atol=1e-4):
        raise HarnessError(
            f"exit:threshold: {type(model).__name__}'s logits are not lm_head(norm(last hidden state)), "
            "so its exit-layer logits cannot be built"
        )


def _costs(model: Any) -> dict[str, Any]:
    """The FLOPs per token that the report needs: the module tree's, one LM-head evaluation's, and
    the static exit's at each layer (the tree without the layers after it)."""

    tree = measure_cost(model).flops_per_token
    layers = [2.0 * matmul_weights(layer) for layer in decoder_of(model, "exit").layers]
    return {
        "tree": tree,
        "head": 2.0 * matmul_weights(head_module(model)),
        "static_at": [tree - sum(layers[e:]) for e in range(1, len(layers) + 1)],
    }


def install_dynamic_exit(model: Any, rule: str, threshold: float, min_layer: int = 1) -> Applied:

    if not hasattr(decoder_of(model, "exit"), "norm"):
        raise HarnessError(f"exit:threshold: {type(model).__name__}'s decoder has no final norm (model.model.norm)")
    state = DynamicExit(model, rule, threshold, min_layer)
    _check_head(model, state)
    decoder = decoder_of(model, "exit")
    for layer in decoder.layers:
        layer.register_forward_hook(state._after_layer)
    decoder.norm.register_forward_hook(state._after_norm)
    model.register_forward_pre_hook(state._pre, with_kwargs=True)
    model.register_forward_hook(state._post, always_call=True)
    model._harness_dynamic_exit = state  # for tests and inspection

    # Upper bound on the extra work: an LM head after every layer from min_layer (no token exits).
    extra = _costs(model)["head"] * max(0, state.depth - min_layer)

    def report() -> dict[str, Any]:
        counts = [int(c) for c in state.counts]
        tokens = sum(counts)
        if tokens == 0 or state.costs is None:
            return {
                "tokens": 0,
                "mean_exit_layer": None,
                "exit_share_by_layer": {},
                "executed_flops_per_token": None,
                "static_exit_flops_per_token": None,
            }
        costs = state.costs
        return {
            "tokens": tokens,
            "mean_exit_layer": sum((i + 1) * c for i, c in enumerate(counts)) / tokens,
            "exit_share_by_layer": {str(i + 1): c / tokens for i, c in enumerate(counts)},
            "executed_flops_per_token": costs["tree"] + costs["head"] * state.extra_heads / tokens,
            "static_exit_flops_per_token": sum(costs["static_at"][i] * c for i, c in enumerate(counts)) / tokens,
        }

    info = {
        "mode": "dynamic",
        "rule": rule,
        "threshold": threshold,
        "min_layer": min_layer,
        "depth": state.depth,
        "executes": "every decoder layer for every token, plus the LM head after each layer from min_layer "
        "until the token exits; the cost's flops_per_token is that with no token exiting early, the report the measured cost",
    }
    return Applied(info=info, report=report, extra_flops_per_token=extra)
