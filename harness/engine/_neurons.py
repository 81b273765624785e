"""`harness neurons`: read MLP neurons through the LM head to find a concept's neuron to clamp.

    harness neurons --model smollm2-135m-instruct --layer 20 --top 10 --concept " dog"
    harness eval --model "smollm2-135m-instruct+clamp:layer=20,neuron=I,value=V" ...

The decoding itself is harness.wrappers.units.top_neuron_tokens; this loads the model (any model
string, wrappers included) and hands it over.
"""

from __future__ import annotations

from typing import Any

from harness.models import resolve_model
from harness.models.device import resolve_device
from harness.spec._spec import VariantSpec
from harness.variant._variant import Variant
from harness.wrappers.units import top_neuron_tokens


def list_neurons(model: str, layer: int, top: int, concept: str | None, tokens: int, device: str) -> list[dict[str, Any]]:
    """The `top` neurons of MLP layer `layer` (the first ones, or the concept's best), each with its
    top `tokens` decoded tokens."""

    spec = VariantSpec.parse(model)
    built = Variant(spec, resolve_model(spec.base)).load(resolve_device(device))
    return top_neuron_tokens(built.model, built.tokenizer, layer, top, tokens_per_neuron=tokens, concept=concept)
