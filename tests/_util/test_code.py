import functools
import importlib
import sys
import textwrap

import pytest

from harness._util import code


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A user's package `mypkg`: `wrap` imports `helpers` (and harness), `report` is off its path."""
    root = tmp_path / "mypkg"
    root.mkdir()
    files = {
        "__init__.py": "",
        "wrap.py": """
            from typing import TYPE_CHECKING
            from mypkg import helpers
            from harness.errors import HarnessError
            if TYPE_CHECKING:
                from mypkg import report
            def scale(x):
                return helpers.factor() * x
        """,
        "helpers.py": "def factor():\n    return 2\n",
        "report.py": "def show():\n    return 'table'\n",
    }
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
        del sys.modules[name]
    for cached in (code.module_closure, code._file_sha256):
        cached.cache_clear()


def _fresh_digest(*modules: str) -> str:
    code.module_closure.cache_clear()
    code._file_sha256.cache_clear()
    return code.code_digest(*modules)


def test_the_closure_follows_imports_in_the_package_and_harness_but_not_type_checking_ones(package):
    names = dict(code.module_closure("mypkg.wrap"))
    assert {"mypkg", "mypkg.wrap", "mypkg.helpers", "harness", "harness.errors"} <= set(names)
    assert "mypkg.report" not in names
    assert "typing" not in names  # libraries are keyed by their versions instead


def test_an_edit_on_the_path_changes_the_digest_and_one_off_it_does_not(package):
    before = _fresh_digest("mypkg.wrap")
    (package / "report.py").write_text("def show():\n    return 'a new table'\n")
    assert _fresh_digest("mypkg.wrap") == before
    (package / "helpers.py").write_text("def factor():\n    return 3\n")
    assert _fresh_digest("mypkg.wrap") != before


def test_a_digest_is_found_without_importing_the_module(package):
    code.code_digest("mypkg.wrap")
    assert "mypkg.wrap" not in sys.modules


def test_a_loaded_module_is_digested_from_its_own_file(package):
    module = importlib.import_module("mypkg.wrap")
    assert dict(code.module_closure("mypkg.wrap"))["mypkg.wrap"] == package / "wrap.py"
    assert module.scale(1) == 2


def test_a_module_without_source_is_refused_in_one_line():
    with pytest.raises(Exception, match="cannot find the source of module no_such_module_here"):
        code.module_closure("no_such_module_here")


def test_a_callable_is_digested_by_its_file_and_the_harness_code_it_imports(package):
    module = importlib.import_module("mypkg.wrap")
    first = code.callable_digest(functools.partial(module.scale))
    assert first is not None and first == code.callable_digest(module.scale)
    assert code.callable_digest(len) is None  # a builtin has no source
    harness_function = code.callable_digest(code.code_digest)
    assert harness_function == code.code_digest("harness._util.code")


def test_a_wrapper_is_digested_as_the_function_it_wraps(package):
    """The engine memoises a task's process_docs in a functools.wraps wrapper: the task's hash must
    key the task's function, not the engine's code (an edit to the engine left every such task cold)."""
    module = importlib.import_module("mypkg.wrap")

    @functools.wraps(module.scale)
    def memo(x):
        return module.scale(x)

    assert code.callable_digest(memo) == code.callable_digest(module.scale) != code.callable_digest(_fresh_digest)


def test_library_versions_name_the_libraries_on_the_scoring_path():
    versions = code.library_versions()
    assert set(versions) == set(code.LIBRARIES)
    assert versions["torch"].startswith("2.")


def test_the_package_digest_covers_every_file_and_not_where_the_package_lies(tmp_path, monkeypatch):
    import shutil

    ignore = shutil.ignore_patterns("__pycache__")
    first, second = (shutil.copytree(code._HARNESS_ROOT, tmp_path / where / "harness", ignore=ignore) for where in ("a", "b"))
    digests = []
    for root in (first, second):
        monkeypatch.setattr(code, "_HARNESS_ROOT", root)
        code._file_sha256.cache_clear()
        digests.append(code.package_digest())
    assert digests[0] == digests[1]  # the same source in two places
    template = next(second.rglob("*.j2"))
    template.write_text(template.read_text() + " ")
    code._file_sha256.cache_clear()
    assert code.package_digest() != digests[0]  # not only Python: templates too


def test_a_task_helper_shipped_inside_harness_is_keyed_as_it_would_be_in_any_folder(tmp_path):
    """harness/tasks/library/*/utils.py lies inside the package but in no package of it: its digest
    is its file's and the harness code it imports, as for a copy of the folder anywhere else, so
    moving the task library into harness changed no task's hash."""
    import importlib.util
    import shutil

    from harness.tasks.index import LIBRARY

    def loaded(path):
        spec = importlib.util.spec_from_file_location(str(path.with_suffix("")), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.load_dataset

    shipped = LIBRARY / "mmlu" / "utils.py"
    copy = tmp_path / "mmlu" / "utils.py"
    copy.parent.mkdir()
    shutil.copy(shipped, copy)
    assert code.callable_digest(loaded(shipped)) == code.callable_digest(loaded(copy)) is not None
