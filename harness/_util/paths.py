"""Where harness keeps what it can recompute: converted models, request results, file hashes."""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import HarnessError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT_DIR = Path("runs")
"""Where `harness eval` puts run folders: a folder git ignores (.gitignore), so that running harness
in its checkout leaves the tree clean."""
REFERENCE_RUNS_DIR = Path("results")
"""The committed reference runs (`--output-dir results` adds one), where `harness leaderboard build`
looks for runs by default."""
DEFAULT_LEADERBOARD_DIR = Path("leaderboard")
"""The leaderboard folder: its releases and its site."""


def cache_dir() -> Path:
    """$HARNESS_CACHE_DIR, else $XDG_CACHE_HOME/harness, else ~/.cache/harness."""
    if explicit := os.environ.get("HARNESS_CACHE_DIR"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "harness"


def user_path(text: str | os.PathLike) -> Path:
    """`text` as a path, `~` and `~user` expanded; a `~user` of no user stays as written (so it
    names nothing, rather than raising)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        return Path(text)


def check_output_folder(path: str | os.PathLike, flag: str) -> Path:
    """`path`, refused in one line unless it is a folder harness can create or write into: not a
    file, nor under one, and its nearest existing folder writable. Checked before any work, so a
    bad output folder is known before a model loads rather than when the results are saved."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise HarnessError(f"{flag} {path} is a file, not a folder")
        existing = path
        while not existing.exists():
            existing = existing.parent
    except OSError as exc:
        raise HarnessError(f"{flag} {path}: {exc.strerror}") from None
    where = f"{flag} {path}" if existing == path else f"{flag} {path}: {existing}"
    if not existing.is_dir():
        raise HarnessError(f"{where} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise HarnessError(f"{where} is not writable")
    return path


def inside(root: Path, *parts: str) -> Path:
    """`root / parts...`, refused in one line unless it resolves inside `root` (the last check
    before a write or read whose path is made from record data)."""
    base = root.resolve()
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        raise HarnessError(f"refusing a path outside {root}: {'/'.join(parts)}")
    return root.joinpath(*parts)
