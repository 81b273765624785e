"""Wrapper types and their registry: what a family module, or a user's plugin, declares with
`@register_wrapper` (public as `harness.register_wrapper`).

The registry fills itself on first use by importing the families (harness.wrappers.FAMILIES) and
then the plugins of the entry-point group `harness.wrappers` (harness._util.plugins), so importing a
family (or this module) never imports the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from harness._util.plugins import distribution_of
from harness._util.registry import Registry
from harness.wrappers._fitting import ARTIFACT_PARAM, FitFn
from harness.wrappers._params import Param, resolve

if TYPE_CHECKING:
    from harness.models.shape import ModelShape


@dataclass(frozen=True)
class WrapperSpec:
    """One `+WRAPPER:key=value,...` segment of a model string, as written."""

    name: str
    params: tuple[tuple[str, str], ...] = ()


@dataclass
class Applied:
    """What applying a wrapper did, for the run record."""

    artifacts: dict[str, str] = field(default_factory=dict)
    """Artifact name -> sha256 (steering vectors, calibration data, merge sources)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Facts chosen while applying (a per-layer bit map, the layers kept), JSON-serialisable."""
    report: Callable[[], dict[str, Any]] | None = None
    """Called after evaluation, for what only evaluation measures (mean exit layer)."""
    extra_flops_per_token: float = 0.0
    """FLOPs per token executed beyond the module tree's matrix multiplies (a dynamic exit's
    per-layer LM-head evaluations: an upper bound), added to what the tree implies."""
    scoring: Literal["log_softmax", "raw_sum"] = "log_softmax"
    """How a log-likelihood is made of the scores the model now returns: lm-eval's log-softmax, or
    `raw_sum`, the returned scores summed as they are (a decoding wrapper with post_softmax=false;
    harness.lm._summed_scores answers those requests)."""


ApplyFn = Callable[[Any, Any, dict[str, Any]], Applied]
"""(model, tokenizer, resolved params) -> Applied; changes the (private) model in place."""
ModelCheck = Callable[[dict[str, Any], "ModelShape", str], "ModelShape | None"]
"""(resolved params, the model's shape before the wrapper, the device) -> its shape after (None:
unchanged); raises HarnessError when the parameters do not fit the model (a layer it lacks)."""


@dataclass(frozen=True)
class Fitter:
    """How a wrapper fits its artifact (see harness.wrappers._fitting)."""

    fit: FitFn
    params: tuple[str, ...]
    """The parameters the fit depends on; the others only apply the artifact (a sweep over them
    reuses one fit)."""
    files: Callable[[dict[str, Any]], dict[str, str]]
    """The data files the fit reads (path in the data directory -> sha256), known before fitting."""


@dataclass(frozen=True)
class WrapperDef:
    name: str
    doc: str
    params: tuple[Param, ...]
    apply: ApplyFn
    check: Callable[[dict[str, Any]], None] | None = None
    """Checks across parameters (raise HarnessError), after each one is checked alone."""
    artifacts: Callable[[dict[str, Any]], dict[str, str]] | None = None
    """Artifact name -> sha256 of the files the parameters name (calibration data, vectors), known
    without loading the model, so they enter the variant's identity."""
    fitter: Fitter | None = None
    """Set for wrappers that apply a fitted artifact; they get an `artifact` parameter, and apply
    receives the artifact file's path in it."""
    model_check: ModelCheck | None = None
    """Checks against the model and device, before the model loads (its shape is read from its
    files); `apply` checks the same on the loaded model."""
    plugin: str | None = None
    """Where the wrapper comes from when not from harness (harness._util.plugins.distribution_of):
    it enters the wrapper's record, so a variant's identity names the plugin."""

    def resolve(self, given: dict[str, str]) -> dict[str, Any]:
        values = resolve(self.name, self.params, given)
        if self.check is not None:
            self.check(values)
        return values

    def check_model(self, values: dict[str, Any], shape: ModelShape, device: str) -> ModelShape:
        """The shape after this wrapper with resolved parameters `values`, refused in one line when
        they do not fit `shape` or `device`."""
        return (self.model_check(values, shape, device) if self.model_check is not None else None) or shape


FAMILIES = ("decoding", "depth", "droptokens", "merge", "precision", "quantize", "steering", "units")
"""The modules under harness.wrappers that register wrappers; they import torch only when applied."""


def _import_families() -> None:
    for family in FAMILIES:
        importlib.import_module(f"harness.wrappers.{family}")


WRAPPERS: Registry[WrapperDef] = Registry("wrapper", populate=_import_families, plugins="harness.wrappers")


def register_wrapper(
    name: str,
    *,
    doc: str,
    params: tuple[Param, ...] = (),
    check: Callable[[dict[str, Any]], None] | None = None,
    artifacts: Callable[[dict[str, Any]], dict[str, str]] | None = None,
    fitter: Fitter | None = None,
    model_check: ModelCheck | None = None,
) -> Callable[[ApplyFn], ApplyFn]:
    """Register `apply` as the wrapper `name`, usable in a model string as `BASE+name:key=value,...`
    (a second registration of a name is an error).

    `doc`: one line for `harness models`; `params`: the typed parameters (`Param`), each checked and
    given its default before any model loads; `apply(model, tokenizer, params) -> Applied` changes the
    model, a private copy, in place. `check` checks across parameters, `artifacts` names the files the
    parameters point at (name -> sha256, part of the variant's identity), `fitter` fits an artifact,
    `model_check` checks the parameters against the model's shape before it loads (docs/api.md)."""
    if fitter is not None:
        params = (*params, Param(ARTIFACT_PARAM, str, None, "a fitted artifact from `harness fit`; none: fit on first use (cached)"))

    def decorate(apply: ApplyFn) -> ApplyFn:
        plugin = distribution_of(apply.__module__)
        WRAPPERS.register(name, WrapperDef(name, doc, params, apply, check, artifacts, fitter, model_check, plugin))
        return apply

    return decorate


def canonical_text(value: Any) -> str:
    """A resolved parameter value as it enters the intervention record."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        return repr(value)
    return str(value)
