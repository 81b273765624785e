"""What a run executed on: code version, package versions and hardware, for the run record."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess

from harness._util.code import package_digest
from harness._util.paths import REPO_ROOT
from harness.records._schema import Environment

_PACKAGES = ("harness", "torch", "transformers", "lm_eval", "datasets", "accelerate", "gguf", "safetensors", "numpy", "tokenizers")


def _git(*args: str) -> str | None:
    """git's output in the checkout harness runs from; None outside one (an installed harness),
    where git would only complain."""
    if not (REPO_ROOT / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def capture() -> Environment:
    import torch

    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    dirty = bool(status.strip()) if status is not None else None
    diff = _git("diff", "HEAD", "--binary") if dirty else None
    return Environment(
        harness_version=versions.get("harness", "unknown"),
        git_commit=commit.strip() if commit else None,
        git_dirty=dirty,
        code_digest=package_digest(),
        git_diff_sha256=hashlib.sha256(diff.encode()).hexdigest() if diff is not None else None,
        python=platform.python_version(),
        packages=versions,
        platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count() or 0,
        memory_gb=_memory_gb(),
        accelerator=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        torch_threads=torch.get_num_threads(),
    )
