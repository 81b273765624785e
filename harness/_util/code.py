"""Which code computed a cached answer: a digest of the source of a module and of every module it
imports, so an edit on the path that makes an answer makes a new cache key.

The import graph is read statically (every `import` in a file, function-level ones included),
without importing anything: a digest must not load torch or run a user's module twice. Only imports
within the root module's own top-level package, and into harness, are followed; the libraries are
covered by their versions (`library_versions`). A change to a module off the path (the CLI, the
reports) leaves every digest as it was, so the caches stay warm.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.errors import HarnessError

_HARNESS_ROOT = Path(__file__).resolve().parents[1]

LIBRARIES = ("lm_eval", "transformers", "torch", "tokenizers", "safetensors", "datasets", "numpy")
"""The libraries whose code computes an answer; their versions enter every answer's key."""


@functools.cache
def library_versions() -> dict[str, str]:
    """Installed versions of LIBRARIES, read from package metadata (importing none of them)."""
    return versions_of(LIBRARIES)


def versions_of(names: Sequence[str]) -> dict[str, str]:
    """Installed versions of the distributions `names` ("absent" for one not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def module_file(name: str) -> Path | None:
    """The source file of module `name`, found without importing it where it is not loaded yet
    (a loaded module, a user's wrapper for one, may have no spec on the path)."""
    module = sys.modules.get(name)
    if module is not None:
        return _source_of(module)
    if name == "harness" or name.startswith("harness."):
        return _inside_package(_HARNESS_ROOT, name.split(".")[1:])
    try:
        spec = importlib.util.find_spec(name.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    top = Path(spec.origin)
    if len(name.split(".")) == 1:
        return top
    return _inside_package(top.parent, name.split(".")[1:]) if top.name == "__init__.py" else None


def _source_of(module: ModuleType) -> Path | None:
    path = getattr(module, "__file__", None)
    return Path(path).resolve() if path and path.endswith(".py") else None


def _inside_package(root: Path, parts: list[str]) -> Path | None:
    base = root.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate.resolve()
    return None


def _imported_names(path: Path, name: str) -> set[str]:
    """Every module name `path` (module `name`) imports, relative imports resolved; for `from a
    import b` both `a` and `a.b` (b may be a submodule)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in _run_time_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                origin = ".".join([*parts, node.module] if node.module else parts)
            else:
                origin = node.module or ""
            if origin:
                names.add(origin)
                names.update(f"{origin}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _run_time_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of `tree` except those under `if TYPE_CHECKING:` (imports for the type checker
    alone, which never run)."""
    nodes: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return nodes


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _followed(name: str, top: str) -> bool:
    first = name.split(".")[0]
    return first == top or first == "harness"


@functools.cache
def module_closure(name: str) -> tuple[tuple[str, Path], ...]:
    """Module `name` and every module it imports, transitively, within its top-level package and
    harness, as sorted (name, file) pairs. A parent package's `__init__` is included: Python runs
    it on every import of a submodule."""
    top = name.split(".")[0]
    seen: dict[str, Path] = {}
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        path = module_file(current)
        if path is None:
            if current == name:
                raise HarnessError(f"cannot find the source of module {name} to key its answers by")
            continue
        seen[current] = path
        parents = [".".join(current.split(".")[:i]) for i in range(1, len(current.split(".")))]
        pending.extend(n for n in [*parents, *_imported_names(path, current)] if _followed(n, top) and n not in seen)
    return tuple(sorted(seen.items()))


def code_digest(*modules: str) -> str:
    """sha256 over the source of `modules` and everything they import (see module_closure); the
    same source gives the same digest in every checkout and process."""
    files: dict[str, Path] = {}
    for name in modules:
        files.update(module_closure(name))
    digest = hashlib.sha256()
    for name, path in sorted(files.items()):
        digest.update(f"{name}\0{_file_sha256(path)}\n".encode())
    return digest.hexdigest()


@functools.cache
def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_digest() -> str:
    """sha256 over every file of harness's source (Python, templates, schemas): what a run record
    names as the code that made it, whatever part of it a run used."""
    digest = hashlib.sha256()
    for path in sorted(p for p in _HARNESS_ROOT.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(f"{path.relative_to(_HARNESS_ROOT).as_posix()}\0{_file_sha256(path)}\n".encode())
    return digest.hexdigest()


def callable_digest(function: Any) -> str | None:
    """sha256 of the source file that defines `function` (a partial's function, a `functools.wraps`
    wrapper's wrapped one) and of the harness modules that file imports; None for a callable without
    a Python source file (a builtin)."""
    while isinstance(function, functools.partial) or hasattr(function, "__wrapped__"):
        # harness's own wrappers (the engine's process_docs memo) are plumbing, not the task's code
        function = function.func if isinstance(function, functools.partial) else function.__wrapped__
    try:
        source = inspect.getsourcefile(function)
    except TypeError:
        return None
    if source is None:
        return None
    path = Path(source).resolve()
    if _in_harness_package(path):
        parts = path.relative_to(_HARNESS_ROOT.parent).with_suffix("").parts
        return code_digest(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    followed = sorted(n for n in _imported_names(path, "") if n.split(".")[0] == "harness" and module_file(n) is not None)
    return hashlib.sha256(f"{_file_sha256(path)}\0{code_digest(*followed) if followed else ''}".encode()).hexdigest()


def _in_harness_package(path: Path) -> bool:
    """Whether `path` is a module of harness's packages. A task folder's helper shipped inside
    harness (harness/tasks/library/*/utils.py, in no package) is not: lm-eval loads it by its path,
    and it is keyed as every task folder's helper is, wherever the folder lies."""
    if _HARNESS_ROOT not in path.parents:
        return False
    folder = path.parent
    while folder != _HARNESS_ROOT:
        if not (folder / "__init__.py").is_file():
            return False
        folder = folder.parent
    return True
