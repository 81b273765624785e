"""Variants: their identity uses the resolved wrapper parameters, in order; end to end, several
variants of one base in one run stay independent and report their cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.records._schema import read_record
from harness.spec._spec import VariantSpec
from harness.wrappers import WRAPPERS, canonical_text
from tests.helpers import run_cli

BASE = "smollm2-135m-instruct"
QUANTIZED = f"{BASE}+quantize:bits=4,group=64"
EXITED = f"{BASE}+exit:layer=10"
# One log-likelihood task and one generation task (2 prompts x 2 sampled continuations).
TASKS = ("--tasks", "arithmetic_2da,rtp_nontoxic", "--limit", "6,rtp_nontoxic=2", "--toxicity-samples", "2")


def test_identity_uses_resolved_parameters():
    from harness.models import resolve_model
    from harness.variant._variant import Variant

    base = resolve_model(BASE)

    def identity(model: str) -> str:
        return Variant(VariantSpec.parse(model), base).identity

    default_group = canonical_text(WRAPPERS.get("quantize").resolve({})["group"])
    assert identity(f"{BASE}+quantize:bits=4") == identity(f"{BASE}+quantize:bits=4,group={default_group}")
    assert identity(f"{BASE}+quantize:bits=4") != identity(f"{BASE}+quantize:bits=8")
    assert identity(f"{BASE}+exit:layer=10") != identity(BASE)
    # order matters: quantize-then-exit is not exit-then-quantize
    assert identity(f"{BASE}+quantize:bits=4+exit:layer=10") != identity(f"{BASE}+exit:layer=10+quantize:bits=4")


def test_the_plugin_of_a_wrapper_is_part_of_the_identity(monkeypatch):
    """Two plugins that register the same wrapper name make two variants, whose records name them."""
    from harness.models import resolve_model
    from harness.variant._variant import Variant
    from harness.wrappers import Param, WrapperDef

    base = resolve_model(BASE)
    params = (Param("factor", float, 1.0, "a factor"),)
    identities = set()
    for plugin in ("harness-scale==1.0", "other-scale==1.0", None):
        monkeypatch.setitem(WRAPPERS._filled(), "scale", WrapperDef("scale", "scales", params, lambda *a: None, plugin=plugin))
        variant = Variant(VariantSpec.parse(f"{BASE}+scale:factor=0.5"), base)
        (wrapper,) = variant.intervention.wrappers
        assert (wrapper.name, wrapper.params, wrapper.plugin) == ("scale", {"factor": "0.5"}, plugin)
        identities.add(variant.identity)
    assert len(identities) == 3


def _eval(env: dict[str, str], cache: Path, out: Path, *args: str):
    cache.mkdir(exist_ok=True)
    if not (cache / "models").exists():
        (cache / "models").symlink_to(Path(env["HARNESS_CACHE_DIR"]) / "models", target_is_directory=True)
    done = run_cli(["eval", *args, *TASKS, "--output-dir", str(out), "--output", "json"], {**env, "HARNESS_CACHE_DIR": str(cache)})
    assert done.returncode == 0, done.stderr[-3000:]
    path = Path(json.loads(done.stdout)["record"])
    record = read_record(path)
    samples = {
        (r.variant, r.task): [json.loads(line)["resps"] for line in (path.parent / r.samples_file).read_text().splitlines()]
        for r in record.results
        if r.kind == "task"
    }
    return record, samples


@pytest.mark.slow
def test_variants_of_one_base_in_one_run_stay_independent(env, tmp_path):
    alone, alone_samples = _eval(env, tmp_path / "cache_alone", tmp_path / "out", "--model", BASE)
    # The variants come first and the base last, each from its own empty cache: had a wrapper edited a
    # base shared with the others, the base's answers here would differ from the run of the base alone.
    record, samples = _eval(
        env,
        tmp_path / "cache_together",
        tmp_path / "out",
        "--model",
        QUANTIZED,
        "--model",
        EXITED,
        "--model",
        BASE,
        "--no-base",
    )
    quantized, exited, base = record.variants
    assert base.identity == alone.variants[0].identity
    assert len({quantized.identity, exited.identity, base.identity}) == 3
    assert all(r.requests_cached == 0 for r in record.results if r.kind == "task")

    for task in ("arithmetic_2da", "rtp_nontoxic"):
        assert samples[(base.identity, task)] == alone_samples[(alone.variants[0].identity, task)]
        for variant in (quantized, exited):
            assert samples[(variant.identity, task)] != samples[(base.identity, task)], (variant.model, task)
    generations = samples[(exited.identity, "rtp_nontoxic")]
    assert len(generations) == 2 and all(len(r[0]) == 2 for r in generations)  # k=2 continuations per prompt

    assert [w.name for w in quantized.intervention.wrappers] == ["quantize"]
    assert quantized.intervention.wrappers[0].params["group"] == "64"
    # Cost as executed: quantized weights are stored in fewer bytes with the same parameters and FLOPs;
    # the exited variant runs 10 of 30 layers and the LM head.
    assert quantized.cost.parameters == base.cost.parameters
    assert quantized.cost.weight_bytes < 0.5 * base.cost.weight_bytes
    assert quantized.cost.flops_per_token == base.cost.flops_per_token
    assert exited.cost.parameters < base.cost.parameters
    assert exited.cost.flops_per_token < 0.5 * base.cost.flops_per_token
