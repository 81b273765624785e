"""Model anatomy: where a decoder's layers, final norm and LM head are, and how to cut its depth.

Shared by the depth wrappers, the dynamic exit, the decoding and steering wrappers, the unit
wrappers and RegMean.
"""

from __future__ import annotations

import re
from typing import Any

from harness.errors import HarnessError


class LayerList(tuple[int, ...]):
    """Decoder layer indices (from 0), sorted and distinct; its text is the canonical ranges form
    (`3,5,7-9`), which is what enters the variant's identity."""

    def __str__(self) -> str:
        parts: list[str] = []
        start = prev = None
        for n in self:
            if prev is not None and n == prev + 1:
                prev = n
                continue
            if start is not None:
                parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = n
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        return ",".join(parts)

    def __repr__(self) -> str:
        return str(self)


_MAX_INDEX = 9999
_PIECE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def layer_list(text: str) -> LayerList:
    """`16-22`, `3,5,7-9` -> the layer indices (ValueError with the reason otherwise)."""
    numbers: set[int] = set()
    for piece in text.split(","):
        match = _PIECE.match(piece)
        if not match:
            raise ValueError(f"bad layer range {piece.strip()!r}: expected layer indices like 16-22 or 3,5,7-9")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise ValueError(f"bad layer range {piece.strip()!r}: its end is before its start")
        if last > _MAX_INDEX:
            raise ValueError(f"layer {last} is beyond any model's depth")
        for n in range(first, last + 1):
            if n in numbers:
                raise ValueError(f"layer {n} given twice")
            numbers.add(n)
    return LayerList(sorted(numbers))


def decoder_of(model: Any, wrapper: str) -> Any:
    """The module holding the decoder layers (`.layers`) and the final norm (`.norm`)."""
    from torch import nn

    decoder = getattr(model, "model", None)
    if not isinstance(getattr(decoder, "layers", None), nn.ModuleList) and hasattr(model, "get_decoder"):
        decoder = model.get_decoder()
    if not isinstance(getattr(decoder, "layers", None), nn.ModuleList):
        raise HarnessError(
            f"{wrapper}: {type(model).__name__} has no list of decoder layers (model.model.layers); "
            "depth wrappers support Llama-style decoders"
        )
    return decoder


def _configs(model: Any) -> list[Any]:
    """Every distinct config object the model's modules hold that has a depth."""
    seen: dict[int, Any] = {}
    candidates = [getattr(m, "config", None) for m in model.modules()]
    top = getattr(model, "config", None)
    if top is not None and hasattr(top, "get_text_config"):
        candidates.append(top.get_text_config(decoder=True))
    for config in candidates:
        if config is not None and hasattr(config, "num_hidden_layers"):
            seen.setdefault(id(config), config)
    return list(seen.values())


_PER_LAYER_LISTS = ("layer_types", "mlp_layer_types")


def keep_layers(model: Any, keep: list[int], wrapper: str) -> None:
    """Keep only the decoder layers at the 0-based positions `keep` (in order): drop the others
    from the module tree, renumber the kept ones (the KV cache is indexed by `layer_idx`) and cut
    the config's depth and per-layer lists to match."""
    from torch import nn

    decoder = decoder_of(model, wrapper)
    depth = len(decoder.layers)
    configs = [c for c in _configs(model) if c.num_hidden_layers == depth]
    for config in configs:
        if getattr(config, "is_heterogeneous", False):
            raise HarnessError(f"{wrapper}: models with per-layer configs are not supported")
        if getattr(config, "kv_sharing_modes", None) is not None or getattr(config, "num_kv_shared_layers", None):
            raise HarnessError(f"{wrapper}: models whose layers share keys and values are not supported")
    kept = [decoder.layers[i] for i in keep]
    for position, layer in enumerate(kept):
        for module in layer.modules():
            index = getattr(module, "layer_idx", None)
            if isinstance(index, int) and not isinstance(index, bool):
                module.layer_idx = position
    decoder.layers = nn.ModuleList(kept)
    for config in configs:
        for name in _PER_LAYER_LISTS:
            values = getattr(config, name, None)
            if values is not None and len(values) == depth:
                setattr(config, name, [values[i] for i in keep])
        config.num_hidden_layers = len(kept)


def matmul_weights(module: Any) -> int:
    """Weights used per token by the linear maps in `module` (as harness.wrappers._cost counts)."""
    from torch import nn

    total = 0
    for m in module.modules():
        if isinstance(m, nn.Linear):
            total += m.weight.numel()
        else:
            total += getattr(m, "harness_matmul_weights", 0)
    return total


def head_module(model: Any) -> Any:
    head = getattr(model, "lm_head", None)
    return head if head is not None else model.get_output_embeddings()


def softcap(model: Any) -> float | None:
    config = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    return getattr(config, "final_logit_softcapping", None)
