"""A sweep of head-only variants (EigenShift at several k and alpha) and their base, evaluated as
one shared-trunk group, gives exactly what evaluating each of them alone gives; the members'
models are never built. A tiny randomly initialised Llama folder (with the embedded default's
tokenizer) keeps it to seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.engine._run import run
from harness.lm import _shared_trunk
from harness.models import resolve_model
from harness.spec._spec import VariantSpec, build_spec
from harness.tasks.index import known_names, task_manager
from harness.variant._variant import Variant
from harness.wrappers import WRAPPERS
from harness.wrappers._fitting import FitData, Fitted, fit_params_of, header, write_artifact

pytestmark = pytest.mark.slow  # sweeps of the embedded default

TASKS = "truthfulqa_mc1,arithmetic_2da"


def _tiny_folder(path: Path, tokenizer_folder: Path) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _artifact(folder: Path, path: Path) -> Path:
    """An eigenshift artifact for the tiny model (its head's SVD, a made-up toxic gap)."""
    from safetensors.torch import load_file

    weight = load_file(str(folder / "model.safetensors"))["model.embed_tokens.weight"]
    _, s, vt = torch.linalg.svd(weight, full_matrices=False)
    gap = torch.randn(32, generator=torch.Generator().manual_seed(2))
    ((name, params),) = VariantSpec.parse(f"{folder}+eigenshift").resolved()
    base = Variant(VariantSpec.parse(str(folder)), resolve_model(str(folder)))
    fit_params = fit_params_of(params, WRAPPERS.get(name).fitter.params)
    tensors = {"vt": vt, "s": s, "delta": vt @ gap, "delta_repo": vt.T @ gap}
    write_artifact(path, Fitted(tensors, FitData({}, "made up in the test")), header(name, fit_params, base.identity))
    return path


def _run(models: list[str], out: Path, no_base: bool = False):
    given = {"model": models, "tasks": TASKS, "limit": 3, "batch_size": 4, "device": "cpu", "output_dir": str(out), "no_base": no_base}
    record, folder = run(build_spec(given, known_names(task_manager())), ["test"])
    samples = {}
    for result in record.results:
        if result.samples_file:
            for line in (folder / result.samples_file).read_text().splitlines():
                sample = json.loads(line)
                samples[(result.variant, result.task, sample["doc_id"])] = sample["resps"]
    return record, samples


def test_a_sweep_group_equals_its_variants_one_by_one(embedded_default, tmp_path, monkeypatch):
    from harness.models.loading import float_folder

    folder = _tiny_folder(tmp_path / "tiny", float_folder(embedded_default))
    artifact = _artifact(folder, tmp_path / "es.safetensors")
    sweep = f"{folder}+eigenshift:k=2|8,alpha=0.5,artifact={artifact}"

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache_group"))
    group, group_samples = _run([sweep], tmp_path / "out")
    assert [v.load_seconds is None for v in group.variants] == [False, True, True]
    assert all(v.cost is not None for v in group.variants)

    alone_samples = {}
    for n, variant in enumerate(group.variants):
        monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / f"cache_{n}"))
        record, samples = _run([variant.model], tmp_path / f"out_{n}", no_base=True)
        (alone,) = record.variants
        assert alone.identity == variant.identity and alone.load_seconds is not None
        assert alone.cost == variant.cost and alone.applied == variant.applied
        assert {(r.task, tuple(r.metrics.items())) for r in record.results} == {
            (r.task, tuple(r.metrics.items())) for r in group.results if r.variant == variant.identity
        }
        alone_samples.update(samples)
    assert alone_samples.keys() == group_samples.keys()
    for key, resps in group_samples.items():
        for mine, theirs in zip(resps, alone_samples[key], strict=True):
            assert abs(mine[0][0] - theirs[0][0]) <= 1e-6 and mine[0][1] == theirs[0][1], key
    # the alphas really steer: not every member scores as the base does
    base = group.variants[0].identity
    assert any(
        abs(resps[0][0][0] - group_samples[(base, *key[1:])][0][0][0]) > 1e-4 for key, resps in group_samples.items() if key[0] != base
    )


def test_plan_groups_head_only_variants_of_one_base(embedded_default):
    spec = build_spec(
        {"model": ["smollm2-135m-instruct+eigenshift:k=2|4", "smollm2-135m-instruct+exit:layer=3"], "tasks": "arithmetic"}, ["arithmetic"]
    )
    variants = [Variant(v, resolve_model(v.base)) for v in spec.variants]
    names = [v.spec.model for v in variants]
    groups = _shared_trunk.plan(variants)
    assert len(groups) == 1
    ((leader, members),) = groups.items()
    assert "+" not in names[leader]
    assert sorted(names[m] for m in members) == sorted(n for n in names if "eigenshift" in n)
