"""Merge sources: model strings resolved and hashed, and each one's calibration text for RegMean.

A source is anything a base can be (`expert:NAME`, a catalog name, `hf:ORG/NAME`, a model folder)
that has the base's architecture. RegMean needs inputs from each source's own data: an expert's
are the first examples of its training data (prompt and target, as it learned them); any other
source needs a text file, one example per line, at its place in `calibration=FILE;FILE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness._util.files import sha256_json
from harness._util.paths import user_path
from harness.errors import HarnessError
from harness.models import ResolvedModel, resolve_model
from harness.models.experts import EXPERT_PREFIX, EXPERTS
from harness.models.experts.build import calibration_examples
from harness.models.loading import ensure_float_folder, float_folder


@dataclass(frozen=True)
class Source:
    name: str
    model: ResolvedModel


def split_list(text: str | None) -> list[str]:
    return [] if text is None else [part.strip() for part in text.split(";")]


def resolve_sources(text: str) -> list[Source]:
    return [Source(name, resolve_model(name)) for name in split_list(text)]


def calibration_texts(source: str, file: str, count: int) -> list[str]:
    """The first `count` calibration examples of `source` (its `calibration=` entry is `file`)."""
    if file:
        path = user_path(file)
        if not path.is_file():
            raise HarnessError(f"merge:calibration: no such file {file!r} (for source {source})")
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines:
            raise HarnessError(f"merge:calibration: {file} has no text (for source {source})")
        return lines[:count]
    if not source.startswith(EXPERT_PREFIX):
        raise HarnessError(
            f"merge: source {source} is not an expert; RegMean needs its data: give calibration=FILE "
            "(one example per line) at its place, e.g. calibration=;data.txt"
        )

    return [e.prompt + e.target for e in calibration_examples(EXPERTS.get(source[len(EXPERT_PREFIX) :]), count)]


def load_weights(source: Source) -> Any:
    """The source's float32 model on the CPU (its tokenizer is the base's business, not loaded)."""
    import torch
    from transformers import AutoModelForCausalLM

    ensure_float_folder(source.model)
    model = AutoModelForCausalLM.from_pretrained(
        float_folder(source.model), dtype=torch.float32, trust_remote_code=False, use_safetensors=True
    )
    return model.eval()


def texts_sha256(texts: list[str]) -> str:
    return sha256_json(texts)
