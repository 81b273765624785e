"""harness.evaluate as a notebook uses it: the CLI's options by name, bad input refused in one line
before any work, the `harness eval` command that makes the same run, and one run of the embedded
default in a fresh process that leaves the caller's logging, warning filters and environment as
they were."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import harness
from harness.api._evaluate import Options, command
from harness.cli._main import _parser
from harness.spec import FIELDS
from harness.spec._spec import build_spec
from harness.tasks.index import known_names, task_manager


def test_the_options_are_harness_evals():
    assert set(typing.get_type_hints(Options)) == set(FIELDS) - {"model", "tasks"}


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"limt": 2}, "harness.evaluate: unknown option 'limt' (did you mean limit?)"),
        ({"model": "smollm2-135m-instruct"}, "unknown option 'model' (give it as models=...)"),
        ({"no_base": "false"}, "no_base must be True or False, got 'false'"),
        ({"limit": 2.5}, "limit must be an integer or text or a mapping of task to integer, got 2.5"),
        ({"models": ["smollm2-135m-instruct", 7]}, "models must be text or a list of text, got ['smollm2-135m-instruct', 7]"),
        ({"seed": True}, "seed must be an integer or text, got True"),
        ({"tasks": ["arithmetic_2dz"]}, "unknown task 'arithmetic_2dz' (did you mean"),
        ({"models": "smollm2-135m-instruct+exit:layre=3"}, "unknown parameter 'layre' for wrapper exit"),
        ({"limit": {"arithmetic_2db": 3}, "tasks": "arithmetic_2da"}, "--limit names 'arithmetic_2db', which is not among --tasks"),
    ],
)
def test_bad_input_is_refused_before_any_work(arguments, error, tmp_path):
    with pytest.raises(harness.HarnessError) as refused:
        harness.evaluate(output_dir=tmp_path / "out", **arguments)
    assert error in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "out").exists()


def test_the_recorded_command_makes_the_same_run(tmp_path):
    """An API run records the `harness eval` command line that, parsed by the CLI, gives the same spec."""
    given = {
        "model": ["smollm2-135m-instruct+exit:layer=15|20", "gemma-3-270m"],
        "tasks": ["arithmetic_2da", "arithmetic"],
        "limit": {"default": 5, "arithmetic_2da": 3},
        "num_fewshot": 2,
        "batch_size": "auto",
        "data_dir": str(tmp_path),
        "output_dir": str(tmp_path / "runs, mine"),
        "samples": "full",
        "no_base": True,
        "no_cache": False,
    }
    argv = command(given, yes=True)
    assert argv[:2] == ["harness", "eval"]
    args = _parser().parse_args(argv[1:])
    parsed = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    known = known_names(task_manager())
    assert args.yes
    assert build_spec(parsed, known, yes=True) == build_spec(given, known, yes=True)


SCRIPT = """
import json, logging, os, sys, warnings

import harness

def state():
    loggers = {name: logging.getLogger(name or None) for name in ("", "notebook", "transformers", "lm_eval", "datasets", "harness")}
    return {
        "loggers": {name: [l.level, [id(h) for h in l.handlers], l.propagate, l.disabled] for name, l in loggers.items()},
        "disable": logging.root.manager.disable,
        "filters": repr(warnings.filters),
        "environ": dict(os.environ),
    }

logging.getLogger().setLevel(logging.INFO)
logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))
logging.getLogger("notebook").setLevel(logging.DEBUG)
logging.getLogger("transformers").setLevel(logging.INFO)
logging.getLogger("lm_eval").setLevel(logging.DEBUG)
logging.getLogger("harness").setLevel(logging.WARNING)
warnings.filterwarnings("always", message="the notebook's own filter")
os.environ["NOTEBOOK_SETTING"] = "1"
before = state()
run = harness.evaluate(models=["smollm2-135m-instruct"], tasks="arithmetic_2da", limit=2, output_dir=sys.argv[1])
after = state()
changed = {key: [before[key], after[key]] for key in before if before[key] != after[key]}
if "environ" in changed:
    b, a = changed["environ"]
    changed["environ"] = {k: [b.get(k), a.get(k)] for k in set(b) | set(a) if b.get(k) != a.get(k)}
print(json.dumps({"folder": str(run.folder), "changed": changed}))
"""


@pytest.mark.slow  # the embedded default, in a new process
def test_a_notebook_run_returns_the_run_and_leaves_the_callers_process_as_it_was(embedded_default, tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "runs")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["changed"] == {}

    run = harness.load_run(answer["folder"])
    assert Path(answer["folder"]).parent == tmp_path / "runs"
    (result,) = run.record.results
    assert (result.task, result.n_samples, set(result.metrics)) == ("arithmetic_2da", 2, {"acc"})
    assert run.record.command == (
        "harness",
        "eval",
        "--model",
        "smollm2-135m-instruct",
        "--tasks",
        "arithmetic_2da",
        "--limit",
        "2",
        "--output-dir",
        str(tmp_path / "runs"),
    )
    assert run.record.spec_given == {
        "model": ["smollm2-135m-instruct"],
        "tasks": "arithmetic_2da",
        "limit": 2,
        "output_dir": str(tmp_path / "runs"),
    }
