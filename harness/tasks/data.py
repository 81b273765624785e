"""Where a task's files come from: the local data directory first, else the Hugging Face hub.

The data directory (`--data-dir`, else $HARNESS_DATA_DIR) is laid out as `shared/data` is. A task
declares each split's file by its path inside that directory and by its place on the hub; this
module finds the file, hashes it and loads it with `datasets`, or fails with one line naming the
file and where it looked.

Task YAMLs use it through lm-eval's `custom_dataset` hook:

    custom_dataset: !function utils.load_dataset     # utils.py: harness.tasks.data.load_dataset(kwargs, convert)
    dataset_kwargs:
      data_files: {validation: arithmetic/two_digit_addition.jsonl}
      hub: {repo: EleutherAI/arithmetic, files: {validation: data/two_digit_addition.jsonl}}
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness._util.files import sha256_file
from harness.errors import HarnessError

if TYPE_CHECKING:
    import datasets

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


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
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
    return [DataFile(split, path, hub.get("repo"), hub_files.get(split)) for split, path in sorted(local.items())]


def resolve(file: DataFile, directory: Path | None) -> ResolvedFile:
    """Find `file` in the data directory, else download it from the hub; raise one line if neither."""
    if directory is not None and (directory / file.local).is_file():
        path = directory / file.local
        return ResolvedFile(file, path, "data_dir", sha256_file(path))
    looked = (
        f"not in the data directory {directory}" if directory is not None else f"no data directory given (--data-dir or ${DATA_DIR_ENV})"
    )
    if not (file.hub_repo and file.hub_path):
        raise HarnessError(f"data file {file.local} missing: {looked}, and it has no hub copy")
    from huggingface_hub import hf_hub_download

    try:
        path = Path(hf_hub_download(file.hub_repo, file.hub_path, repo_type="dataset"))
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise HarnessError(
            f"data file {file.local} missing: {looked}, and the hub copy ({file.hub_repo}/{file.hub_path}) could not be fetched: {reason}"
        ) from None
    return ResolvedFile(file, path, "hub", sha256_file(path))


def resolve_task_files(dataset_kwargs: dict[str, Any] | None, directory: Path | None) -> list[ResolvedFile]:
    return [resolve(f, directory) for f in declared_files(dataset_kwargs)]


class MalformedRow(ValueError):
    """A row that cannot become a document. Converters raise it with the reason; harness adds the
    file and the row number."""

    def __init__(self, reason: str, row: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.row = row


RowConverter = Callable[[dict[str, Any]], dict[str, Any]]


def _read_rows(path: Path, columns: list[str] | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) of a JSON lines, JSON list, CSV (with header) or TSV (header or `columns`) file."""
    suffix = path.suffix
    if suffix == ".jsonl":
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise MalformedRow(f"not valid JSON ({exc.msg})", row=number) from None
    elif suffix == ".json":
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise MalformedRow(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
        yield from enumerate(rows, 1)
    elif suffix in (".csv", ".tsv"):
        # utf-8-sig: TruthfulQA's CSV starts with a byte-order mark. MGSM's TSV has a bare `"`,
        # hence no quoting for TSV.
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f) if suffix == ".csv" else csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = columns or next(reader)
            for row in reader:
                if len(row) != len(header):
                    raise MalformedRow(f"{len(row)} columns, expected {len(header)}", row=reader.line_num)
                yield reader.line_num, dict(zip(header, row, strict=True))
    else:
        raise HarnessError(f"{path}: unsupported data file type {suffix!r}")


def _dataset(file: ResolvedFile, columns: list[str] | None, convert: RowConverter | None) -> datasets.Dataset:
    import datasets

    if file.path.suffix == ".parquet":  # the hub's own copies are already in the task's schema
        return datasets.Dataset.from_parquet(str(file.path))
    rows: list[dict[str, Any]] = []
    number: int | None = None
    try:
        for number, row in _read_rows(file.path, columns):
            try:
                rows.append(convert(row) if convert else row)
            except (KeyError, TypeError, AttributeError) as exc:  # a field missing or of the wrong kind
                raise MalformedRow(f"cannot be read ({type(exc).__name__}: {exc})", row=number) from None
    except MalformedRow as exc:
        at = exc.row if exc.row is not None else number
        where = f"{file.file.local}: row {at}" if at is not None else file.file.local
        raise HarnessError(f"{where}: {exc.reason}") from None
    return datasets.Dataset.from_list(rows)


def load_dataset(dataset_kwargs: dict[str, Any], convert: RowConverter | None = None) -> datasets.DatasetDict:
    """A DatasetDict of the declared files, each row passed through `convert` (a family's map
    from its file format to the hub dataset's schema, raising MalformedRow for a bad row)."""
    import datasets

    directory = data_dir(dataset_kwargs.get("data_dir"))
    columns = dataset_kwargs.get("columns")
    return datasets.DatasetDict({f.file.split: _dataset(f, columns, convert) for f in resolve_task_files(dataset_kwargs, directory)})


def custom_dataset(**kwargs: Any) -> datasets.DatasetDict:
    """lm-eval `custom_dataset` hook for files already in the task's schema.

    lm-eval passes the task's metadata and dataset_kwargs as keyword arguments; harness puts the
    data directory into the metadata as `data_dir`, plain lm-eval runs read $HARNESS_DATA_DIR.
    """
    return load_dataset(kwargs)
