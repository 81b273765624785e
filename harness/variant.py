"""Variant: a base model with its wrappers, identified before it is ever loaded.

The identity (sha256 of the intervention record) is known from the weight hash and the wrapper
parameters alone, so cached results can be found, and a finished run replayed, without building the
model at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.models import LoadedModel, ResolvedModel, load_model
from harness.records import BaseIdentity, InterventionRecord, WrapperRecord
from harness.spec import VariantSpec
from harness.wrappers import WRAPPERS

COMPUTE_DTYPE = "float32"


@dataclass(frozen=True)
class Variant:
    spec: VariantSpec
    base: ResolvedModel

    @property
    def intervention(self) -> InterventionRecord:
        return InterventionRecord(
            base=BaseIdentity(
                weights_sha256=self.base.weights_sha256,
                format="gguf" if self.base.kind == "gguf" else "safetensors",
                dtype=COMPUTE_DTYPE,
            ),
            wrappers=tuple(WrapperRecord(name=w.name, params=dict(w.params)) for w in self.spec.wrappers),
        )

    @property
    def identity(self) -> str:
        return self.intervention.identity()

    def load(self, device: str) -> LoadedModel:
        """Build the variant: a fresh copy of the base with each wrapper applied in order."""
        loaded = load_model(self.base, device)
        for wrapper in self.spec.wrappers:
            WRAPPERS.get(wrapper.name).apply(loaded.model, loaded.tokenizer, dict(wrapper.params))
        return loaded
