"""Depth: early exit (static and dynamic) and layer skipping.

Layers are counted and indexed as Hugging Face does: `exit:layer=E` runs the first E decoder layers
(E from 1), and `skip:layers=...` names layer indices from 0, like quantize's per-layer bit map and
`model.model.layers[i]`, so `exit:layer=12` and `skip:layers=12-29` are the same 30-layer cut. Both
apply to the model as it stands when the wrapper applies (after any earlier wrapper in the string).

- `exit:layer=E` runs the first E decoder layers, then the model's final norm and LM head (a
  LayerSkip-style static exit). The other layers are removed from the model: the module tree, hence
  the parameter count and FLOPs, is that of the shallower model, and the config's depth
  (`num_hidden_layers`, `layer_types`) is cut to match, so the KV cache has one entry per kept layer.
- `exit:threshold=T[,rule=maxprob|margin|entropy][,min_layer=M]` exits per token: after each layer
  the token's logits there, `lm_head(norm(h))` with the model's own norm and head, are tested, and
  the token takes the logits of the first layer that passes (`maxprob`: top-1 probability >= T;
  `margin`: top-1 minus top-2 probability >= T; `entropy`: entropy of the next-token distribution,
  in nats, <= T), else those of the last layer. No token exits before layer M (default 1): the
  early layers of a model not trained for early exit can be confidently wrong (docs/wrappers/depth.md).
  Every token's hidden state still goes through every layer, so later tokens attend to full-depth
  keys and values; hence a token's logits are exactly those the static exit at its layer gives, in
  scoring and for every generated token alike. What it executes is therefore every layer plus the
  LM head after each layer from M on until the token exits: more than the base, not less. Its cost's
  `flops_per_token` counts that with no token exiting early (an upper bound); the report (after
  evaluation) adds the measured `executed_flops_per_token`, the `mean_exit_layer` (an exit at layer
  E: after E layers, as `exit:layer=E`), `exit_share_by_layer` (E -> share of tokens) and
  `static_exit_flops_per_token`, the mean cost of the static exits the tokens chose: the saving an
  exit that also skipped the remaining layers could reach, not a measured one. Statistics cover
  every position whose logits the model produced since it was built, except positions a 2-D
  attention mask marks as padding.
- `skip:layers=16-22` (or `3,5,7-9`) removes those layers: the residual stream passes them
  unchanged, as in "Do language models use their depth efficiently?" (Csordas et al., 2025). The
  kept layers are renumbered and the config's depth cut, so the KV cache stays consistent.

Supported models: decoders whose layers are a `layers` list on the model's decoder
(`model.model.layers`: Llama, Mistral, Qwen, Gemma 3 ...), with homogeneous configs and no KV
sharing between layers. Anything else is refused at apply time with one line.
"""

from __future__ import annotations

import math
from typing import Any

from harness.errors import HarnessError
from harness.wrappers import Applied, Param, register_wrapper
from harness.wrappers._anatomy import LayerList, decoder_of, keep_layers, layer_list
from harness.wrappers._exit_dynamic import install_dynamic_exit

RULES = ("maxprob", "margin", "entropy")


# --- exit -----------------------------------------------------------------------------------------


def _check_exit(values: dict[str, Any]) -> None:
    layer, threshold, rule = values["layer"], values["threshold"], values["rule"]
    if layer is not None and threshold is not None:
        raise HarnessError("exit: give layer= (a static exit) or threshold= (a dynamic exit), not both")
    if layer is None and threshold is None:
        raise HarnessError("exit: needs layer=N (run the first N layers) or threshold=T (a dynamic exit)")
    if layer is not None and rule != "maxprob":
        raise HarnessError(f"exit:rule={rule}: a rule applies only to a dynamic exit (threshold=...)")
    if layer is not None and values["min_layer"] != 1:
        raise HarnessError(f"exit:min_layer={values['min_layer']}: applies only to a dynamic exit (threshold=...)")
    if threshold is not None:
        if not math.isfinite(threshold):
            raise HarnessError(f"exit:threshold={threshold!r}: must be a finite number")
        if rule in ("maxprob", "margin") and threshold > 1:
            raise HarnessError(f"exit:threshold={threshold!r}: must be <= 1 for rule={rule} (a probability)")


def _exit_depth(params: dict[str, Any], depth: int) -> int:
    """The depth after the exit, refused unless its layers lie within the model's `depth`."""
    if params["threshold"] is not None:
        if params["min_layer"] > depth:
            raise HarnessError(f"exit:min_layer={params['min_layer']}: the model has {depth} decoder layers")
        return depth
    if params["layer"] > depth:
        raise HarnessError(f"exit:layer={params['layer']}: the model has {depth} decoder layers")
    return params["layer"]


@register_wrapper(
    "exit",
    doc="early exit: run the first `layer` decoder layers, or exit per token at the first layer "
    "whose own LM-head prediction passes `threshold` under `rule`",
    params=(
        Param("layer", int, None, "static exit: how many decoder layers to run, then the norm and LM head", minimum=1),
        Param("threshold", float, None, "dynamic exit: the rule's threshold (a probability, or entropy in nats)", minimum=0.0),
        Param("rule", str, "maxprob", "dynamic exit: maxprob >= T, top1-top2 margin >= T, or entropy <= T", choices=RULES),
        Param("min_layer", int, 1, "dynamic exit: the earliest exit, in layers run", minimum=1),
    ),
    check=_check_exit,
    model_check=lambda params, shape, device: shape.with_depth(_exit_depth(params, shape.depth)),
)
def apply_exit(model: Any, tokenizer: Any, params: dict[str, Any]) -> Applied:
    depth = len(decoder_of(model, "exit").layers)
    _exit_depth(params, depth)
    if params["threshold"] is not None:
        return install_dynamic_exit(model, params["rule"], params["threshold"], params["min_layer"])
    layer = params["layer"]
    keep_layers(model, list(range(layer)), "exit")
    return Applied(info={"mode": "static", "layers_run": layer, "depth_before": depth})


# --- skip -----------------------------------------------------------------------------------------


def _check_skip(values: dict[str, Any]) -> None:
    if values["layers"] is None:
        raise HarnessError("skip: needs layers=... (indices of decoder layers to drop, from 0: 16-22 or 3,5,7-9)")


def _skip_depth(params: dict[str, Any], depth: int) -> int:
    """The depth after the skip, refused unless the layers skipped are some of the model's `depth`."""
    skipped: LayerList = params["layers"]
    beyond = [n for n in skipped if n >= depth]
    if beyond:
        raise HarnessError(f"skip:layers={skipped}: the model has {depth} decoder layers, 0-{depth - 1} (no layer {beyond[0]})")
    if len(skipped) == depth:
        raise HarnessError(f"skip:layers={skipped}: that is every decoder layer of the model")
    return depth - len(skipped)


@register_wrapper(
    "skip",
    doc="drop decoder layers (the residual stream passes them unchanged)",
    params=(Param("layers", layer_list, None, "indices of the decoder layers to drop, from 0: 16-22 or 3,5,7-9"),),
    check=_check_skip,
    model_check=lambda params, shape, device: shape.with_depth(_skip_depth(params, shape.depth)),
)
def apply_skip(model: Any, tokenizer: Any, params: dict[str, Any]) -> Applied:
    skipped: LayerList = params["layers"]
    depth = len(decoder_of(model, "skip").layers)
    _skip_depth(params, depth)
    keep_layers(model, [i for i in range(depth) if i not in skipped], "skip")
    return Applied(info={"layers_skipped": list(skipped), "depth_before": depth, "depth_after": depth - len(skipped)})
