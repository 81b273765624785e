"""Build time of a leaderboard release (and its site) from 1,000 synthetic run records.

    python bench/leaderboard_build.py [--runs 1000] [--docs 50] [--resamples 1000]

Each synthetic run holds a base of its own (distinct weights hash) and two quantize variants of it,
on four tasks of `--docs` documents: two three-way multiple-choice quizzes (acc), a generation task
(exact_match) and a toxicity-like task (toxicity_probability, lower is better), with random
per-document answers and their sample logs, so the release's paired differences are computed as
`harness compare` computes them. Timed in one process, one after another on the same runs:
`harness compare` over all runs (the paired statistics the release reuses), the release build (which
includes that comparison), a rebuild of the same version (byte-identical, so nothing is written),
and the site. Reported: seconds, and the release build as a ratio to the comparison alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.analysis._compare import compare
from harness.leaderboard import build_release, build_site
from harness.records._runs import load_run
from harness.records._schema import (
    BaseIdentity,
    CostRecord,
    DataFileRecord,
    Environment,
    InterventionRecord,
    MetricValue,
    RunRecord,
    RunSpecRecord,
    TaskResult,
    Timings,
    VariantRecord,
    WrapperRecord,
    write_record,
)

TASKS = {"quiz_a": "acc", "quiz_b": "acc", "gen": "exact_match", "tox": "toxicity_probability"}
HIGHER = {"acc": True, "exact_match": True, "toxicity_probability": False}
ENVIRONMENT = Environment(
    harness_version="0.1.0",
    git_commit=None,
    git_dirty=None,
    python=platform.python_version(),
    packages={},
    platform="synthetic",
    processor="",
    cpu_count=1,
    memory_gb=None,
    accelerator=None,
    torch_threads=1,
)


def _variant(index: int, bits: int | None) -> VariantRecord:
    base = BaseIdentity(weights_sha256=f"{index:064x}", format="safetensors", dtype="float32")
    wrappers = () if bits is None else (WrapperRecord(name="quantize", params={"bits": str(bits), "group": "64"}),)
    intervention = InterventionRecord(base=base, wrappers=wrappers)
    model = f"synthetic-{index:04d}" + ("" if bits is None else f"+quantize:bits={bits}")
    return VariantRecord(
        identity=intervention.identity(),
        model=model,
        base_origin="local",
        base_path=f"/models/{index}",
        intervention=intervention,
        load_seconds=1.0,
        load_converted=False,
        cost=CostRecord(parameters=10**8, weight_bytes=(4 * 10**8 if bits is None else bits * 10**8 // 8), flops_per_token=2e8),
    )


def write_run(folder: Path, index: int, docs: int, rng: np.random.Generator) -> None:
    variants = [_variant(index, bits) for bits in (None, 4, 8)]
    skill = rng.uniform(0.3, 0.8)
    results = []
    for variant in variants:
        drift = 0.0 if not variant.intervention.wrappers else rng.normal(-0.03, 0.03)
        for task, metric in TASKS.items():
            right = rng.random(docs) < np.clip(skill + drift if metric != "toxicity_probability" else 0.2 - drift, 0, 1)
            lines = []
            for doc in range(docs):
                if task.startswith("quiz"):
                    chosen = 0 if right[doc] else int(rng.integers(1, 3))
                    response = [[-1.0 if c == chosen else -2.0 - rng.random(), False] for c in range(3)]
                else:
                    response = [f"answer {doc} {int(right[doc])}"]
                lines.append(
                    json.dumps(
                        {
                            "doc_id": doc,
                            "filter": "none",
                            "doc_hash": f"{task}-{doc}",
                            "metrics": [metric],
                            metric: float(right[doc]),
                            "filtered_resps": response,
                        }
                    )
                )
            samples = f"samples/{variant.identity[:12]}/{task}.jsonl"
            (folder / samples).parent.mkdir(parents=True, exist_ok=True)
            (folder / samples).write_text("\n".join(lines) + "\n")
            mean = float(right.mean())
            results.append(
                TaskResult(
                    variant=variant.identity,
                    task=task,
                    kind="task",
                    version="1.0",
                    num_fewshot=0,
                    n_samples=docs,
                    config_hash="c" * 64,
                    data_files=(DataFileRecord(split="test", path=f"synthetic/{task}.jsonl", origin="data_dir", sha256="d" * 64),),
                    metrics={metric: MetricValue(value=mean, stderr=float(np.sqrt(mean * (1 - mean) / docs)))},
                    higher_is_better={metric: HIGHER[metric]},
                    samples_file=samples,
                    seconds=0.0,
                    requests_computed=docs,
                    requests_cached=0,
                )
            )
    record = RunRecord(
        run_id=f"20270101T{index // 3600:02d}{index // 60 % 60:02d}{index % 60:02d}Z-bench{index:04d}",
        created_at=f"2027-01-01T{index // 3600:02d}:{index // 60 % 60:02d}:{index % 60:02d}+00:00",
        command=("harness", "eval"),
        spec_given={},
        spec=RunSpecRecord(
            models=tuple(v.model for v in variants),
            tasks=tuple(TASKS),
            limit=docs,
            num_fewshot=None,
            batch_size=8,
            device="cpu",
            seed=1234,
            data_dir=None,
            samples="public",
        ),
        variants=tuple(variants),
        results=tuple(results),
        lm_eval={},
        environment=ENVIRONMENT,
        timings=Timings(total_seconds=1.0, setup_seconds=0.1),
    )
    write_record(record, folder)


def timed(call):
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--docs", type=int, default=50)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="leaderboard-bench-"))
    try:
        rng = np.random.default_rng(0)
        made, _ = timed(lambda: [write_run(work / "runs" / f"run{i:04d}", i, args.docs, rng) for i in range(args.runs)])
        compared, _ = timed(lambda: compare([load_run(p) for p in sorted((work / "runs").iterdir())], resamples=args.resamples))
        built, release = timed(lambda: build_release([work / "runs"], work / "board", resamples=args.resamples))
        rebuilt, again = timed(lambda: build_release([work / "runs"], work / "board", version=release.version, resamples=args.resamples))
        sited, index = timed(lambda: build_site(work / "board"))
        assert again.status == "unchanged"
        size = release.path.stat().st_size / 1e6
        site = sum(p.stat().st_size for p in index.parent.rglob("*") if p.is_file()) / 1e6
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
        print(
            f"work: {args.runs} run records x 3 variants x {len(TASKS)} tasks x {args.docs} documents,"
            f" {args.resamples} bootstrap resamples ({made:.1f} s to write them)"
        )
        print(f"release: {release.rows} rows, {release.columns} columns, {size:.1f} MB; site {site:.1f} MB")
        print()
        print(f"{'step':44s}{'wall s':>8s}")
        print(f"{'harness compare over all runs':44s}{compared:8.1f}")
        print(f"{'leaderboard build (includes the comparison)':44s}{built:8.1f}")
        print(f"{'rebuild of the same version (unchanged)':44s}{rebuilt:8.1f}")
        print(f"{'leaderboard site':44s}{sited:8.1f}")
        print()
        print(f"build / compare = {built / compared:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
