"""Shared fixtures (the offline data, one model cache per session, a fresh request cache per test, a
tiny vision-language model) and the rule that a skipped test fails the run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO, tiny_llava


def _data_dir() -> Path:
    value = os.environ.get("HARNESS_DATA_DIR") or str(REPO.parent / "shared" / "data")
    path = Path(value)
    if not (path / "arithmetic" / "two_digit_addition.jsonl").is_file():
        pytest.exit(f"the offline data is missing: set HARNESS_DATA_DIR (looked in {path})", returncode=3)
    return path.resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _data_dir()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """Converted models, shared by every test of the session (the GGUF is dequantised once)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def task_index_dir(tmp_path_factory) -> Path:
    """Where the tests' caches keep lm-eval's task index (tens of seconds to build): the user's
    folder when it holds the index of this lm-eval, else one built once for the session."""
    from harness.tasks._lm_eval_index import builtin_folder, cache_file

    user_file, _ = cache_file(builtin_folder())
    return user_file.parent if user_file.is_file() else tmp_path_factory.mktemp("task-index")


@pytest.fixture
def env(monkeypatch, tmp_path, data_dir, models_dir, task_index_dir) -> dict[str, str]:
    """Environment of a test: a fresh cache (its models/ and lm-eval's task index shared), the
    offline data, no hub."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "models").symlink_to(models_dir, target_is_directory=True)
    (cache / "task-index").symlink_to(task_index_dir, target_is_directory=True)
    values = {
        "HARNESS_CACHE_DIR": str(cache),
        "HARNESS_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **values}


@pytest.fixture
def embedded_default(monkeypatch, tmp_path, data_dir, models_dir):
    """A fresh cache whose models/ is the user's when it holds the embedded default converted (no
    20 s conversion), else the session's; the embedded default, converted."""
    from harness._util.paths import cache_dir
    from harness.models import resolve_model
    from harness.models.loading import ensure_float_folder, float_folder

    user_models = cache_dir() / "models"
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(cache))
    monkeypatch.setenv("HARNESS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve_model("smollm2-135m-instruct")
    name = float_folder(resolved).name
    linked = user_models if (user_models / name / "config.json").is_file() else models_dir
    (cache / "models").symlink_to(linked, target_is_directory=True)
    ensure_float_folder(resolved)
    return resolved


@pytest.fixture
def tiny_vlm(embedded_default, tmp_path) -> Path:
    """A tiny randomly initialised LLaVA with the embedded default's tokenizer, saved as a folder."""
    from harness.models import float_folder

    return tiny_llava(tmp_path / "tiny-llava", float_folder(embedded_default))


# No skipped test counts as a pass: a skip (of a test, in its fixtures, or of a whole module) is
# reported as a failure, so a run that skipped something cannot come out green.
SKIP_FAILS = "a skip fails this suite (install what the test needs, see the README): "


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = SKIP_FAILS + _skip_reason(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if report.skipped:
        report.outcome = "failed"
        report.longrepr = SKIP_FAILS + _skip_reason(report)
    return report


def _chromium() -> str:
    found = os.environ.get("HARNESS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("no chromium executable: `apt-get install -y chromium` (or set HARNESS_CHROMIUM)")
    return found


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: `pip install playwright` (no browser download needed)")
    executable = _chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()
