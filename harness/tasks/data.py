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
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness._util.files import sha256_file
from harness._util.paths import user_path
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
    path = user_path(value)
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


def _read_rows(path: Path, columns: list[str] | None) -> Iterator[tuple[int, Any]]:
    """(row number, row) of a JSON lines, JSON list, CSV (with header) or TSV (header or `columns`) file."""
    suffix = path.suffix
    if suffix == ".jsonl":
        for number, line in enumerate(_text(path, "utf-8").split("\n"), 1):
            if line.strip():
                yield number, _json_line(line, number)
    elif suffix == ".json":
        try:
            rows = json.loads(_text(path, "utf-8"))
        except json.JSONDecodeError as exc:
            raise MalformedRow(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
        except RecursionError:
            raise MalformedRow("not valid JSON (nested too deeply)") from None
        if not isinstance(rows, list):
            raise MalformedRow(f"not a JSON list of rows (a {_json_kind(rows)})")
        yield from enumerate(rows, 1)
    elif suffix in (".csv", ".tsv"):
        # utf-8-sig: TruthfulQA's CSV starts with a byte-order mark. MGSM's TSV has a bare `"`,
        # hence no quoting for TSV.
        f = io.StringIO(_text(path, "utf-8-sig"), newline="")
        reader = csv.reader(f) if suffix == ".csv" else csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            header = columns or next(reader, None)
            if header is None:
                return
            for row in reader:
                if len(row) != len(header):
                    raise MalformedRow(f"{len(row)} columns, expected {len(header)}", row=reader.line_num)
                yield reader.line_num, dict(zip(header, row, strict=True))
        except csv.Error as exc:
            raise MalformedRow(f"not valid {suffix[1:].upper()} ({exc})", row=reader.line_num) from None
    else:
        raise HarnessError(f"{path}: unsupported data file type {suffix!r}")


def _text(path: Path, encoding: str) -> str:
    """The file's text, its first byte that is not UTF-8 refused with its line."""
    raw = path.read_bytes()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise MalformedRow(f"not UTF-8 text (byte {exc.start})", row=raw.count(b"\n", 0, exc.start) + 1) from None


def _json_kind(value: Any) -> str:
    return "null" if value is None else {list: "list", str: "string", bool: "boolean"}.get(type(value), "number")


def _json_line(line: str, number: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise MalformedRow(f"not valid JSON ({exc.msg})", row=number) from None
    except RecursionError:
        raise MalformedRow("not valid JSON (nested too deeply)", row=number) from None


def _dataset(file: ResolvedFile, columns: list[str] | None, convert: RowConverter | None) -> datasets.Dataset:
    import datasets

    if file.path.suffix == ".parquet":  # the hub's own copies are already in the task's schema
        return datasets.Dataset.from_parquet(str(file.path))
    rows, number = [], None
    fields: list[str] | None = None
    try:
        for number, row in _read_rows(file.path, columns):
            if convert is None:
                fields = _same_fields(row, fields)
            try:
                rows.append(convert(row) if convert else row)
            except (KeyError, TypeError, AttributeError) as exc:  # a field missing or of the wrong kind
                raise MalformedRow(f"cannot be read ({type(exc).__name__}: {exc})", row=number) from None
    except MalformedRow as exc:
        at = exc.row if exc.row is not None else number
        where = f"{file.file.local}: row {at}" if at is not None else file.file.local
        raise HarnessError(f"{where}: {exc.reason}") from None
    if not rows:
        raise HarnessError(f"{file.file.local}: no rows (an empty file)")
    return datasets.Dataset.from_list(rows)


def _same_fields(row: Any, fields: list[str] | None) -> list[str]:
    """The fields of a file already in the task's schema (no converter checks its rows): each row
    is a JSON object with the first row's fields."""
    if not isinstance(row, dict):
        raise MalformedRow(f"not a JSON object (a {_json_kind(row)})")
    if fields is None:
        return sorted(row)
    missing = [f for f in fields if f not in row]
    if missing:
        raise MalformedRow(f"missing the field {missing[0]!r} (the first row has {', '.join(fields)})")
    extra = sorted(set(row) - set(fields))
    if extra:
        raise MalformedRow(f"has the field {extra[0]!r}, which the first row lacks")
    return fields


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
