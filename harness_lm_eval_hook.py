"""Make `lm_eval --model harness ...` work without editing lm-eval.

lm-eval 0.4 resolves `--model NAME` against its registry before any user code runs and has no
plugin discovery, so an installed package cannot add a model type to its CLI. This module, imported
at interpreter start by `harness_lm_eval.pth`, registers a lazy placeholder
("harness.lm._harness_lm:HarnessLM", where the class is defined: lm-eval upgrades a placeholder
only to a class of that module and name) right after `lm_eval.api.registry` is first imported. It imports nothing else: harness itself is
imported only if `--model harness` is actually used.
"""

import importlib
import importlib.abc
import importlib.util
import sys

_REGISTRY_MODULE = "lm_eval.api.registry"
_MODEL_NAME = "harness"
_MODEL_TARGET = "harness.lm._harness_lm:HarnessLM"


class _RegisteringLoader(importlib.abc.Loader):
    """Runs the real loader, then adds harness's placeholder to lm-eval's model registry."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module) -> None:
        self._inner.exec_module(module)
        # lm-eval fills its built-in models only into an empty registry: let it do so first.
        importlib.import_module("lm_eval.models")
        if _MODEL_NAME not in module.model_registry:
            module.model_registry.register(_MODEL_NAME, target=_MODEL_TARGET)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != _REGISTRY_MODULE:
            return None
        sys.meta_path.remove(self)  # one module, once: the real finders take it from here
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


if not any(isinstance(f, _Finder) for f in sys.meta_path):
    sys.meta_path.insert(0, _Finder())
