"""Build a float torch model and its tokenizer from a ResolvedModel.

GGUF files are dequantised once into an ordinary Hugging Face folder under the cache, keyed by the
GGUF's sha256 and the versions of the libraries that dequantise and write it (transformers does
the conversion); later loads read that folder's safetensors (docs/performance.md has the timings).
The folder's `manifest.json` holds each file's sha256 and stamp: every load checks the stamps, and
a folder that fails is reported in one line and converted again, never read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._util.code import versions_of
from harness._util.files import build_verified, folder_problem, key_name, write_facts
from harness._util.paths import cache_dir
from harness.models.sources import ResolvedModel
from harness.models.vlm.loading import is_vision_language, load_vision_language


@dataclass
class LoadedModel:
    model: Any
    """A transformers causal LM (or image-text-to-text model) in eval mode."""
    tokenizer: Any
    folder: Path
    """The Hugging Face folder the weights were read from (for a GGUF: the cached float copy)."""
    seconds: float
    """Wall time of the load, conversion included."""
    converted: bool
    """True when this load dequantised a GGUF (a cold load)."""


CONVERSION_LIBRARIES = ("transformers", "gguf", "torch", "numpy", "safetensors", "tokenizers")
"""The libraries whose code dequantises a GGUF and writes the float folder: their versions key it."""
MANIFEST = "manifest.json"
"""The converted folder's facts file: its key and the manifest of its other files (harness._util.files)."""


def conversion_key(resolved: ResolvedModel) -> dict[str, Any]:
    """What the float copy of a GGUF depends on: the GGUF's bytes and the converting libraries."""
    return {"name": "gguf", "gguf_sha256": resolved.weights_sha256, "libraries": versions_of(CONVERSION_LIBRARIES)}


def float_folder(resolved: ResolvedModel) -> Path:
    """The folder whose safetensors hold the model's float weights (may not exist yet for a GGUF)."""
    if resolved.kind == "folder":
        return resolved.path
    return cache_dir() / "models" / key_name(conversion_key(resolved))


def float_folder_problem(folder: Path, full: bool = False) -> str | None:
    """None when a converted folder is whole (its manifest's stamps, or with `full` every sha256);
    else what is wrong. A folder without a manifest (converted by an older harness) is converted
    again rather than trusted."""
    return folder_problem(folder, MANIFEST, full)


def ensure_float_folder(resolved: ResolvedModel) -> bool:
    """Create the float copy of a GGUF unless it is there and whole (converted once however many
    processes ask at once); True when it had to be made."""
    if resolved.kind == "folder":
        return False
    return build_verified(float_folder(resolved), lambda staging: convert(resolved, staging), float_folder_problem, "converted weights")


def convert(resolved: ResolvedModel, out: Path) -> None:
    """Dequantise the GGUF into the folder `out`, its manifest written last."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf_dir, gguf_name = str(resolved.path.parent), resolved.path.name
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, quantization_config=GgufConfig(dequantize=True))
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "SOURCE.txt").write_text(f"dequantised from {resolved.path.name}\nsha256 {resolved.weights_sha256}\n")
    write_facts(out, MANIFEST, {}, conversion_key(resolved))


def load_model(resolved: ResolvedModel, device: str) -> LoadedModel:
    """Load the float32 model on `device`; remote code is never trusted."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    converted = ensure_float_folder(resolved)
    folder = float_folder(resolved)
    if is_vision_language(folder):  # an image-text-to-text model: its processor holds the tokenizer
        vlm, processor = load_vision_language(folder, device)
        return LoadedModel(vlm, processor.tokenizer, folder, time.perf_counter() - start, converted)
    # As a Module: transformers types PreTrainedModel.to through functools.wraps, which loses its self.
    model: torch.nn.Module = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32, trust_remote_code=False, use_safetensors=True
    )
    model.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    return LoadedModel(model, tokenizer, folder, time.perf_counter() - start, converted)
