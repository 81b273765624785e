"""The lazy public API: `import harness` imports neither torch nor lm-eval, and a name is the same
object on every access (it once was a module first and a function after)."""

from __future__ import annotations

import subprocess
import sys


def _imported_after(code: str) -> set[str]:
    heavy = "('torch', 'lm_eval', 'transformers', 'numpy')"
    probe = f"import sys\n{code}\nprint(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {heavy})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(done.stdout.split())


def test_import_harness_imports_no_torch_lm_eval_transformers_or_numpy():
    assert _imported_after("import harness") == set()
    assert _imported_after("import harness.lm, harness.engine, harness.spec, harness.wrappers, harness.api") == set()
    # what a plugin module uses at its import, and the API's entry point before it is called
    used = "harness.register_wrapper, harness.Param, harness.Applied, harness.register_scorer, harness.ScorerIdentity"
    assert (
        _imported_after(f"import harness\n{used}, harness.register_model, harness.PackagedGGUF, harness.evaluate, harness.__version__")
        == set()
    )


def test_a_public_name_is_the_same_object_on_every_access():
    import harness
    from harness.engine._run import run

    assert harness.run is run
    from harness import run as again

    assert again is run and callable(again)
    assert sorted(dir(harness)) == sorted(harness.__all__)
    for name in harness.__all__:
        assert getattr(harness, name) is getattr(harness, name), name
    from harness import evaluate

    assert evaluate is harness.evaluate and callable(evaluate)


def test_the_version_is_the_installed_distributions():
    import importlib.metadata

    import harness

    assert harness.__version__ == importlib.metadata.version("harness")
