"""Which torch device a run computes on."""

from __future__ import annotations

import logging
import re

from harness.errors import HarnessError

DEVICE_PATTERN = r"auto|cpu|mps|cuda(:[0-9]{1,3})?"
"""The devices harness computes on; whether this machine has the one named is checked too."""
DEVICES = "cpu, cuda, cuda:N, mps or auto"


def check_device_name(device: str) -> str:
    """`device`, refused in one line unless it is one harness computes on (no torch needed)."""
    if not isinstance(device, str) or not re.fullmatch(DEVICE_PATTERN, device):
        raise HarnessError(f"--device must be {DEVICES}, got {device!r}")
    return device


def resolve_device(device: str | None, fall_back: bool = False) -> str:
    """`auto` -> cuda when available, else cpu. A device this machine lacks is an error, or, for
    CUDA with `fall_back` (plain lm-eval, whose CLI defaults to cuda:0), cpu with a warning as HFLM does."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    check_device_name(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        if not fall_back:
            raise HarnessError(f"device {device!r} asked for, but torch sees no CUDA device")
        logging.getLogger(__name__).warning("no CUDA device: evaluating on cpu instead of %s", device)
        return "cpu"
    if device.startswith("cuda:") and int(device[5:]) >= (count := torch.cuda.device_count()):
        raise HarnessError(f"device {device!r} asked for, but torch sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    if device == "mps" and not torch.backends.mps.is_available():
        raise HarnessError("device 'mps' asked for, but torch sees no MPS device (Apple silicon only)")
    return device
