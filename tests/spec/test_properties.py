"""Properties of the model-string parser and the config loader (Hypothesis): whatever the input,
the result is a valid object or HarnessError with a one-line message, never another exception."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.models.shape import ModelShape
from harness.spec import FIELDS, RunSpec, VariantSpec, build_spec, expand_sweeps, load_config, sweep_size
from harness.wrappers import WRAPPERS

# No example database: a test run writes nothing into the repository. The example count keeps
# this file under 30 s (the fast tier).
FAST = settings(max_examples=1200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
TASKS = ["arithmetic", "arithmetic_2da", "arithmetic_2ds"]
SHAPE = ModelShape(architecture="llama", depth=30, hidden_size=576, intermediate_size=1536, vocab_size=49152)

HOSTILE = [
    "",
    " ",
    "../../etc/passwd",
    "/etc/passwd",
    "javascript:alert(1)//",
    "a\nb",
    "\x1b[31m",
    "\x00",
    "nan",
    "inf",
    "-inf",
    "-1",
    "1e999",
    "9" * 400,
    "é",
    "|",
    "||",
    ",",
    "=",
    ":",
    "+",
    "@",
    ";",
]
VALUES = st.one_of(
    st.sampled_from(["0", "1", "3", "4", "8", "29", "30", "99", "0.5", "true", "false", "high", "low", "1-3", "8@0-8,4@9-29", "4/8"]),
    st.sampled_from(HOSTILE),
    st.integers(-5, 100).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)


def _names() -> list[str]:
    return [name for name, _ in WRAPPERS]


def _params(name: str) -> list[str]:
    return [p.name for p in WRAPPERS.get(name).params] if name in _names() else []


@st.composite
def wrapper_segments(draw) -> str:
    name = draw(st.one_of(st.sampled_from(_names()), st.sampled_from(HOSTILE), st.text(max_size=8)))
    keys = st.one_of(st.sampled_from(_params(name) or ["x"]), st.sampled_from(HOSTILE), st.text(max_size=6))
    pairs = draw(st.lists(st.tuples(keys, st.lists(VALUES, min_size=1, max_size=3)), max_size=3))
    text = ",".join(f"{key}={'|'.join(values)}" for key, values in pairs)
    return name + (":" + text if draw(st.booleans()) else "")


BASES = st.one_of(
    st.sampled_from(["smollm2-135m-instruct", "expert:arithmetic", "llava-smollm2-easyvqa", "expert:nope", "hf:org"]),
    st.sampled_from(HOSTILE),
    st.text(max_size=10),
)
MODEL_STRINGS = st.one_of(
    st.builds(lambda base, segments: "+".join([base, *segments]), BASES, st.lists(wrapper_segments(), max_size=3)),
    st.text(max_size=40),
    st.text(alphabet=string.printable, max_size=80),
)


def _one_line(error: HarnessError) -> None:
    message = str(error)
    assert message and "\n" not in message and "\r" not in message, message


@FAST
@given(MODEL_STRINGS)
def test_a_model_string_parses_or_is_refused_in_one_line(model):
    try:
        spec = VariantSpec.parse(model)
    except HarnessError as error:
        _one_line(error)
        return
    assert isinstance(spec, VariantSpec) and spec.base and spec.model == model
    try:
        # merge's sources have shapes of their own: read from files, which this property does not make
        shape = spec.check_model(SHAPE, "cpu") if all(w.name != "merge" for w in spec.wrappers) else SHAPE
    except HarnessError as error:
        _one_line(error)
        return
    assert isinstance(shape, ModelShape) and 1 <= shape.depth <= SHAPE.depth


@FAST
@given(MODEL_STRINGS)
def test_a_sweep_expands_to_as_many_model_strings_as_it_counts(model):
    try:
        size = sweep_size(model)
        if size > 64:
            return
        expanded = expand_sweeps(model)
    except HarnessError as error:
        _one_line(error)
        return
    assert len(expanded) == size
    for one in expanded:
        try:
            assert sweep_size(one) == 1
            VariantSpec.parse(one)
        except HarnessError as error:
            _one_line(error)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(HOSTILE),
    st.sampled_from(["smollm2-135m-instruct", "arithmetic_2da", "arithmetic", "cpu", "auto", "public", "full", "greedy", "5", "auto"]),
    st.text(max_size=10),
)
YAML_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6
)
CONFIGS = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)), YAML_VALUES, max_size=6).map(lambda d: yaml.safe_dump(d)),
    YAML_VALUES.map(lambda v: yaml.safe_dump(v)),
    st.text(max_size=60),
    st.binary(max_size=60),
)


@pytest.fixture(scope="module")
def config_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("config") / "c.yaml"


@FAST
@given(CONFIGS)
def test_a_config_loads_and_builds_or_is_refused_in_one_line(config_path, text):
    config_path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    try:
        loaded = load_config(config_path)
        assert set(loaded) <= set(FIELDS)
        spec = build_spec(loaded, TASKS)
    except HarnessError as error:
        _one_line(error)
        return
    assert isinstance(spec, RunSpec) and spec.variants and set(spec.tasks) <= set(TASKS)
