"""Build a float torch model and its tokenizer from a ResolvedModel.

GGUF files are dequantised once into an ordinary Hugging Face folder under the cache, keyed by the
GGUF's sha256; later loads read that folder's safetensors (docs/performance.md has the timings).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._util.files import build_dir
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


def float_folder(resolved: ResolvedModel) -> Path:
    """The folder whose safetensors hold the model's float weights (may not exist yet for a GGUF)."""
    if resolved.kind == "folder":
        return resolved.path
    return cache_dir() / "models" / f"gguf-{resolved.weights_sha256[:16]}"


def ensure_float_folder(resolved: ResolvedModel) -> bool:
    """Create the float copy of a GGUF if it is missing; True when it had to be made."""
    folder = float_folder(resolved)
    if resolved.kind == "folder" or (folder / "config.json").is_file():
        return False
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf_dir, gguf_name = str(resolved.path.parent), resolved.path.name
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, quantization_config=GgufConfig(dequantize=True))
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "SOURCE.txt").write_text(f"dequantised from {resolved.path}\nsha256 {resolved.weights_sha256}\n")

    build_dir(folder, write)
    return True


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
