"""harness.spec's OPTIONS are the one source of a run's settings: the eval flags, the --config keys,
build_spec's defaults and RunSpec's field defaults all agree with it."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import get_args

import pytest
import yaml

from harness.cli._main import _parser
from harness.errors import HarnessError
from harness.models import DEFAULT_MODEL
from harness.records._schema import SampleMode
from harness.spec import DEFAULT_TASKS, FIELDS, OPTIONS, RunSpec, VariantSpec, build_spec, load_config
from harness.spec._options import SAMPLE_MODES


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def test_eval_flags_are_the_options_with_their_help():
    actions = _subparser(_parser(), "eval")._actions
    flags = {a.dest: a for a in actions if a.help != argparse.SUPPRESS}  # lm-eval's underscore aliases are hidden
    for setting in OPTIONS:
        action = flags[setting.name]
        assert action.option_strings == [setting.flag] and action.help == setting.help
        assert action.default is None, "an unset flag must leave the --config value or the default"
    assert tuple(o.name for o in OPTIONS) == FIELDS


def test_help_names_the_defaults():
    shown = {o.name: o.help for o in OPTIONS}
    assert shown["model"].endswith(f"default {DEFAULT_MODEL}") and shown["tasks"].endswith(f"default {','.join(DEFAULT_TASKS)}")
    assert (
        "(default 1234)" in shown["seed"]
        and "(default 8)" in shown["batch_size"]
        and "(default runs/, which git ignores)" in shown["output_dir"]
    )


def test_config_keys_are_the_options(tmp_path):
    config = tmp_path / "all.yaml"
    # Each key with its default, as YAML writes it: a value of a type the option takes.
    written = {
        o.name: list(o.default) if isinstance(o.default, tuple) else str(o.default) if isinstance(o.default, Path) else o.default
        for o in OPTIONS
    }
    config.write_text(yaml.safe_dump(written))
    assert set(load_config(config)) == set(FIELDS)
    config.write_text("seeds: 1\n")
    with pytest.raises(HarnessError, match=r"unknown field 'seeds' \(did you mean seed\?\)"):
        load_config(config)


def test_what_is_not_given_takes_the_options_default(monkeypatch):
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    built = build_spec({}, list(DEFAULT_TASKS))
    assert built.variants == (VariantSpec.parse(DEFAULT_MODEL),) and built.tasks == DEFAULT_TASKS
    fields = {f.name: f for f in dataclasses.fields(RunSpec)}
    compared = [o for o in OPTIONS if o.name in fields and fields[o.name].default is not dataclasses.MISSING]
    assert {o.name for o in compared} == set(FIELDS) - {"model", "tasks"}
    for setting in compared:
        assert fields[setting.name].default == setting.default, setting.name
        assert getattr(built, setting.name) == setting.default, setting.name


def test_sample_modes_are_the_records():
    assert get_args(SampleMode) == SAMPLE_MODES
