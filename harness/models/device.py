"""Which torch device a run computes on."""

from __future__ import annotations

import logging

from harness.errors import HarnessError


def resolve_device(device: str | None, fall_back: bool = False) -> str:
    """`auto` -> cuda when available, else cpu. An unavailable CUDA device is an error, or, with
    `fall_back` (plain lm-eval, whose CLI defaults to cuda:0), cpu with a warning as HFLM does."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        if not fall_back:
            raise HarnessError(f"device {device!r} asked for, but torch sees no CUDA device")
        logging.getLogger(__name__).warning("no CUDA device: evaluating on cpu instead of %s", device)
        return "cpu"
    return device
