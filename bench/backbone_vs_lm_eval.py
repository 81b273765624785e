"""Wall time of `harness eval` (cold, repeated, warm) against plain lm-eval on the same work.

    python bench/backbone_vs_lm_eval.py [--tasks arithmetic] [--limit 100] [--batch-size 8] [--rounds 2]

Everything runs in one invocation on one machine, in a temporary cache:
  cold      harness eval with nothing cached (the GGUF is dequantised, every request computed)
  repeat    the same command again (answered from the request cache)
  warm      harness eval with the float model on disk but an empty request cache
  lm_eval   plain `lm_eval --model hf` on the cached float folder, same tasks, limit and batch size
warm and lm_eval alternate (warm, lm_eval, warm, lm_eval, ...) --rounds times; medians are reported.
Metrics of every run are checked to be identical.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def harness_run(args, env, out: Path) -> tuple[float, dict]:
    seconds, stdout = timed(
        [
            str(BIN / "harness"),
            "eval",
            "--tasks",
            args.tasks,
            "--limit",
            str(args.limit),
            "--batch-size",
            str(args.batch_size),
            "--output-dir",
            str(out),
            "--output",
            "json",
        ],
        env,
    )
    record = json.loads(Path(json.loads(stdout)["record"]).read_text())
    return seconds, record


def accuracies_from_record(record: dict) -> dict[str, float]:
    return {r["task"]: r["metrics"]["acc"]["value"] for r in record["results"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default="arithmetic")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    env = {**os.environ, "HARNESS_CACHE_DIR": str(work / "cache"), "HF_HUB_OFFLINE": "1"}
    try:
        cold_s, cold = harness_run(args, env, work / "out")
        repeat_s, repeat = harness_run(args, env, work / "out")
        folder = next((work / "cache" / "models").glob("gguf-*"))
        reference = accuracies_from_record(cold)
        assert accuracies_from_record(repeat) == reference

        warm_times, lm_eval_times, warm_loads = [], [], []
        for round_ in range(args.rounds):
            shutil.rmtree(work / "cache" / "requests")
            seconds, warm = harness_run(args, env, work / "out")
            warm_times.append(seconds)
            warm_loads.append(warm["variants"][0]["load_seconds"])
            assert accuracies_from_record(warm) == reference
            out = work / f"lm_eval_{round_}"
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
                    str(args.batch_size),
                    "--device",
                    "cpu",
                    "--output_path",
                    str(out),
                ],
                env,
            )
            lm_eval_times.append(seconds)
            (results_file,) = out.rglob("results_*.json")
            theirs = json.loads(results_file.read_text())["results"]
            assert {t: v["acc,none"] for t, v in theirs.items()} == reference, "lm-eval disagrees"

        warm_s, lm_eval_s = statistics.median(warm_times), statistics.median(lm_eval_times)
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
        print(f"work: --tasks {args.tasks} --limit {args.limit} --batch-size {args.batch_size}; metrics identical in every run\n")
        print(f"{'run':<42}{'wall s':>9}")
        print(f"{'harness eval, cold (GGUF dequantised)':<42}{cold_s:>9.1f}")
        print(f"{'harness eval, same command again':<42}{repeat_s:>9.1f}")
        print(f"{'harness eval, warm model, empty cache':<42}{warm_s:>9.1f}   (median of {args.rounds})")
        print(f"{'plain lm_eval --model hf, same work':<42}{lm_eval_s:>9.1f}   (median of {args.rounds})")
        print()
        print(f"model load: cold {cold['variants'][0]['load_seconds']:.1f} s, warm {statistics.median(warm_loads):.2f} s")
        print(f"repeat / cold            = {repeat_s / cold_s:.3f}")
        print(f"harness warm / lm_eval   = {warm_s / lm_eval_s:.3f}")
        print(f"harness repeat / lm_eval = {repeat_s / lm_eval_s:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
