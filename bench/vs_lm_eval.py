"""harness eval against plain lm-eval on the same work: time, tokens, FLOP/s, the useful-work floor.

    python bench/vs_lm_eval.py [--suite truthfulqa_mc1=5,truthfulqa_mc2=5,mmlu=1,arithmetic=5,xcopa=5]
                               [--batch-size 8] [--rounds 1] [--threads 1] [--bf16] [--sweep 5]

For each task of the suite (TASK=LIMIT), interleaved A B A B (harness, lm-eval, harness, ...):
  A  `harness eval --tasks TASK --limit LIMIT` on the embedded default (float32, its converted
     folder from the user's model cache, an empty request cache every time)
  B  `lm_eval --model hf --model_args pretrained=<that folder>,dtype=float32 --include_path tasks`
     with the same task, limit, batch size and data
each in its own process under bench/_counted.py, which counts the positions the decoder ran
(padding included) and the rows the LM head ran on. Checks: every per-sample log-likelihood within
1e-4, every greedy flag and metric the same (continuous metrics within 1e-6). With --bf16, C:
harness on `smollm2-135m-instruct+bf16`, compared with A (time, largest log-likelihood change,
metric changes).

Also measured in the same run: the float32 matrix-multiply peak of this machine on the model's
shapes (best of the decoder's and the head's products), the achieved FLOP/s of each evaluation
((decoder positions x trunk FLOPs + head rows x head FLOPs) / seconds of compute) as a share of
it, and the useful-work floor: (distinct tokens x trunk FLOPs + scored positions x head FLOPs) /
peak, where the distinct tokens are each distinct context once plus each distinct continuation
less its last token (the least any evaluation must run), read from lm-eval's own sample log.

--threads sets OMP_NUM_THREADS for every process and the peak (default 1: on a machine shared
with other jobs, two threads per process spin-wait on each other; measured here, a 12-token forward
took 7.1 s with 2 threads and 0.2 s with 1). --sweep L: the shared-trunk sweep on truthfulqa_mc2
with --limit L, interleaved: the base alone, then the base with ten EigenShift variants
(k=1|2|4|8|16, alpha=0.1|0.5; one fit, cached in the user's cache, made before timing); their ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
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
PYTHON = sys.executable
MODEL = "smollm2-135m-instruct"
SUITE = "truthfulqa_mc1=5,truthfulqa_mc2=5,mmlu=1,arithmetic=5,xcopa=5"
SWEEP = f"{MODEL}+eigenshift:k=1|2|4|8|16,alpha=0.1|0.5"


def _counted(program: list[str], env: dict[str, str], counts: Path) -> tuple[dict, str]:
    done = subprocess.run(
        [PYTHON, str(REPO / "bench" / "_counted.py"), str(counts), *program],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(program)}\n{done.stderr[-3000:]}")
    return json.loads(counts.read_text()), done.stdout


def run_harness(model: str, task: str, limit: int, args, env, work: Path, tag: str, base: bool = False) -> dict:
    shutil.rmtree(work / "cache" / "requests", ignore_errors=True)
    counts, stdout = _counted(
        [
            "harness",
            "eval",
            "--model",
            model,
            *([] if base else ["--no-base"]),
            "--tasks",
            task,
            "--limit",
            str(limit),
            "--batch-size",
            str(args.batch_size),
            "--device",
            "cpu",
            "--output-dir",
            str(work / "out"),
            "--output",
            "json",
        ],
        env,
        work / f"{tag}.json",
    )
    path = Path(json.loads(stdout)["record"])
    folder = path.parent if path.is_file() else path
    record = json.loads((folder / "record.json").read_text())
    samples, metrics, seconds = {}, {}, 0.0
    for result in record["results"]:
        metrics[result["task"]] = {k: v["value"] for k, v in result["metrics"].items() if not k.endswith("_stderr")}
        if result["kind"] == "task":
            seconds += result["seconds"]
            for line in (folder / result["samples_file"]).read_text().splitlines():
                sample = json.loads(line)
                samples[(result["task"], sample["doc_id"])] = sample["resps"]
    return {**counts, "eval_s": seconds, "samples": samples, "metrics": metrics}


def run_lm_eval(folder: Path, task: str, limit: int, args, env, work: Path, tag: str) -> dict:
    out = work / tag
    counts, _ = _counted(
        [
            "lm_eval",
            "--model",
            "hf",
            "--model_args",
            f"pretrained={folder},dtype=float32",
            "--include_path",
            str(REPO / "harness" / "tasks" / "library"),
            "--tasks",
            task,
            "--limit",
            str(limit),
            "--batch_size",
            str(args.batch_size),
            "--device",
            "cpu",
            "--output_path",
            str(out),
            "--log_samples",
        ],
        env,
        work / f"{tag}.json",
    )
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]
    metrics = {
        name: {
            key.split(",")[0] if key.endswith(",none") else key: value
            for key, value in entry.items()
            if "," in key and "_stderr," not in key and isinstance(value, int | float)
        }
        for name, entry in results.items()
    }
    samples, arguments = {}, []
    for path in out.rglob("samples_*.jsonl"):
        name = path.name[len("samples_") :].rsplit("_", 1)[0]
        for line in path.read_text().splitlines():
            sample = json.loads(line)
            samples[(name, sample["doc_id"])] = sample["resps"]
            arguments.extend((a["arg_0"], a["arg_1"]) for a in sample["arguments"].values())
    return {**counts, "samples": samples, "metrics": metrics, "arguments": arguments}


def compare(ours: dict, theirs: dict) -> tuple[float, int]:
    """Largest per-sample log-likelihood difference; number of samples compared. Exits on any
    difference beyond 1e-4, a differing greedy flag or metric."""
    if set(ours["samples"]) != set(theirs["samples"]):
        sys.exit(f"different samples: {sorted(set(ours['samples']) ^ set(theirs['samples']))[:5]}")
    worst = 0.0
    for key, resps in ours["samples"].items():
        for mine, other in zip(resps, theirs["samples"][key], strict=True):
            (value, greedy), (value_2, greedy_2) = mine[0], other[0]
            worst = max(worst, abs(float(value) - float(value_2)))
            if abs(float(value) - float(value_2)) > 1e-4 or str(greedy) != str(greedy_2):
                sys.exit(f"sample {key}: ours {mine[0]}, lm-eval {other[0]}")
    for task, values in theirs["metrics"].items():
        for name, value in values.items():
            if abs(ours["metrics"][task][name] - value) > 1e-6:
                sys.exit(f"{task} {name}: ours {ours['metrics'][task][name]}, lm-eval {value}")
    return worst, len(ours["samples"])


def model_flops(folder: Path) -> tuple[float, float, dict]:
    """FLOPs per token of the trunk (2 per decoder weight used) and per row of the head, and the
    matmul shapes (rows, inner, outer) the model runs."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(folder)
    d, f, heads, kv = c.hidden_size, c.intermediate_size, c.num_attention_heads, c.num_key_value_heads
    head_dim = d // heads
    per_layer = d * d * 2 + 2 * d * kv * head_dim + 3 * d * f
    trunk = 2.0 * per_layer * c.num_hidden_layers
    return trunk, 2.0 * d * c.vocab_size, {"d": d, "f": f, "vocab": c.vocab_size}


