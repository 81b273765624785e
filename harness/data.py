"""Where a task's files come from: the local data directory first, else the Hugging Face hub.

The data directory (`--data-dir`, else $HARNESS_DATA_DIR) is laid out as `shared/data` is. A task
declares each split's file by its path inside that directory and by its place on the hub; this
module finds the file, hashes it and loads it with `datasets`, or fails with one line naming the
file and where it looked.

Task YAMLs use it through lm-eval's `custom_dataset` hook:

    custom_dataset: !function utils.load_dataset     # utils.py: from harness.data import load_dataset
    dataset_kwargs:
      data_files: {validation: arithmetic/two_digit_addition.jsonl}
      hub: {repo: EleutherAI/arithmetic, files: {validation: data/two_digit_addition.jsonl}}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness._io import sha256_file
from harness.errors import HarnessError

DATA_DIR_ENV = "HARNESS_DATA_DIR"


@dataclass(frozen=True)
class DataFile:
    """One split's file: its path inside the data directory and its place on the hub."""

    split: str
    local: str
    hub_repo: str | None
    hub_path: str | None


@dataclass(frozen=True)
class ResolvedFile:
    """A DataFile found on this machine."""

    file: DataFile
    path: Path
    origin: Literal["data_dir", "hub"]
    sha256: str


def data_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The data directory in force (`explicit`, else $HARNESS_DATA_DIR), checked to be readable."""
    value = explicit if explicit not in (None, "") else os.environ.get(DATA_DIR_ENV) or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_dir() or not os.access(path, os.R_OK | os.X_OK):
        raise HarnessError(f"data directory {path} is not a readable folder")
    return path.resolve()


def declared_files(dataset_kwargs: dict[str, Any] | None) -> list[DataFile]:
    """The files a task's `dataset_kwargs` declare, one per split."""
    kwargs = dataset_kwargs or {}
    local = kwargs.get("data_files") or {}
    hub = kwargs.get("hub") or {}
    hub_files = hub.get("files") or {}
    return [
        DataFile(split, path, hub.get("repo"), hub_files.get(split))
        for split, path in sorted(local.items())
    ]


def resolve(file: DataFile, directory: Path | None) -> ResolvedFile:
    """Find `file` in the data directory, else download it from the hub; raise one line if neither."""
    if directory is not None and (directory / file.local).is_file():
        path = directory / file.local
        return ResolvedFile(file, path, "data_dir", sha256_file(path))
    looked = (
        f"not in the data directory {directory}"
        if directory is not None
        else f"no data directory given (--data-dir or ${DATA_DIR_ENV})"
    )
    if not (file.hub_repo and file.hub_path):
        raise HarnessError(f"data file {file.local} missing: {looked}, and it has no hub copy")
    from huggingface_hub import hf_hub_download

    try:
        path = Path(hf_hub_download(file.hub_repo, file.hub_path, repo_type="dataset"))
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise HarnessError(
            f"data file {file.local} missing: {looked}, and the hub copy "
            f"({file.hub_repo}/{file.hub_path}) could not be fetched: {reason}"
        ) from None
    return ResolvedFile(file, path, "hub", sha256_file(path))


def resolve_task_files(dataset_kwargs: dict[str, Any] | None, directory: Path | None) -> list[ResolvedFile]:
    return [resolve(f, directory) for f in declared_files(dataset_kwargs)]


def load_dataset(**kwargs: Any):
    """lm-eval `custom_dataset` hook: a DatasetDict of the declared files (JSON lines).

    lm-eval passes the task's metadata and dataset_kwargs as keyword arguments; harness puts the
    data directory into the metadata as `data_dir`, plain lm-eval runs read $HARNESS_DATA_DIR.
    """
    import datasets

    directory = data_dir(kwargs.get("data_dir"))
    files = resolve_task_files(kwargs, directory)
    return datasets.load_dataset(
        "json", data_files={f.file.split: str(f.path) for f in files}
    )
