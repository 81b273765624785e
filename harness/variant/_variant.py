"""Variant: a base model with its wrappers, identified before it is ever loaded.

The identity (sha256 of the intervention record) is known from the weight hash, the wrapper
parameters, the sha256 of their artifacts and, for a plugin's wrapper, the plugin's name and
version alone, so cached results can be found, and a finished run replayed, without building the
model at all (a fitted artifact is fitted once, then cached).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from harness._util.files import sha256_file
from harness.models import LoadedModel, ResolvedModel, load_model
from harness.models.device import resolve_device
from harness.records._schema import AppliedRecord, BaseIdentity, CostRecord, InterventionRecord, WrapperRecord
from harness.spec._spec import VariantSpec
from harness.wrappers import WRAPPERS, Applied, canonical_text
from harness.wrappers._cost import measure_cost
from harness.wrappers._fitting import (
    ARTIFACT_PARAM,
    Fitted,
    cached_artifact,
    check_artifact,
    ensure_artifact,
    fit_params_of,
    header,
    read_sidecar,
)

COMPUTE_DTYPE = "float32"


@dataclass(frozen=True)
class Variant:
    spec: VariantSpec
    base: ResolvedModel

    @property
    def intervention(self) -> InterventionRecord:
        return self._interventions[-1]

    @property
    def identity(self) -> str:
        return self.intervention.identity()

    @cached_property
    def _interventions(self) -> list[InterventionRecord]:
        """The intervention record after 0, 1, ... all wrappers (a fit needs the model it applies to).
        Fitted artifacts are found, or fitted, here: their sha256 is part of the identity."""
        records: list[WrapperRecord] = []
        stages = [InterventionRecord(base=self._base_identity, wrappers=())]
        for index, (name, params) in enumerate(self.spec.resolved()):
            definition = WRAPPERS.get(name)
            artifacts = definition.artifacts(params) if definition.artifacts else {}
            if definition.fitter is not None:
                artifacts = {**artifacts, "fit": sha256_file(self._artifact(index, stages[-1]))}
            records.append(
                WrapperRecord(
                    name=name,
                    params={k: canonical_text(v) for k, v in params.items() if k != ARTIFACT_PARAM},
                    artifacts=artifacts,
                    plugin=definition.plugin,
                )
            )
            stages.append(InterventionRecord(base=self._base_identity, wrappers=tuple(records)))
        return stages

    @property
    def _base_identity(self) -> BaseIdentity:
        return BaseIdentity(
            weights_sha256=self.base.weights_sha256,
            format="gguf" if self.base.kind == "gguf" else "safetensors",
            dtype=COMPUTE_DTYPE,
        )

    def _artifact(self, index: int, before: InterventionRecord) -> Path:
        """The artifact of wrapper `index`: the one given (checked), else the cached fit, fitted now
        if missing, on the model as the wrappers before it leave it."""
        name, params = self.spec.resolved()[index]
        definition = WRAPPERS.get(name)
        model_identity = before.identity()
        fitter = definition.fitter
        assert fitter is not None  # only fitted wrappers have an artifact
        fit_params = fit_params_of(params, fitter.params)
        if params[ARTIFACT_PARAM] is not None:
            given = Path(params[ARTIFACT_PARAM])
            check_artifact(given, name, model_identity, fit_params)
            return given
        fitted_header = header(name, fit_params, model_identity, fitter.fit)
        path = cached_artifact(fitted_header, fitter.files(params))

        def fit() -> Fitted:
            prefix = Variant(VariantSpec(self.spec.model, self.spec.base, self.spec.wrappers[:index]), self.base)
            built = prefix.load(resolve_device("auto"))
            return fitter.fit(built.model, built.tokenizer, params)

        ensure_artifact(path, fit, fitted_header)
        return path

    def artifact_path(self, index: int) -> Path:
        """The fitted artifact of wrapper `index` (found, or fitted now)."""
        return self._artifact(index, self._interventions[index])

    def load(self, device: str) -> LoadedVariant:
        """Build the variant: a fresh copy of the base (never shared with another variant) with each
        wrapper applied in order, and what it costs."""
        loaded = load_model(self.base, device)
        applied: list[tuple[str, Applied]] = []
        for index, (name, params) in enumerate(self.spec.resolved()):
            if WRAPPERS.get(name).fitter is not None:
                params = {**params, ARTIFACT_PARAM: self._artifact(index, self._interventions[index])}
            applied.append((name, WRAPPERS.get(name).apply(loaded.model, loaded.tokenizer, params)))
        cost = measure_cost(loaded.model, sum(a.extra_flops_per_token for _, a in applied))
        return LoadedVariant(loaded, applied, cost)

    def fit_files(self) -> dict[str, str]:
        """Data files (path -> sha256) that the fits of this variant's artifacts read."""
        files: dict[str, str] = {}
        for name, params in self.spec.resolved():
            fitter = WRAPPERS.get(name).fitter
            if fitter is None:
                continue
            if params[ARTIFACT_PARAM] is not None:  # known without fitting, so a refusal costs no fit
                files.update(read_sidecar(Path(params[ARTIFACT_PARAM]))["data"]["files"])
            else:
                files.update(fitter.files(params))
        return files


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

    @property
    def scoring(self) -> Literal["log_softmax", "raw_sum"]:
        """How log-likelihoods are made of what the built model returns (see Applied.scoring)."""
        return "raw_sum" if any(a.scoring == "raw_sum" for _, a in self.applied) else "log_softmax"

    def applied_facts(self) -> list[dict[str, Any]]:
        """Each wrapper's facts chosen while applying (not what one evaluation measured), as they
        are kept with the variant's cached answers, so a run answered from the cache records them."""
        return [{"name": name, "info": a.info} for name, a in self.applied]

    def applied_records(self) -> tuple[AppliedRecord, ...]:
        """Each wrapper's facts, with what only evaluation measured (call after evaluating)."""
        return tuple(AppliedRecord(name=name, info={**a.info, **(a.report() if a.report else {})}) for name, a in self.applied)
