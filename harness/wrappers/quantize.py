"""Quantized variants: `quantize` (round-to-nearest weights, uniform or mixed precision per layer)
and `dynamic_int8` (torch's dynamic int8 linear layers).

`quantize` quantizes the linear layers of every decoder layer (q/k/v/o and gate/up/down for Llama;
the output head too with `lm_head=true`) to `bits` per weight, per group of `group` input columns,
and dequantizes them in place (fake quant: the model still computes in float32, with exactly the
values the stored format decodes to). Each quantized module declares its bytes as stored
(`harness_weight_bytes`; formats in harness.wrappers._quant). Norms and embeddings are not touched;
a tied head is untied before it is quantized, so the input embeddings keep their values.

`bits` is one of three things:
- a width, 2, 3, 4 or 8, for every layer (`bits=4`);
- a per-layer map, `WIDTH@FIRST-LAST,...` covering every decoder layer exactly once
  (`bits=8@0-8,4@9-20,8@21-29`); checked for form, gaps and overlaps when the spec is parsed, and
  against the model's layer count when applied;
- a set of widths to choose from, `bits=4/8` or `bits=3/4/8`, with `budget=AVERAGE_BITS`: each
  layer's width is chosen from the set by its sensitivity (`score=taylor|pruning`) so that the
  average width over the decoder's linear weights stays within the budget (harness.wrappers.
  _sensitivity documents the scores, the calibration text and the choice).
With `lm_head=true` the head takes the widest width in use.

Defaults: 4 bits, groups of 64 (they divide SmolLM2's 576 and 1536 input widths; 128 leaves a short
last group on 576), asymmetric with an integer zero point (GPTQ's layout): its 2^b levels span each
group's own range with 0 among them, where symmetric levels span +-max|w| with 2^b-1 levels; it
gave the lowest perplexity of the layouts compared (docs/wrappers/quantize.md).

`dynamic_int8` is its own wrapper (it shares no parameter with `quantize` but `lm_head`):
torch.ao.quantization.quantize_dynamic replaces the decoder's linear layers (and the head with
`lm_head=true`) by int8 ones, weights quantized per output channel and symmetric, activations
quantized per call at run time, per tensor and (torch's kernels fix it) in 7 bits. It computes on
the CPU only, and really runs faster; but per-tensor activations cannot hold a model's outlier
activations (SmolLM2's down_proj inputs among them), so it costs far more accuracy than 8-bit
weights with float activations (docs/wrappers/quantize.md has the measurements).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.wrappers import Applied, Param, register_wrapper

if TYPE_CHECKING:
    from harness.models.shape import ModelShape

WIDTHS = (2, 3, 4, 8)
_FORMS = "a width (2, 3, 4 or 8), a per-layer map like 8@0-8,4@9-29, or a set like 4/8"


@dataclass(frozen=True)
class BitMap:
    """A width per decoder layer, as runs (width, first, last) covering 0..n-1, merged."""

    runs: tuple[tuple[int, int, int], ...]

    def __str__(self) -> str:
        return ",".join(f"{w}@{a}" if a == b else f"{w}@{a}-{b}" for w, a, b in self.runs)

    @property
    def n_layers(self) -> int:
        return self.runs[-1][2] + 1

    def per_layer(self) -> list[int]:
        return [w for w, a, b in self.runs for _ in range(a, b + 1)]

    @classmethod
    def of(cls, widths: list[int]) -> BitMap:
        runs: list[tuple[int, int, int]] = []
        for index, width in enumerate(widths):
            if runs and runs[-1][0] == width:
                runs[-1] = (width, runs[-1][1], index)
            else:
                runs.append((width, index, index))
        return cls(tuple(runs))


@dataclass(frozen=True)
class BitSet:
    """Widths to choose from per layer under a budget."""

    widths: tuple[int, ...]

    def __str__(self) -> str:
        return "/".join(map(str, self.widths))


def _width(text: str) -> int:
    try:
        width = int(text.strip())
    except ValueError:
        raise ValueError(f"expected {_FORMS}") from None
    if width not in WIDTHS:
        raise ValueError(f"width {width} is not one of 2, 3, 4, 8")
    return width


def _layer_index(text: str, item: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"{item!r} is not WIDTH@FIRST-LAST with layer indices 0, 1, ...")
    return int(text)


def _span(noun: str, first: int, last: int) -> str:
    return f"{noun} {first}" if first == last else f"{noun}s {first}-{last}"


def _parse_map(text: str) -> BitMap:
    runs = []
    for item in (part.strip() for part in text.split(",")):
        width_text, at, span = item.partition("@")
        if not at:
            raise ValueError(f"{item!r} is not WIDTH@FIRST-LAST")
        if not width_text.strip().isdigit():
            raise ValueError(f"{item!r}: the width is not a whole number")
        width = _width(width_text)
        first_text, dash, last_text = span.partition("-")
        first = _layer_index(first_text, item)
        last = _layer_index(last_text, item) if dash else first
        if last < first:
            raise ValueError(f"{item!r}: the range runs backwards")
        runs.append((first, last, width, item))
    runs.sort()
    widths: list[int] = []
    previous = ""
    for first, last, width, item in runs:
        if first < len(widths):
            raise ValueError(f"layer {first} is given twice ({previous} and {item})")
        if first > len(widths):
            raise ValueError(f"{_span('layer', len(widths), first - 1)} not covered")
        widths.extend([width] * (last - first + 1))
        previous = item
    return BitMap.of(widths)


def width_map_or_set(text: str) -> int | BitMap | BitSet:
    """`bits`: a width, a per-layer map (`8@0-8,4@9-29`) or a set to choose from (`4/8`)."""
    text = text.strip()
    if "@" in text:
        return _parse_map(text)
    if "/" in text:
        widths = tuple(sorted({_width(part) for part in text.split("/")}))
        if len(widths) < 2:
            raise ValueError("a set of widths needs two or more different widths")
        return BitSet(widths)
    return _width(text)


def float_or_none(text: str) -> float | None:
    """`budget`: an average number of bits per weight between 2 and 8, or none."""
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 2 <= value <= 8:
        raise ValueError("expected an average number of bits between 2 and 8, or none")
    return value


def _check(values: dict[str, Any]) -> None:
    bits, budget = values["bits"], values["budget"]
    if isinstance(bits, BitSet):
        if budget is None:
            raise HarnessError(f"quantize:bits={bits}: a set of widths needs budget=AVERAGE_BITS to choose from it")
        if not bits.widths[0] <= budget <= bits.widths[-1]:
            raise HarnessError(f"quantize:budget={budget!r}: must lie between the narrowest and widest width of bits={bits}")
    elif budget is not None:
        raise HarnessError(
            f"quantize:budget={budget!r}: needs bits to be a set of widths to choose from (bits=4/8, bits=3/4/8), not bits={bits}"
        )


def _artifacts(values: dict[str, Any]) -> dict[str, str]:
    if values["budget"] is None:
        return {}
    from harness.wrappers._sensitivity import calibration_sha256

    return {"calibration": calibration_sha256()}


_PARAMS = (
    Param("bits", width_map_or_set, 4, f"bits per weight: {_FORMS} (with budget)"),
    Param("group", int, 64, "input columns per quantization group; 0: one group per output row", choices=(0, 32, 64, 128)),
    Param("sym", bool, False, "symmetric levels around 0 (no stored zero point)"),
    Param("lm_head", bool, False, "quantize the output head too (untied first), at the widest width in use"),
    Param("budget", float_or_none, None, "average bits per weight when bits is a set of widths"),
    Param(
        "score",
        str,
        "taylor",
        "layer sensitivity under a budget: |gradient x error| or pruning perplexity change",
        choices=("pruning", "taylor"),
    ),
)


def _layer_widths(bits: Any, n_layers: int) -> list[int]:
    if isinstance(bits, int):
        return [bits] * n_layers
    if bits.n_layers > n_layers:
        raise HarnessError(
            f"quantize:bits={bits}: {_span('layer', n_layers, bits.n_layers - 1)} out of range:"
            f" the model has {n_layers} decoder layers (0-{n_layers - 1})"
        )
    if bits.n_layers < n_layers:
        raise HarnessError(
            f"quantize:bits={bits}: {_span('layer', bits.n_layers, n_layers - 1)} of the model's {n_layers} decoder layers not covered"
        )
    return bits.per_layer()


def _quantize_fits(params: dict[str, Any], shape: ModelShape, device: str) -> None:
    if isinstance(params["bits"], BitMap):
        _layer_widths(params["bits"], shape.depth)


@register_wrapper(
    "quantize",
    doc="round-to-nearest weight quantization of the decoder's linear layers (uniform, per-layer map or budget)",
    params=_PARAMS,
    check=_check,
    artifacts=_artifacts,
    model_check=_quantize_fits,
)
def apply_quantize(model: Any, tokenizer: Any, params: dict[str, Any]) -> Applied:
    from harness.wrappers import _quant

    layers = _quant.decoder_layers(model, "quantize")
    linears = _quant.layer_linears(layers, "quantize")
    numels = [sum(m.weight.numel() for _, m in layer) for layer in linears]
    bits, group, sym = params["bits"], params["group"], params["sym"]
    info: dict[str, Any] = {}
    artifacts: dict[str, str] = {}
    if isinstance(bits, BitSet):
        from harness.wrappers import _sensitivity

        score = params["score"]
        found = _sensitivity.layer_sensitivity(model, tokenizer, linears, score, bits.widths, group, sym)
        costs = _sensitivity.damage(score, found["scores"], bits.widths)
        widths = _sensitivity.choose_widths(costs, numels, bits.widths, params["budget"])
        artifacts = {"calibration": found["key"]["calibration"]["sha256"]}
        info.update(
            score=score,
            budget=params["budget"],
            sensitivity=found["scores"],
            calibration=found["key"]["calibration"],
            calibration_perplexity=round(found["base_perplexity"], 4),
            sensitivity_seconds=found["seconds"],
            sensitivity_cached=found["cached"],
        )
    else:
        widths = _layer_widths(bits, len(layers))
    quantized = stored = changed = 0
    for width, layer in zip(widths, linears, strict=True):
        for _, linear in layer:
            changed += _quant.quantize_linear(linear, width, group, sym)
            quantized += linear.weight.numel()
            stored += linear.harness_weight_bytes
    head_bits = max(widths) if params["lm_head"] else None
    if head_bits is not None:
        head = _quant.untie_head(model)
        changed += _quant.quantize_linear(head, head_bits, group, sym)
        quantized += head.weight.numel()
        stored += head.harness_weight_bytes
    info = {
        "mode": "rtn",
        "bits_by_layer": widths,
        "bits_map": str(BitMap.of(widths)),
        "average_bits": round(sum(w * n for w, n in zip(widths, numels, strict=True)) / sum(numels), 4),
        "lm_head_bits": head_bits,
        "stored_bits_per_weight": round(8 * stored / quantized, 4),
        "quantized_weights": quantized,
        "changed_fraction": round(changed / quantized, 6),
        **info,
    }
    return Applied(artifacts=artifacts, info=info)


def _on_cpu(device: str) -> None:
    if device != "cpu":
        raise HarnessError(f"dynamic_int8 computes on the CPU only (torch's dynamic int8 kernels), not {device}; use --device cpu")


@register_wrapper(
    "dynamic_int8",
    doc="torch dynamic int8 linear layers in the decoder (per-channel weights, activations at run time; CPU only)",
    params=(Param("lm_head", bool, False, "the output head too (untied first)"),),
    model_check=lambda params, shape, device: _on_cpu(device),
)
def apply_dynamic_int8(model: Any, tokenizer: Any, params: dict[str, Any]) -> Applied:
    import torch

    from harness.wrappers import _quant

    _on_cpu(str(next(model.parameters()).device))
    layers = _quant.decoder_layers(model, "dynamic_int8")
    linears = _quant.layer_linears(layers, "dynamic_int8")
    names = {id(module): name for name, module in model.named_modules()}
    targets = [names[id(m)] for layer in linears for _, m in layer]
    if params["lm_head"]:
        targets.append(names[id(_quant.untie_head(model))])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(torch\.ao\.quantization is deprecated|quantized tensor creation).*")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        quantize_dynamic(model, {name: per_channel_dynamic_qconfig for name in targets}, dtype=torch.qint8, inplace=True)
    modules = dict(model.named_modules())
    stored = weights = 0
    for name in targets:
        module = modules[name]
        rows, cols = module.out_features, module.in_features
        bias = module.bias()
        # int8 codes, a float32 scale per output row (zero points are 0: symmetric), the float bias
        module.harness_weight_bytes = rows * cols + 4 * rows + (0 if bias is None else 4 * bias.numel())
        module.harness_packed_parameters = rows * cols + (0 if bias is None else bias.numel())
        module.harness_matmul_weights = rows * cols
        stored += module.harness_weight_bytes
        weights += rows * cols
    return Applied(
        info={
            "mode": "dynamic_int8",
            "bits_by_layer": [8] * len(layers),
            "average_bits": 8.0,
            "lm_head_bits": 8 if params["lm_head"] else None,
            "stored_bits_per_weight": round(8 * stored / weights, 4),
            "quantized_weights": weights,
            "engine": torch.backends.quantized.engine,
        }
    )
