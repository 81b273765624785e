"""Round-to-nearest weight quantization (quantize-dequantize in float) and the module plumbing the
quantize wrappers share: finding the decoder's linear layers, untying a tied head, stored bytes.

Formats, per group of `group` consecutive input columns of one output row (group 0: the whole row):
- asymmetric (`sym=false`, the default): codes q in 0..2^b-1, value = (q - z)*d, with the step
  d = (hi - lo)/(2^b-1) over the group's range widened to hold 0 (lo = min(w, 0), hi = max(w, 0))
  stored as float16 and the integer zero point z = round(-lo/d) stored in b bits (GPTQ's layout):
  2^b levels spanning the group's range, 0 among them exactly. Stored: b bits per weight + a
  2-byte step and a b-bit zero point per group.
- symmetric (`sym=true`): codes q in -(2^(b-1)-1)..2^(b-1)-1, value = q*d, d = max|w|/(2^(b-1)-1)
  stored as float16: 2^b-1 levels mirrored around 0 (ternary at 2 bits). Stored: b bits per weight
  + a 2-byte step per group.
The float16 rounding of d is applied before dequantizing, so the float simulation holds exactly
the values the stored format decodes to. A row whose length is not a multiple of the group ends in
one shorter group.

Torch is imported inside functions only: `import harness.wrappers` must stay fast.
"""

from __future__ import annotations

import math
from typing import Any

from harness.errors import HarnessError

_FP16_TINY = 2.0**-24  # the smallest positive float16 (subnormal)
_FP16_MAX = 65504.0


def _fp16(t: Any) -> Any:
    """Values as float16 stores them, back in float32."""
    return t.clamp(-_FP16_MAX, _FP16_MAX).half().float()


def fake_quant(weight: Any, bits: int, group: int, sym: bool) -> Any:
    """`weight` [out, in] quantized to `bits` per group and dequantized, as a new float32 tensor."""
    import torch

    w = weight.detach().float()
    rows, cols = w.shape
    size = cols if group == 0 else group
    pad = (-cols) % size
    # Pad a ragged last group with copies of its own last column: its range stays its own.
    x = torch.cat([w, w[:, -1:].expand(rows, pad)], dim=1) if pad else w
    x = x.reshape(rows, -1, size)
    if sym:
        qmax = 2 ** (bits - 1) - 1
        step = _fp16(x.abs().amax(-1, keepdim=True) / qmax).clamp_min(_FP16_TINY)
        out = torch.clamp(torch.round(x / step), -qmax, qmax) * step
    else:
        qmax = 2**bits - 1
        low = x.amin(-1, keepdim=True).clamp_max(0.0)
        step = _fp16((x.amax(-1, keepdim=True).clamp_min(0.0) - low) / qmax).clamp_min(_FP16_TINY)
        zero = torch.clamp(torch.round(-low / step), 0, qmax)
        out = (torch.clamp(torch.round(x / step) + zero, 0, qmax) - zero) * step
    return out.reshape(rows, -1)[:, :cols].to(weight.dtype)


def stored_bytes(rows: int, cols: int, bits: int, group: int, sym: bool) -> int:
    """Bytes of a [rows, cols] weight as stored: the codes and (asymmetric) the zero points, packed
    at `bits` each, and a float16 step per group."""
    groups = rows * (1 if group == 0 else math.ceil(cols / group))
    return math.ceil(bits * (rows * cols + (0 if sym else groups)) / 8) + 2 * groups


_LAYER_PATHS = ("model.layers", "model.decoder.layers", "model.language_model.layers", "transformer.h", "gpt_neox.layers")


def decoder_layers(model: Any, wrapper: str) -> list[Any]:
    """The decoder's blocks, in order."""
    for path in _LAYER_PATHS:
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None and len(obj) > 0:
            return list(obj)
    raise HarnessError(f"{wrapper}: cannot find the decoder layers of {type(model).__name__}")


def layer_linears(layers: list[Any], wrapper: str) -> list[list[tuple[str, Any]]]:
    """Each decoder layer's float nn.Linear modules (q/k/v/o, gate/up/down for Llama), by name."""
    from torch import nn

    found = [[(n, m) for n, m in layer.named_modules() if isinstance(m, nn.Linear)] for layer in layers]
    for index, linears in enumerate(found):
        if not linears:
            raise HarnessError(f"{wrapper}: decoder layer {index} has no float linear layers (already quantized?)")
    return found


def untie_head(model: Any) -> Any:
    """The output head with a weight of its own: a tied head (sharing the input embeddings'
    Parameter) gets a clone, and the config says the two are no longer tied."""
    from torch import nn

    head = model.get_output_embeddings()
    embeddings = model.get_input_embeddings()
    if head is None or not isinstance(head, nn.Linear):
        raise HarnessError(f"cannot find the float output head (lm_head) of {type(model).__name__}")
    if embeddings is not None and head.weight.data_ptr() == embeddings.weight.data_ptr():
        head.weight = nn.Parameter(head.weight.detach().clone(), requires_grad=head.weight.requires_grad)
    for config in {id(c): c for c in (model.config, _text_config(model.config))}.values():
        if hasattr(config, "tie_word_embeddings"):
            config.tie_word_embeddings = False
    return head


def _text_config(config: Any) -> Any:
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def quantize_linear(linear: Any, bits: int, group: int, sym: bool) -> int:
    """Replace `linear`'s weight values by their quantized values (same Parameter) and declare
    the bytes it takes as stored; returns how many values changed (0: the weights already lay on
    this grid)."""
    import torch

    with torch.no_grad():
        quantized = fake_quant(linear.weight, bits, group, sym)
        changed = int((quantized != linear.weight).sum())
        linear.weight.copy_(quantized)
    rows, cols = linear.weight.shape
    linear.harness_weight_bytes = stored_bytes(rows, cols, bits, group, sym)
    return changed
