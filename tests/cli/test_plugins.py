"""A user's plugin package, installed as pip installs it, seen by the command line: its wrapper
evaluated as a variant (whose identity names the plugin), its model name and its toxicity scorer
accepted; a broken plugin is one warning line naming it, and the rest of harness works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.records._runs import load_run
from tests.helpers import REPO, run_cli

pytestmark = pytest.mark.slow  # a pip install and runs of the embedded default through the command line

FIXTURE = REPO / "tests" / "fixtures" / "plugin"
PLUGIN = "harness-myplugin==0.1.0"


@pytest.fixture
def plugin_env(embedded_default, tmp_path) -> dict[str, str]:
    """The environment of a command that sees the plugin, installed into a folder on PYTHONPATH."""
    source, target = tmp_path / "plugin-source", tmp_path / "site"
    shutil.copytree(FIXTURE, source)  # the build writes next to its source: not into the repository
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--no-build-isolation"]
    done = subprocess.run([*pip, "--no-index", "--target", str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    paths = [str(target), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _eval(env: dict[str, str], out: Path, *args: str):
    done = run_cli(["eval", *args, "--tasks", "arithmetic_2da", "--limit", "2", "--output-dir", str(out), "--output", "json"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    return load_run(Path(json.loads(done.stdout)["record"]).parent)


def test_a_plugins_wrapper_model_and_scorer_from_the_command_line(plugin_env, tmp_path):
    listed = run_cli(["models"], plugin_env)
    assert listed.returncode == 0, listed.stderr
    assert "myplugin-smollm2" in listed.stdout and f"({PLUGIN})" in listed.stdout and "myplugin-caps" in listed.stdout

    run = _eval(plugin_env, tmp_path / "out", "--model", "smollm2-135m-instruct+myplugin:scale=0.5")
    base, variant = run.record.variants
    (wrapper,) = variant.intervention.wrappers
    assert (wrapper.name, wrapper.params, wrapper.plugin) == ("myplugin", {"scale": "0.5"}, PLUGIN)
    assert variant.applied[0].info == {"scaled": "model.norm.weight"}
    scores = {r.variant: r.metrics["acc"].value for r in run.record.results}
    assert set(scores) == {base.identity, variant.identity} and base.identity != variant.identity

    # The plugin's model name is the embedded default's weights: the same variant, answered from the cache.
    again = _eval(plugin_env, tmp_path / "out", "--model", "myplugin-smollm2", "--scorer", "myplugin-caps")
    (named,) = again.record.variants
    (result,) = again.record.results
    assert named.identity == base.identity and (result.requests_cached, result.requests_computed) == (2, 0)


def test_a_broken_plugin_is_one_warning_line_and_harness_goes_on(plugin_env, tmp_path):
    broken = tmp_path / "broken-site" / "harness_broken-1.0.dist-info"
    broken.mkdir(parents=True)
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: harness-broken\nVersion: 1.0\n")
    (broken / "entry_points.txt").write_text("[harness.wrappers]\nbroken = harness_broken_missing\n")
    env = {**plugin_env, "PYTHONPATH": os.pathsep.join([str(broken.parent), plugin_env["PYTHONPATH"]])}

    done = run_cli(["models"], env)
    assert done.returncode == 0, done.stderr
    failure = "plugin 'broken' (harness-broken==1.0, entry point harness.wrappers) failed to load: No module named 'harness_broken_missing'"
    expected = f"harness: {failure}"
    assert [line for line in done.stderr.splitlines() if "plugin" in line] == [expected]
    assert f"({PLUGIN})" in done.stdout

    refused = run_cli(["eval", "--model", "smollm2-135m-instruct+broken", "--output-dir", str(tmp_path / "out")], env)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [expected, f"harness: unknown wrapper 'broken' (did you mean droptokens?); {failure}"]
