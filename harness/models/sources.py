"""Locate a base model's files and compute its weight identity, without loading it.

A model string is a catalog name, `hf:ORG/NAME[@REVISION]`, `expert:NAME` (an expert that
harness fine-tunes on first use, harness.models.experts), a local Hugging Face folder or a `.gguf` file.
This module finds the files of models that exist; the built ones (experts, the offline VLM) are
dispatched by harness.models.resolve, above their builders. Resolution may download from the hub
(for users who have it) but never builds a model, so every variant of a run is checked before the
first one is evaluated.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness._util.files import sha256_file, sha256_json
from harness._util.paths import cache_dir, user_path
from harness._util.registry import did_you_mean
from harness.errors import HarnessError
from harness.models.catalog import CATALOG, ChunkedGGUF, HubRepo, LocalModel, PackagedGGUF
from harness.models.experts import EXPERT_PREFIX, EXPERTS

HUB_PREFIX = "hf:"
# Weights are read from safetensors or GGUF only: pickled .bin checkpoints can run code.
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "tokenizer*", "*.model", "*.txt"]


@dataclass(frozen=True)
class ResolvedModel:
    """A base model found on disk, with the identity of its weights."""

    name: str
    """The model string as given (`smollm2-135m-instruct`, `hf:ORG/NAME`, a path)."""
    kind: Literal["gguf", "folder"]
    """`gguf`: one GGUF file, dequantised to a cached float folder on first load; `folder`: safetensors."""
    path: Path
    """The GGUF file or the Hugging Face model folder."""
    origin: str
    """Where it came from: `package:NAME`, `hub:REPO@COMMIT`, or `local`."""
    weights_sha256: str
    """sha256 of the GGUF file, or of the sorted (file name, sha256) list of the safetensors files."""


def is_syntactically_known(name: str) -> None:
    """Raise HarnessError unless `name` can name a model (catalog, hf: id, expert or existing path)."""
    if name.startswith(EXPERT_PREFIX):
        EXPERTS.get(name[len(EXPERT_PREFIX) :])
        return
    if name in CATALOG or name.startswith(HUB_PREFIX):
        if name.startswith(HUB_PREFIX) and "/" not in name[len(HUB_PREFIX) :]:
            raise HarnessError(f"bad hub model {name!r}: expected hf:ORG/NAME[@REVISION]")
        return
    path = user_path(name)
    try:
        if path.is_dir() or (path.is_file() and path.suffix == ".gguf"):
            return
    except OSError:  # a name too long to be a path: so not one
        pass
    raise HarnessError(
        f"unknown model {name!r}{did_you_mean(name, CATALOG.names())}; "
        "give a catalog name (harness models), hf:ORG/NAME, a model folder or a .gguf file"
    )


def locate(name: str) -> ResolvedModel:
    """Find the files of `name`, a model that exists (not an expert or a built VLM: see
    harness.models.resolve), downloading it if it is a hub model, and hash its weights."""
    is_syntactically_known(name)
    if name in CATALOG:
        source = CATALOG.get(name).source
        if isinstance(source, PackagedGGUF):
            return _packaged_gguf(name, source)
        if isinstance(source, ChunkedGGUF):
            return _chunked_gguf(name, source)
        if isinstance(source, HubRepo):
            return _hub(name, source)
        if isinstance(source, LocalModel):
            return _local(name, user_path(source.path).resolve())
        raise HarnessError(f"model {name!r} is built by harness, not located (harness.models.resolve)")
    if name.startswith(EXPERT_PREFIX):
        raise HarnessError(f"model {name!r} is built by harness, not located (harness.models.resolve)")
    if name.startswith(HUB_PREFIX):
        repo, _, revision = name[len(HUB_PREFIX) :].partition("@")
        return _hub(name, HubRepo(repo, revision or "main"))
    return _local(name, user_path(name).resolve())


def _local(name: str, path: Path) -> ResolvedModel:
    if path.is_file() and path.suffix == ".gguf":
        return ResolvedModel(name, "gguf", path, "local", sha256_file(path))
    if not path.is_dir():
        raise HarnessError(f"model {name!r}: {path} is neither a model folder nor a .gguf file")
    return folder_model(name, path, "local")


def _packaged_gguf(name: str, source: PackagedGGUF) -> ResolvedModel:
    spec = importlib.util.find_spec(source.package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / source.filename if locations else None
    if path is None or not path.is_file():
        raise HarnessError(f"model {name!r} needs the package {source.package!r}: {source.install}")
    return ResolvedModel(name, "gguf", path, f"package:{source.package}", sha256_file(path))


def _chunked_gguf(name: str, source: ChunkedGGUF) -> ResolvedModel:
    try:
        package = importlib.import_module(source.package)
    except ImportError:
        raise HarnessError(f"model {name!r} needs the package {source.package!r}: {source.install}") from None
    path = Path(package.assemble(cache_dir() / "gguf" / package.MODEL_NAME))
    return ResolvedModel(name, "gguf", path, f"package:{source.package}", sha256_file(path))


def _hub(name: str, source: HubRepo) -> ResolvedModel:
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(source.repo_id, revision=source.revision, allow_patterns=_HUB_PATTERNS))
    except Exception as exc:  # offline, gated, missing: all end the run before it starts
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(f"cannot get model {name!r} from the Hugging Face hub ({source.repo_id}@{source.revision}): {reason}") from None
    return folder_model(name, folder, f"hub:{source.repo_id}@{folder.name}")


def folder_model(name: str, folder: Path, origin: str) -> ResolvedModel:
    if not (folder / "config.json").is_file():
        raise HarnessError(f"model folder {folder} has no config.json")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise HarnessError(f"model folder {folder} has no .safetensors weights (pickled checkpoints are not loaded)")
    identity = sha256_json([[w.name, sha256_file(w)] for w in weights])
    return ResolvedModel(name, "folder", folder, origin, identity)
