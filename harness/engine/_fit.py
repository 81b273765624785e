"""`harness fit`: fit a steering wrapper's artifact once, to a file that model strings then name.

    harness fit meandiff layer=15 --model smollm2-135m-instruct --out meandiff-15.safetensors
    harness eval --model "smollm2-135m-instruct+meandiff:layer=15,c=4,artifact=meandiff-15.safetensors" ...

The model string may carry wrappers of its own (`BASE+quantize:bits=4`): the fit runs on that model,
and the artifact only applies to it. Without `artifact=`, a variant fits on first use and caches the
result, which is the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness._util.environ import scoped_environ
from harness.errors import HarnessError
from harness.models import resolve_model
from harness.models.device import resolve_device
from harness.spec._spec import VariantSpec
from harness.tasks import data
from harness.variant._variant import Variant
from harness.wrappers import WRAPPERS
from harness.wrappers._fitting import ARTIFACT_PARAM, fit_params_of, header, read_sidecar, write_artifact


def fit_artifact(wrapper: str, given: dict[str, str], model: str, out: Path, device: str, data_dir: Path | None = None) -> dict[str, Any]:
    """Fit `wrapper` with parameters `given` on `model`, write `out` and its sidecar; return the
    sidecar. The fit's data is read from `data_dir` (None: $HARNESS_DATA_DIR)."""

    definition = WRAPPERS.get(wrapper)
    fitter = definition.fitter
    if fitter is None:
        fitted_ones = ", ".join(name for name, w in WRAPPERS if w.fitter is not None)
        raise HarnessError(f"wrapper {wrapper} is not fitted (fitted wrappers: {fitted_ones})")
    if ARTIFACT_PARAM in given:
        raise HarnessError(f"harness fit writes the artifact; {ARTIFACT_PARAM}= is for model strings")
    if out.suffix != ".safetensors":
        raise HarnessError(f"--out {out}: an artifact is a .safetensors file")
    params = definition.resolve(given)
    directory = data.data_dir(data_dir)
    # Fits (and the wrappers applied before them) find their data through the variable.
    with scoped_environ({data.DATA_DIR_ENV: str(directory) if directory is not None else None}):
        spec = VariantSpec.parse(model)
        variant = Variant(spec, resolve_model(spec.base))
        built = variant.load(resolve_device(device))
        fitted = fitter.fit(built.model, built.tokenizer, params)
        write_artifact(out, fitted, header(wrapper, fit_params_of(params, fitter.params), variant.identity, fitter.fit))
    return read_sidecar(out)
