"""`harness eval --executor`: flags reach the executor; bad ones fail in one line, exit 2, nothing written."""

from __future__ import annotations

import sys

import pytest

from harness.cli._main import main
from harness.engine._executors import DEFAULT_SHARD_SIZE, build_executor

BASE = ["eval", "--tasks", "arithmetic_2da", "--limit", "2"]


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--executor", "rey"], "unknown executor 'rey' (did you mean ray?); choose local or ray"),
        (["--executor", "ray", "--shard-size", "0"], "--shard-size must be >= 1, got 0"),
        (["--executor", "ray", "--shard-size", "ten"], "--shard-size must be an integer, got 'ten'"),
        (["--executor", "ray", "--max-models-per-worker", "0"], "--max-models-per-worker must be >= 1, got 0"),
        (["--executor", "ray", "--address", " "], "--address is empty"),
        (["--address", "10.0.0.1:6379"], "--address applies to --executor ray only"),
        (["--shard-size", "50"], "--shard-size applies to --executor ray only"),
        (["--executor", "local", "--max-models-per-worker", "2"], "--max-models-per-worker applies to --executor ray only"),
    ],
)
def test_bad_executor_flags_fail_in_one_line(flags, error, env, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*BASE, *flags, "--output-dir", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"harness: {error}")
    assert not out.exists()


def test_without_ray_installed_the_ray_executor_says_how_to_get_it(env, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    monkeypatch.delitem(sys.modules, "harness.engine._ray_executor", raising=False)
    assert main([*BASE, "--executor", "ray", "--output-dir", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == "harness: --executor ray needs Ray: pip install 'harness[ray]'"
    assert not (tmp_path / "out").exists()


def test_flags_reach_the_ray_executor():
    assert build_executor("local", None, None, None) is None
    executor = build_executor("ray", "ray://head:10001", "3", "25")
    assert (executor.options.address, executor.options.max_models_per_worker, executor.options.shard_size) == ("ray://head:10001", 3, 25)
    defaults = build_executor("ray", None, None, None).options
    assert (defaults.address, defaults.max_models_per_worker, defaults.shard_size) == (None, None, DEFAULT_SHARD_SIZE)
