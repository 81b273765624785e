"""Telling a vision-language model folder from a language model one, and loading it.

A Hugging Face image-text-to-text model (LLaVA, SmolVLM/Idefics3, Qwen2-VL, PaliGemma, ...) says
so in its config: it has a `vision_config` next to its text model's. Such a folder loads with
`AutoModelForImageTextToText` and `AutoProcessor` (its image processor and tokenizer together),
from safetensors only, remote code never trusted, like every other base model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


def is_vision_language(folder: Path) -> bool:
    """True when the model folder's config.json describes a vision-language model."""
    config = Path(folder) / "config.json"
    if not config.is_file():
        return False
    try:
        return "vision_config" in json.loads(config.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise HarnessError(f"{config} is not valid JSON") from None


def is_vision_language_model(model: Any) -> bool:
    """True for a loaded model whose config has a vision part."""
    return getattr(getattr(model, "config", None), "vision_config", None) is not None


def load_vision_language(folder: Path, device: str) -> tuple[Any, Any]:
    """(model in eval mode on `device`, processor) of a vision-language model folder."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import harness.models.vlm.tower  # noqa: F401  (registers the offline VLM's encoder with transformers)

    try:
        # As a Module: transformers types PreTrainedModel.to through functools.wraps, which loses its self.
        model: torch.nn.Module = AutoModelForImageTextToText.from_pretrained(
            folder, dtype=torch.float32, trust_remote_code=False, use_safetensors=True
        )
    except ValueError as exc:  # an architecture transformers has no image-text-to-text class for
        raise HarnessError(f"cannot load {folder} as an image-text-to-text model: {str(exc).splitlines()[0]}") from None
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=False)
    return model.to(device).eval(), processor
