"""A grid of variants x tasks run locally and on a local Ray cluster (`--executor ray`): wall time,
the ratio, identical records, and memory (driver, worker peak RSS) as the grid grows.

    python bench/ray_grid.py [--tasks arithmetic_2da,xcopa_it,mmlu_anatomy] [--limit 6] [--shard-size 3]

One invocation, one machine. Every run gets an empty request cache (so every request is computed)
and shares the converted float model (converted once, before timing). Three runs of the same
4 variants x 3 tasks: local, Ray, and Ray with `--max-models-per-worker 1`. Memory as the grid grows:
each worker's peak RSS after its 1st, 2nd, ... variant build (the shards' timeline in the record), and
the bound that `--max-models-per-worker` puts on it. Each Ray run starts its own local cluster
(no --address), whose start is in its wall time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backbone_vs_lm_eval import BIN, REPO

BASE = "smollm2-135m-instruct"
WRAPPED = (f"{BASE}+quantize:bits=8", f"{BASE}+quantize:bits=4,group=64", f"{BASE}+exit:layer=15")
GIB = 1 << 30


def timed_rss(cmd: list[str], env: dict[str, str], folder: Path) -> tuple[float, str, float]:
    """Wall seconds, stdout and peak RSS (GiB) of the command's own process."""
    out, err = folder / "stdout", folder / "stderr"
    start = time.perf_counter()
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err.read_text()[-2000:]}")
    return seconds, out.read_text(), usage.ru_maxrss * 1024 / GIB


def harness(models: list[str], args, env: dict[str, str], out: Path, *extra: str) -> tuple[float, Path, float]:
    cmd = [
        str(BIN / "harness"),
        "eval",
        *(a for m in models for a in ("--model", m)),
        "--tasks",
        args.tasks,
        "--limit",
        str(args.limit),
        "--device",
        "cpu",
        "--output-dir",
        str(out),
        "--output",
        "json",
        *extra,
    ]
    seconds, stdout, rss = timed_rss(cmd, env, Path(env["HARNESS_CACHE_DIR"]))
    return seconds, Path(json.loads(stdout)["record"]).parent, rss


def fresh_env(work: Path, name: str, models: Path) -> dict[str, str]:
    cache = work / name
    cache.mkdir()
    (cache / "models").symlink_to(models, target_is_directory=True)
    return {**os.environ, "HARNESS_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}


def content(run_dir: Path) -> tuple[dict, dict]:
    """Every metric and every sample line, keyed by variant and task."""
    record = json.loads((run_dir / "record.json").read_text())
    metrics = {(r["variant"], r["task"]): r["metrics"] for r in record["results"]}
    samples = {(r["variant"], r["task"]): (run_dir / r["samples_file"]).read_text() for r in record["results"] if r["samples_file"]}
    return metrics, samples


def same_as(local: tuple[dict, dict], run_dir: Path) -> bool:
    """The Ray run's metrics and samples equal the local run's for the variants it has."""
    metrics, samples = content(run_dir)
    return all(local[0][k] == v for k, v in metrics.items()) and all(local[1][k] == v for k, v in samples.items())


def memory(run_dir: Path) -> dict:
    """Per worker: the variants it built and its peak RSS after each build (in the order it ran shards)."""
    execution = json.loads((run_dir / "record.json").read_text())["execution"]
    per_worker: dict[str, dict] = {}
    for shard in sorted(execution["shards"], key=lambda s: s["finished_seconds"]):
        w = per_worker.setdefault(shard["worker"], {"built": 0, "peak": 0, "after_build": []})
        if shard["load_seconds"] is not None:
            w["built"] += 1
            w["after_build"].append(shard["worker_peak_rss_bytes"] / GIB)
        w["peak"] = max(w["peak"], shard["worker_peak_rss_bytes"])
    return {
        "cluster_s": execution["seconds"],
        "shards": len(execution["shards"]),
        "models_built": execution["models_built"],
        "workers": per_worker,
        "shard_s": sum(s["seconds"] for s in execution["shards"]),
        "load_s": sum(s["load_seconds"] or 0 for s in execution["shards"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default="arithmetic_2da,xcopa_it,mmlu_anatomy")
    parser.add_argument("--limit", type=int, default=6)
    parser.add_argument("--shard-size", type=int, default=3)
    parser.add_argument(
        "--models", type=Path, help="a cache's models/ folder holding the converted default (default: convert it once here)"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="harness-bench-ray-"))
    folder = args.models.resolve() if args.models else work / "models"
    folder.mkdir(exist_ok=True)
    harness([BASE], argparse.Namespace(tasks="arithmetic_2da", limit=1), fresh_env(work, "convert", folder), work / "out")

    local_s, local_dir, local_rss = harness(list(WRAPPED), args, fresh_env(work, "local", folder), work / "out")
    local = content(local_dir)
    shard = ("--executor", "ray", "--shard-size", str(args.shard_size))
    runs = []
    for label, models, extra in (
        ("ray", list(WRAPPED), ()),
        ("ray, --max-models-per-worker 1", list(WRAPPED), ("--max-models-per-worker", "1")),
    ):
        seconds, run_dir, rss = harness(models, args, fresh_env(work, f"ray{len(runs)}", folder), work / "out", *shard, *extra)
        runs.append((label, seconds, same_as(local, run_dir), {**memory(run_dir), "driver_gib": rss}))
    report(args, local_s, local_rss, runs)


def report(args, local_s: float, local_rss: float, runs: list) -> None:
    tasks = args.tasks.split(",")
    print(f"date: {dt.date.today()}; machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(
        f"grid: 4 variants ({BASE} and {', '.join(w.split('+', 1)[1] for w in WRAPPED)}) x {len(tasks)} tasks"
        f" ({args.tasks}), --limit {args.limit}, --shard-size {args.shard_size}; every run with an empty request cache\n"
    )
    print("harness GiB: peak RSS of the harness process (the Ray driver); worker peak: each worker's, with the variants it built\n")
    print(
        f"{'run (4 variants x 3 tasks)':32} {'wall s':>7} {'cluster s':>9} {'shards':>6} {'built':>5} {'harness GiB':>11}"
        f" {'worker peak GiB (models built)':>32}  same record"
    )
    print(f"{'local':32} {local_s:7.1f} {'-':>9} {'-':>6} {4:5d} {local_rss:11.2f} {'-':>32}  -")
    for label, seconds, same, m in runs:
        workers = ", ".join(f"{w['peak'] / GIB:.2f} ({w['built']})" for w in m["workers"].values())
        print(
            f"{label:32} {seconds:7.1f} {m['cluster_s']:9.1f} {m['shards']:6d} {m['models_built']:5d} {m['driver_gib']:11.2f}"
            f" {workers:>32}  {'yes' if same else 'NO'}"
        )
    full = runs[0]
    print(f"\nray / local (wall) = {full[1] / local_s:.2f}")
    for label, _, _, m in runs:
        print(
            f"{label}: worker time in shards {m['shard_s']:.1f} s, in variant builds {m['load_s']:.1f} s, over"
            f" {len(m['workers'])} workers; each worker's peak RSS after its 1st, 2nd, ... build (GiB):"
        )
        for worker, w in m["workers"].items():
            print(f"  {worker}: {', '.join(f'{g:.2f}' for g in w['after_build'])}")


if __name__ == "__main__":
    main()
