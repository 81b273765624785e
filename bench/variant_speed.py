"""Wall time of variants (dynamic int8, simulated 4-bit, early exit) against their base and plain lm-eval.

    python bench/variant_speed.py [--tasks arithmetic,truthfulqa_mc1] [--limit 40] [--rounds 2]

One invocation, one machine, one temporary cache; the float model is converted once before timing.
Each round runs, in turn, plain `lm_eval --model hf` on the float folder, then `harness eval
--no-base` of every variant with an empty request cache (so every request is computed). Medians over
rounds. Reported: the wall time of the command, the evaluation time inside it (the record's per-task
seconds, without start-up and model build), and both as ratios to plain lm-eval and to the base.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
from pathlib import Path

from backbone_vs_lm_eval import BIN, REPO, timed

BASE = "smollm2-135m-instruct"
VARIANTS = (BASE, f"{BASE}+dynamic_int8", f"{BASE}+quantize:bits=4,group=64", f"{BASE}+exit:layer=15")


def harness_run(variant: str, args, env, out: Path) -> tuple[float, float]:
    seconds, stdout = timed(
        [
            str(BIN / "harness"),
            "eval",
            "--model",
            variant,
            "--no-base",
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
        ],
        env,
    )
    record = json.loads(Path(json.loads(stdout)["record"]).read_text())
    return seconds, sum(r["seconds"] for r in record["results"] if r["kind"] == "task")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default="arithmetic,truthfulqa_mc1")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    env = {**os.environ, "HARNESS_CACHE_DIR": str(work / "cache"), "HF_HUB_OFFLINE": "1"}
    try:
        harness_run(BASE, argparse.Namespace(tasks="arithmetic_2da", limit=1), env, work / "out")  # convert once
        folder = next((work / "cache" / "models").glob("gguf-*"))
        walls: dict[str, list[float]] = {v: [] for v in ("lm_eval", *VARIANTS)}
        evals: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for round_ in range(args.rounds):
            seconds, _ = timed(
                [
                    str(BIN / "lm_eval"),
                    "--model",
                    "hf",
                    "--model_args",
                    f"pretrained={folder},dtype=float32",
                    "--include_path",
                    str(REPO / "harness" / "tasks" / "library"),
                    "--tasks",
                    args.tasks,
                    "--limit",
                    str(args.limit),
                    "--batch_size",
                    "8",
                    "--device",
                    "cpu",
                    "--output_path",
                    str(work / f"lm_eval_{round_}"),
                ],
                env,
            )
            walls["lm_eval"].append(seconds)
            for variant in VARIANTS:
                shutil.rmtree(work / "cache" / "requests", ignore_errors=True)
                wall, inside = harness_run(variant, args, env, work / "out")
                walls[variant].append(wall)
                evals[variant].append(inside)

        wall = {k: statistics.median(v) for k, v in walls.items()}
        inside = {k: statistics.median(v) for k, v in evals.items()}
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
        print(f"work: --tasks {args.tasks} --limit {args.limit}, batch size 8, cpu; medians of {args.rounds} rounds\n")
        print(f"{'run':<46}{'wall s':>8}{'/lm_eval':>10}{'eval s':>9}{'eval/base':>11}")
        print(f"{'plain lm_eval --model hf (float base)':<46}{wall['lm_eval']:>8.1f}{1.0:>10.3f}")
        for variant in VARIANTS:
            name = variant.replace(BASE, "harness: base", 1)
            print(
                f"{name:<46}{wall[variant]:>8.1f}{wall[variant] / wall['lm_eval']:>10.3f}"
                f"{inside[variant]:>9.1f}{inside[variant] / inside[BASE]:>11.3f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
