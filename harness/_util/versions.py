"""Installed versions, read from package metadata without importing the package."""

from __future__ import annotations

import functools
import importlib.metadata


@functools.cache
def version_of(distribution: str) -> str:
    """The installed version of `distribution`, or "not installed"."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
