"""The wrapper registry: a name is registered once."""

from __future__ import annotations

import pytest

from harness.wrappers import WRAPPERS, register_wrapper


def test_registering_a_name_twice_is_an_error():
    name = next(iter(WRAPPERS.names()))
    with pytest.raises(ValueError, match="already registered"):
        register_wrapper(name, doc="again")(lambda model, tokenizer, params: None)


def test_a_wrapper_registered_outside_harness_names_where_it_comes_from(monkeypatch):
    """Its module's distribution (`NAME==VERSION`), else the module; harness's own wrappers name none."""
    import yaml

    monkeypatch.setattr(WRAPPERS, "_items", dict(WRAPPERS._filled()))  # the registry as it was, after the test
    for module, name in (("my_lab_wrappers", "lab-scale"), ("yaml.lab_wrappers", "yaml-scale")):
        namespace = {"__name__": module}
        exec("def apply(model, tokenizer, params):\n    pass\n", namespace)
        register_wrapper(name, doc="scales")(namespace["apply"])
    assert WRAPPERS.get("lab-scale").plugin == "my_lab_wrappers"
    assert WRAPPERS.get("yaml-scale").plugin == f"PyYAML=={yaml.__version__}"
    assert all(w.plugin is None for name, w in WRAPPERS if name not in ("lab-scale", "yaml-scale"))
