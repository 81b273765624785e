"""Variant: a base model with its wrappers, identified before it is ever loaded.

The identity (sha256 of the intervention record) is known from the weight hash and the wrapper
parameters alone, so cached results can be found, and a finished run replayed, without building the
model at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.models import LoadedModel, ResolvedModel, load_model
from harness.records import AppliedRecord, BaseIdentity, CostRecord, InterventionRecord, WrapperRecord
from harness.spec import VariantSpec
from harness.wrappers import WRAPPERS, Applied, canonical_text
from harness.wrappers._cost import measure_cost

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
            wrappers=tuple(
                WrapperRecord(
                    name=name,
                    params={k: canonical_text(v) for k, v in params.items()},
                    artifacts=definition.artifacts(params) if definition.artifacts else {},
                )
                for name, params in self.spec.resolved()
                for definition in [WRAPPERS.get(name)]
            ),
        )

    @property
    def identity(self) -> str:
        return self.intervention.identity()

    def load(self, device: str) -> LoadedVariant:
        """Build the variant: a fresh copy of the base (never shared with another variant) with each
        wrapper applied in order, and what it costs."""
        loaded = load_model(self.base, device)
        applied: list[tuple[str, Applied]] = []
        for name, params in self.spec.resolved():
            applied.append((name, WRAPPERS.get(name).apply(loaded.model, loaded.tokenizer, params)))
        cost = measure_cost(loaded.model, sum(a.extra_flops_per_token for _, a in applied))
        return LoadedVariant(loaded, applied, cost)


@dataclass
class LoadedVariant:
    """A built variant: the model (with its tokenizer and load facts) and what its wrappers did."""

    loaded: LoadedModel
    applied: list[tuple[str, Applied]] = field(default_factory=list)
    cost: CostRecord | None = None

    @property
    def model(self) -> Any:
        return self.loaded.model

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    @property
    def seconds(self) -> float:
        return self.loaded.seconds

    @property
    def converted(self) -> bool:
        return self.loaded.converted

    def applied_records(self) -> tuple[AppliedRecord, ...]:
        """Each wrapper's facts, with what only evaluation measured (call after evaluating)."""
        return tuple(
            AppliedRecord(name=name, info={**a.info, **(a.report() if a.report else {})}) for name, a in self.applied
        )
