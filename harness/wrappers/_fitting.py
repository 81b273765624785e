"""Fitted artifacts: what a steering wrapper computes from data before it can apply.

A wrapper registered with `fit=` (eigenshift, aura, meandiff) needs tensors fitted on the model
as it stands when the wrapper applies (the base with the wrappers before it in the model string):
directions, per-unit scores, component deltas. An artifact is a safetensors file with a JSON
sidecar (`<file>.json`: wrapper, fit parameters, the model it was fitted on, the data files with
their sha256 and the split, facts of the fit). Nothing in it is pickled.

Where it comes from: the wrapper's `artifact=FILE` parameter (written by `harness fit`), checked to
have been fitted for this wrapper on this very model; else it is fitted on first use and cached in
`<cache>/artifacts/<wrapper>-<recipe sha256>.safetensors`, the recipe being everything the fit depends on
(wrapper, fit parameters, the model's intervention identity, the fit data's sha256s, the source
digest of the fit function's module and what it imports, the library versions). A cached artifact
proves itself on every use (its tensors' sha256 against its sidecar's): one that fails is reported
in one line and fitted again. Either way the artifact file's sha256 enters the variant's
intervention record, hence its identity, and apply receives the file's path as `params["artifact"]`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._util.code import callable_digest, library_versions
from harness._util.files import (
    atomic_write_bytes,
    atomic_write_text,
    canonical_json,
    file_lock,
    fresh_sha256,
    say,
    sha256_file,
    sha256_json,
)
from harness._util.paths import cache_dir
from harness.errors import HarnessError

if TYPE_CHECKING:
    import torch

ARTIFACT_PARAM = "artifact"


@dataclass(frozen=True)
class FitData:
    """The data a fit read: files (path relative to the data directory -> sha256) and the split."""

    files: dict[str, str]
    split: str
    """How the fit's documents were chosen and why they do not overlap evaluation data."""


@dataclass
class Fitted:
    """What a fit returns: named tensors, the data it read, and facts worth keeping."""

    tensors: dict[str, Any]
    data: FitData
    info: dict[str, Any] = field(default_factory=dict)


FitFn = Callable[[Any, Any, dict[str, Any]], Fitted]
"""(model, tokenizer, resolved params) -> Fitted; must not change the model."""


def sidecar_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".json")


def write_artifact(path: Path, fitted: Fitted, header: dict[str, Any]) -> None:
    """The tensors as safetensors and the sidecar beside them, each written atomically."""
    from safetensors.torch import save

    partial = path.with_name(path.name + ".partial")
    # Serialised here and written like any output (0666 less the umask): safetensors' save_file
    # creates its file 0600.
    atomic_write_bytes(partial, save({k: v.detach().cpu().contiguous() for k, v in fitted.tensors.items()}))
    sidecar = {
        **header,
        "data": {"files": fitted.data.files, "split": fitted.data.split},
        "info": fitted.info,
        "tensors_sha256": sha256_file(partial),
    }
    atomic_write_text(sidecar_path(path), json.dumps(sidecar, indent=1, sort_keys=True) + "\n")
    partial.replace(path)


def read_sidecar(path: Path) -> dict[str, Any]:
    try:
        sidecar = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"artifact {path}: its sidecar {sidecar_path(path)} is missing") from None
    except json.JSONDecodeError as error:
        raise HarnessError(f"artifact {path}: unreadable sidecar ({error})") from None
    return sidecar


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def header(wrapper: str, fit_params: dict[str, Any], model_identity: str, fit: FitFn | None = None) -> dict[str, Any]:
    """What an artifact was fitted from, kept in its sidecar: the wrapper, the fit's parameters, the
    model, and the code that fitted it (the source digest of `fit`, None for an artifact made by
    other means, and the library versions)."""
    return {
        "wrapper": wrapper,
        "params": fit_params,
        "model_identity": model_identity,
        "code": callable_digest(fit) if fit is not None else None,
        "libraries": library_versions(),
    }


def check_artifact(path: Path, wrapper: str, model_identity: str, fit_params: dict[str, Any]) -> None:
    """One line unless `path` is an artifact of `wrapper` fitted on the model `model_identity` with
    the fit parameters `fit_params` (an artifact fitted for layer 2 must not steer layer 15 under
    layer=15's name)."""
    if not path.is_file():
        raise HarnessError(f"{wrapper}:artifact={path}: no such file")
    sidecar = read_sidecar(path)
    if sidecar.get("wrapper") != wrapper:
        raise HarnessError(f"{wrapper}:artifact={path} was fitted for {sidecar.get('wrapper')!r}, not {wrapper}")
    fitted = sidecar.get("params") or {}
    differ = [f"{k}={fitted.get(k)} (given {v})" for k, v in fit_params.items() if fitted.get(k) != v]
    if differ:
        raise HarnessError(f"{wrapper}:artifact={path} was fitted with {', '.join(differ)}; give the fit's parameters")
    if sidecar.get("model_identity") != model_identity:
        raise HarnessError(
            f"{wrapper}:artifact={path} was fitted on another model (identity {str(sidecar.get('model_identity'))[:12]},"
            f" this one {model_identity[:12]})"
        )
    if sidecar.get("tensors_sha256") != sha256_file(path):
        raise HarnessError(f"{wrapper}:artifact={path}: the tensors do not match their sidecar's sha256")


def cached_artifact(artifact_header: dict[str, Any], data_files: dict[str, str]) -> Path:
    """Where the artifact of this recipe (its header and the fit data's sha256s) lives in the cache
    (it may not exist yet)."""
    recipe = {**artifact_header, "data_files": data_files}
    return cache_dir() / "artifacts" / f"{artifact_header['wrapper']}-{sha256_json(recipe)[:32]}.safetensors"


def artifact_problem(path: Path, full: bool = False) -> str | None:
    """None when the artifact at `path` has a readable sidecar whose tensors_sha256 its tensors
    match (through the file-hash memo, or hashed afresh with `full`); else what is wrong."""
    if not path.is_file():
        return "its tensors are missing"
    try:
        sidecar = read_sidecar(path)
    except HarnessError as error:
        return str(error).split(": ", 1)[-1]
    actual = fresh_sha256(path) if full else sha256_file(path)
    return None if sidecar.get("tensors_sha256") == actual else "its tensors do not match their sidecar's sha256"


def ensure_artifact(path: Path, fit: Callable[[], Fitted], artifact_header: dict[str, Any]) -> bool:
    """The cached artifact at `path`, fitted by `fit()` unless it is there and proves itself; fitted
    once however many processes ask at once (the second waits for the first's lock, then uses its
    artifact). An artifact that fails its check is reported in one line and fitted again. True when
    this call fitted it."""
    if artifact_problem(path) is None:
        return False
    with file_lock(path):
        problem = artifact_problem(path)
        if problem is None:
            return False
        if path.exists() or sidecar_path(path).exists():
            say(f"fitted artifact {path.name}: {problem}; it is fitted again")
        write_artifact(path, fit(), artifact_header)
    return True


def fit_params_of(params: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The parameters the fit depends on, as JSON values (the rest apply the artifact)."""
    return json.loads(canonical_json({name: str(params[name]) if isinstance(params[name], Path) else params[name] for name in names}))