def gemm_peak(shapes: dict) -> float:
    """Best float32 FLOP/s over the model's matrix products (512 rows), each timed best-of-5."""
    import torch

    d, f, vocab = shapes["d"], shapes["f"], shapes["vocab"]
    best = 0.0
    for rows, inner, outer in ((512, d, f), (512, f, d), (512, d, d), (256, d, vocab)):
        a, b = torch.randn(rows, inner), torch.randn(inner, outer)
        a @ b
        for _ in range(5):
            start = time.perf_counter()
            a @ b
            best = max(best, 2.0 * rows * inner * outer / (time.perf_counter() - start))
    return best


def distinct_work(arguments: list[tuple[str, str]], folder: Path) -> tuple[int, int]:
    """(distinct tokens, scored positions) of the requests, tokenized as lm-eval's HFLM does."""
    from lm_eval.api.model import TemplateLM
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)

    class Encoder(TemplateLM):  # only lm-eval's own context/continuation split is used
        eot_token_id = tokenizer.eos_token_id
        prefix_token_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id

        def tok_encode(self, string, **kwargs):
            return tokenizer.encode(string, add_special_tokens=False)

        _loglikelihood_tokens = loglikelihood_rolling = generate_until = None

    encoder = Encoder()
    contexts, continuations = set(), set()
    for context, continuation in set(arguments):
        if context == "":
            ctx, cont = [encoder.prefix_token_id], encoder.tok_encode(continuation)
        else:
            ctx, cont = encoder._encode_pair(context, continuation)
        contexts.add(tuple(ctx))
        continuations.add((tuple(ctx), tuple(cont)))
    distinct = sum(len(c) for c in contexts) + sum(len(x) - 1 for _, x in continuations)
    return distinct, sum(len(x) for _, x in continuations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default=SUITE, help="TASK=LIMIT,...")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every process (and the peak)")
    parser.add_argument("--bf16", action="store_true", help="also run harness on the bf16 variant")
    parser.add_argument("--sweep", type=int, default=0, metavar="LIMIT", help="also time the EigenShift sweep at this limit")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    suite = [(t, int(n)) for t, n in (item.split("=") for item in args.suite.split(","))]

    from harness.models import resolve_model
    from harness.models.loading import ensure_float_folder, float_folder

    resolved = resolve_model(MODEL)
    ensure_float_folder(resolved)
    folder = float_folder(resolved)
    trunk_flops, head_flops, shapes = model_flops(folder)

    work = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    (work / "cache").mkdir()
    (work / "cache" / "models").symlink_to(folder.parent, target_is_directory=True)
    artifacts = folder.parent.parent / "artifacts"  # fitted once, kept (keyed by recipe)
    artifacts.mkdir(exist_ok=True)
    (work / "cache" / "artifacts").symlink_to(artifacts, target_is_directory=True)
    env = {
        **os.environ,
        "HARNESS_CACHE_DIR": str(work / "cache"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": str(args.threads),
    }
    started = time.perf_counter()
    peaks = [gemm_peak(shapes)]
    rows = []
    try:
        for task, limit in suite:
            ours, theirs, bf16 = [], [], None
            for round_ in range(args.rounds):
                ours.append(run_harness(MODEL, task, limit, args, env, work, f"h_{task}_{round_}"))
                theirs.append(run_lm_eval(folder, task, limit, args, env, work, f"l_{task}_{round_}"))
                worst, compared = compare(ours[-1], theirs[-1])
            if args.bf16:
                bf16 = run_harness(f"{MODEL}+bf16", task, limit, args, env, work, f"b_{task}")
            distinct, scored = distinct_work(theirs[0]["arguments"], folder)
            rows.append((task, limit, ours, theirs, bf16, worst, compared, distinct, scored))
        sweep = []
        if args.sweep:
            run_harness(SWEEP, "truthfulqa_mc2", 1, args, env, work, "fit", base=True)  # fits once, before timing
            for round_ in range(args.rounds):
                sweep.append(
                    (
                        run_harness(MODEL, "truthfulqa_mc2", args.sweep, args, env, work, f"s1_{round_}"),
                        run_harness(SWEEP, "truthfulqa_mc2", args.sweep, args, env, work, f"s11_{round_}", base=True),
                    )
                )
        peaks.append(gemm_peak(shapes))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peak = max(peaks)

    def achieved(run: dict) -> float:
        span = run["compute_span_s"]
        return (run["tokens"] * trunk_flops + run["head_positions"] * head_flops) / span if span else 0.0

    median = statistics.median
    print(
        f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"torch threads {__import__('torch').get_num_threads()}, python {platform.python_version()}"
    )
    print(
        f"model: {MODEL} float32; trunk {trunk_flops / 1e9:.3f} GFLOP/token, head {head_flops / 1e9:.4f} GFLOP/row; "
        f"batch size {args.batch_size}; rounds {args.rounds} (medians); total {time.perf_counter() - started:.0f} s"
    )
    print(f"float32 GEMM peak of the model's shapes: {peak / 1e9:.1f} GFLOP/s (start {peaks[0] / 1e9:.1f}, end {peaks[1] / 1e9:.1f})")
    print("identical: every per-sample log-likelihood within 1e-4, greedy flags and metrics equal\n")
    header = (
        f"{'task':<16}{'limit':>6}{'lm-eval s':>10}{'ours s':>8}{'ratio':>7}{'compute ratio':>14}{'lm-eval tok':>12}{'our tok':>9}"
        f"{'lm-eval head':>13}{'our head':>9}{'lm-eval FLOP/s%':>16}{'our FLOP/s%':>12}{'eval s':>8}{'floor s':>8}"
        f"{'eval/floor':>11}{'max |dLL|':>10}"
    )
    print(header)
    total_a = total_b = total_span_a = total_span_b = 0.0
    for task, limit, ours, theirs, _, worst, _, distinct, scored in rows:
        a, b = median([r["wall_s"] for r in ours]), median([r["wall_s"] for r in theirs])
        total_a, total_b = total_a + a, total_b + b
        floor = (distinct * trunk_flops + scored * head_flops) / peak
        eval_s = median([r["eval_s"] for r in ours])
        span_a, span_b = median([r["compute_span_s"] for r in ours]), median([r["compute_span_s"] for r in theirs])
        total_span_a, total_span_b = total_span_a + span_a, total_span_b + span_b
        print(
            f"{task:<16}{limit:>6}{b:>10.1f}{a:>8.1f}{b / a:>7.2f}{span_b / span_a:>14.2f}{theirs[0]['tokens']:>12,}{ours[0]['tokens']:>9,}"
            f"{theirs[0]['head_positions']:>13,}{ours[0]['head_positions']:>9,}"
            f"{100 * median([achieved(r) for r in theirs]) / peak:>15.0f}%{100 * median([achieved(r) for r in ours]) / peak:>11.0f}%"
            f"{eval_s:>8.1f}{floor:>8.1f}{eval_s / floor:>11.2f}{worst:>10.1e}"
        )
    print(f"{'overall':<16}{'':>6}{total_b:>10.1f}{total_a:>8.1f}{total_b / total_a:>7.2f}{total_span_b / total_span_a:>14.2f}")
    print(
        "\n(times: wall seconds of each process, start to exit, model load and task set-up included; compute\n"
        " ratio: lm-eval's over ours of the seconds from the first decoder call to the last; eval s: harness's own\n"
        " per-task evaluation seconds; floor: distinct tokens x trunk + scored x head over the peak)"
    )
    if sweep:
        one, eleven = median([a["wall_s"] for a, _ in sweep]), median([b["wall_s"] for _, b in sweep])
        one_eval, eleven_eval = median([a["eval_s"] for a, _ in sweep]), median([b["eval_s"] for _, b in sweep])
        print(
            f"\nsweep on truthfulqa_mc2 --limit {args.sweep}: base alone {one:.1f} s (evaluation {one_eval:.1f} s); "
            f"base + 10 EigenShift variants {eleven:.1f} s (evaluation {eleven_eval:.1f} s): {eleven / one:.2f} x one base "
            f"({eleven_eval / one_eval:.2f} x in evaluation); tokens {sweep[0][0]['tokens']:,} vs {sweep[0][1]['tokens']:,}"
        )
    if args.bf16:
        print(f"\n{'bf16 (harness)':<16}{'f32 s':>8}{'bf16 s':>8}{'f32/bf16':>9}{'max |dLL|':>10}  metric changes")
        for task, _, ours, _, bf16, *_ in rows:
            deltas = max(
                abs(float(m[0][0]) - float(o[0][0]))
                for key, resps in bf16["samples"].items()
                for m, o in zip(resps, ours[0]["samples"][key], strict=True)
            )
            changes = {
                f"{t}.{n}": round(v - ours[0]["metrics"][t][n], 4)
                for t, values in bf16["metrics"].items()
                for n, v in values.items()
                if isinstance(v, int | float) and v != ours[0]["metrics"][t][n]
            }
            shown = ", ".join(f"{k} {v:+}" for k, v in list(changes.items())[:4]) or "none"
            more = f" (+{len(changes) - 4} more)" if len(changes) > 4 else ""
            a = median([r["wall_s"] for r in ours])
            print(f"{task:<16}{a:>8.1f}{bf16['wall_s']:>8.1f}{a / bf16['wall_s']:>9.2f}{deltas:>10.1e}  {shown}{more}")


if __name__ == "__main__":
    main()
