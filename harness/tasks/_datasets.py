"""Where an lm-eval task's dataset is on this machine, for tasks that load it lm-eval's way (a hub
`dataset_path`, or a packaged loader such as `json` over `hf://datasets/...` files).

Found in order: laid out under the data directory as the hub repository is (`<data-dir>/<org>/<name>/...`,
e.g. `hf download ORG/NAME --repo-type dataset --local-dir <data-dir>/ORG/NAME`), then in the Hugging
Face datasets cache (the dataset loaded once online), else fetched from the hub, which offline
($HF_HUB_OFFLINE or $HF_DATASETS_OFFLINE) means missing: a task whose data is missing is refused in
one line before any work. Data loaded from the data directory is hashed into the task's hash and the
record, as harness's own tasks' files are.

Tasks with their own loader (`custom_dataset`, a Python `class`) are not located here: harness's own
tasks declare their files (harness.tasks.data), others load as they do.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness._util.files import sha256_file
from harness.tasks.data import DATA_DIR_ENV, DataFile, ResolvedFile

HUB_FILES = "hf://datasets/"
_TRUE = {"1", "ON", "YES", "TRUE"}

Where = Literal["data_dir", "hf-cache", "hub", "missing"]


@dataclass(frozen=True)
class Location:
    """Where one task's dataset is: `where`, the dataset as the task names it, and for `data_dir` the
    config values that load it from there (set while the task loads, then put back, so the task's
    config and hash name the hub dataset, not a folder of this machine) and the files it reads."""

    where: Where
    dataset: str
    local: dict[str, Any] = field(default_factory=dict)
    paths: tuple[Path, ...] = ()
    """With `data_dir`: the files in the data directory the dataset is read from."""

    @property
    def present(self) -> str:
        return {"data_dir": "yes", "hf-cache": "yes", "hub": "hub", "missing": "no"}[self.where]

    @property
    def shown(self) -> str:
        """The `harness tasks` data column."""
        return self.where if self.where in ("data_dir", "hf-cache") else f"hub:{self.dataset}"

    def refusal(self, task: str, data_dir: Path | None, why: str = "is not on this machine and the hub is offline") -> str:
        """One line: what is missing and how to provide it."""
        root = str(data_dir) if data_dir is not None else "DATA_DIR"
        repo = self.dataset.split(" ")[0]
        repo = _hub_parts(repo)[0] if repo.startswith(HUB_FILES) else repo
        where = "" if data_dir is not None else f" (the data directory: --data-dir or ${DATA_DIR_ENV})"
        return (
            f"task {task}: its dataset {self.dataset} {why}: lay the hub repository out under {root}/{repo}{where} "
            f"(hf download {repo} --repo-type dataset --local-dir {root}/{repo}), "
            "or load it once online into the Hugging Face datasets cache"
        )


def locate(config: Mapping[str, Any], data_dir: Path | None) -> Location | None:
    """Where the dataset of a task with `config` (its YAML's keys) is; None for a task that is not
    loaded lm-eval's way from the hub (its own loader, a local file, a URL)."""
    if config.get("class") or config.get("custom_dataset"):
        return None
    path = config.get("dataset_path")
    if not isinstance(path, str) or not path:
        return None
    if _is_packaged_loader(path):
        return _locate_files(config, data_dir)
    if "://" in path or path.startswith((".", "/", "~")) or path.count("/") > 1:
        return None
    name = config.get("dataset_name")
    shown = f"{path} ({name})" if name else path
    if data_dir is not None and (folder := data_dir / path).is_dir():
        return Location("data_dir", shown, {"dataset_path": str(folder)}, tuple(_repository_files(folder)))
    if _in_datasets_cache(path, name):
        return Location("hf-cache", shown)
    return Location("missing" if offline() else "hub", shown)


def offline() -> bool:
    return any(os.environ.get(name, "").upper() in _TRUE for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _is_packaged_loader(path: str) -> bool:
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    return path in _PACKAGED_DATASETS_MODULES


def _locate_files(config: Mapping[str, Any], data_dir: Path | None) -> Location | None:
    """A packaged loader (`json`, `csv`, ...) over `hf://datasets/ORG/NAME/FILE` files: found as
    `<data-dir>/ORG/NAME/FILE`, else in the hub's file cache. Other files (URLs, local paths) are
    left to the loader."""
    kwargs = config.get("dataset_kwargs") or {}
    declared = kwargs.get("data_files")
    urls = _strings(declared)
    if not urls or not all(url.startswith(HUB_FILES) for url in urls):
        return None
    shown = urls[0] if len(urls) == 1 else f"{urls[0]} and {len(urls) - 1} more"
    if data_dir is not None:
        local = {url: _local_file(url, data_dir) for url in urls}
        if all(local.values()):
            paths = tuple(dict.fromkeys(Path(path) for url in urls for path in sorted(glob.glob(local[url] or ""))))
            return Location("data_dir", shown, {"dataset_kwargs": {**kwargs, "data_files": _replaced(declared, local)}}, paths)
    if all(_in_hub_cache(url) for url in urls):
        return Location("hf-cache", shown)
    return Location("missing" if offline() else "hub", shown)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


def _replaced(value: Any, local: Mapping[str, str | None]) -> Any:
    if isinstance(value, str):
        return local[value]
    if isinstance(value, Mapping):
        return {k: _replaced(v, local) for k, v in value.items()}
    return [_replaced(v, local) for v in value]


def _hub_parts(url: str) -> tuple[str, str, str | None]:
    """`hf://datasets/ORG/NAME[@REV]/FILE` -> (ORG/NAME, FILE, REV)."""
    org, name, *rest = url.removeprefix(HUB_FILES).split("/")
    name, _, revision = name.partition("@")
    return f"{org}/{name}", "/".join(rest), revision or None


def _local_file(url: str, data_dir: Path) -> str | None:
    """The local path (a glob pattern if the URL is one) when at least one file is there."""
    repo, file, _ = _hub_parts(url)
    pattern = str(data_dir / repo / file)
    return pattern if glob.glob(pattern) else None


def _in_hub_cache(url: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    repo, file, revision = _hub_parts(url)
    return isinstance(try_to_load_from_cache(repo, file, revision=revision, repo_type="dataset"), str)


def _in_datasets_cache(path: str, name: str | None) -> bool:
    """Whether `datasets` has prepared this dataset (and configuration) before: its cache folder
    `<org>___<name>/<config>/<version>/<hash>`, as `datasets` looks for it offline."""
    from datasets import config as datasets_config
    from datasets.naming import camelcase_to_snakecase

    parts = path.split("/")
    parts[-1] = camelcase_to_snakecase(parts[-1])
    root = Path(datasets_config.HF_DATASETS_CACHE).expanduser() / "___".join(parts)
    return any(p.is_dir() for p in root.glob(f"{glob.escape(name) if name else '*'}/*/*"))


def _repository_files(folder: Path) -> list[Path]:
    """Every file of a dataset repository laid out locally, hidden ones (`.cache/`, `.git/`) aside."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def resolved(location: Location, data_dir: Path) -> list[ResolvedFile]:
    """The files a dataset in the data directory is read from, hashed (split `all`: a repository's
    files serve every split), named by their place in the data directory and on the hub."""
    files = []
    for path in location.paths:
        relative = path.relative_to(data_dir).as_posix()
        repo = "/".join(relative.split("/")[:2])
        files.append(ResolvedFile(DataFile("all", relative, repo, relative[len(repo) + 1 :]), path, "data_dir", sha256_file(path)))
    return files
