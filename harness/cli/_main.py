"""Command line: argument parsing only; each subcommand calls one function."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from harness.errors import HarnessError

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="Evaluate language models and their variants.")
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("eval", help="evaluate models on tasks into a run record")
    ev.add_argument("--model", action="append", help="model string (repeatable); default smollm2-135m-instruct")
    ev.add_argument("--tasks", help="comma-separated tasks or groups; default arithmetic")
    ev.add_argument("--limit", help="evaluate the first N documents of each task")
    ev.add_argument("--num-fewshot", dest="num_fewshot", help="few-shot examples per prompt")
    ev.add_argument("--batch-size", dest="batch_size", help="an integer or 'auto' (default 8)")
    ev.add_argument("--device", help="cpu, cuda, cuda:N, mps or auto (default)")
    ev.add_argument("--seed", help="seed for python, numpy, torch and few-shot sampling (default 1234)")
    ev.add_argument("--data-dir", dest="data_dir", help="local data directory (default $HARNESS_DATA_DIR)")
    ev.add_argument("--output-dir", dest="output_dir", help="where the run folder goes (default results/)")
    ev.add_argument("--samples", choices=["public", "full"], help="sample logs without (public, default) or with the documents' text")
    ev.add_argument("--no-base", dest="no_base", action="store_true", default=None, help="do not add each variant's base to the run")
    ev.add_argument(
        "--scorer",
        help="toxicity scorer (see `harness models`); default: detoxify when its weights are here, else the measured best offline one",
    )
    ev.add_argument("--toxicity-samples", dest="toxicity_samples", help="continuations per toxicity prompt (default 25) or 'greedy'")
    ev.add_argument("--config", help="YAML file with the same fields; flags override it")
    ev.add_argument("--output", choices=["table", "json"], default="table", help="what to print at the end")
    ev.add_argument(
        "--executor",
        default="local",
        help="where requests are computed: this process (default) or a Ray cluster (pip install 'harness[ray]')",
    )
    ev.add_argument("--address", help="with --executor ray: the cluster to join (default: start a local one)")
    ev.add_argument(
        "--max-models-per-worker",
        dest="max_models_per_worker",
        help="with --executor ray: variants a worker holds built at once (default: from the model's size and the worker's memory)",
    )
    ev.add_argument("--shard-size", dest="shard_size", help="with --executor ray: documents per shard (default 100)")

    fit = sub.add_parser("fit", help="fit a steering wrapper's artifact (directions, unit scores) to a file")
    fit.add_argument("wrapper", help="a fitted wrapper: see `harness models`")
    fit.add_argument("params", nargs="*", metavar="KEY=VALUE", help="the wrapper's parameters the fit depends on")
    fit.add_argument("--model", default=None, help="model string to fit on (default smollm2-135m-instruct)")
    fit.add_argument("--out", required=True, help="the artifact file to write (.safetensors; its sidecar gets .json)")
    fit.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default)")
    fit.add_argument("--data-dir", dest="data_dir", help="local data directory (default $HARNESS_DATA_DIR)")

    experts = sub.add_parser("experts", help="build or list the experts (seeded fine-tunes of the default, merge sources)")
    experts_sub = experts.add_subparsers(dest="experts_command", required=True)
    experts_build = experts_sub.add_parser("build", help="fine-tune the experts missing from the cache (minutes each)")
    experts_build.add_argument("--name", action="append", help="an expert to build (repeatable; default all)")
    experts_build.add_argument("--data-dir", dest="data_dir", help="local data directory (default $HARNESS_DATA_DIR)")
    experts_sub.add_parser("list", help="the experts, their recipes and whether each is built")

    neurons = sub.add_parser("neurons", help="decode MLP neurons through the LM head to their top tokens")
    neurons.add_argument("--model", default=None, help="model string (default smollm2-135m-instruct)")
    neurons.add_argument("--layer", type=int, required=True, help="decoder layer, from 0")
    neurons.add_argument("--top", type=int, default=10, help="neurons to list (default 10)")
    neurons.add_argument("--concept", default=None, help="a one-token string: list the neurons that promote it most")
    neurons.add_argument("--tokens", type=int, default=10, help="decoded tokens per neuron (default 10)")
    neurons.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default)")
    neurons.add_argument("--output", choices=["table", "json"], default="table", help="what to print")

    compare = sub.add_parser("compare", help="paired comparison of each variant with its base, sweeps as curves, Pareto fronts")
    compare.add_argument(
        "runs", nargs="+", metavar="RUN", help="run folders (or their record.json); a variant's base may be in another run"
    )
    compare.add_argument(
        "--pareto",
        action="append",
        default=[],
        metavar="METRIC_A,METRIC_B",
        help="a Pareto front over TASK/METRIC or cost/NAME axes (repeatable)",
    )
    compare.add_argument("--resamples", type=int, default=1000, help="paired bootstrap resamples (default 1000)")
    compare.add_argument("--seed", type=int, default=1234, help="bootstrap seed (default 1234)")
    compare.add_argument("--confidence", type=float, default=0.95, help="interval coverage (default 0.95)")
    compare.add_argument("--subtasks", action="store_true", help="also show the tasks inside groups in the table")
    compare.add_argument("--output", choices=["table", "json"], default="table", help="what to print")

    report = sub.add_parser("report", help="write a run's reproducibility report (report.md, report.html)")
    report.add_argument("run", metavar="RUN", help="run folder (or its record.json)")
    report.add_argument("--out", help="folder for the two files (default: the run folder)")
    report.add_argument(
        "--pareto",
        action="append",
        default=[],
        metavar="METRIC_A,METRIC_B",
        help="fronts to draw (default: each headline metric against each cost that varies)",
    )
    report.add_argument("--resamples", type=int, default=1000, help="paired bootstrap resamples (default 1000)")
    report.add_argument("--seed", type=int, default=1234, help="bootstrap seed (default 1234)")

    reproduce = sub.add_parser("reproduce", help="rerun a record's spec with an empty request cache and compare every number")
    reproduce.add_argument("run", metavar="RUN", help="run folder (or its record.json)")
    reproduce.add_argument("--batch-sizes", dest="batch_sizes", help="rerun at each of these batch sizes, e.g. 1,8 (default: the record's)")
    reproduce.add_argument("--tolerance", type=float, default=0.0, help="largest absolute difference that matches (default 0: exact)")
    reproduce.add_argument("--output-dir", dest="output_dir", help="where the reruns' records go (default: a new temporary folder)")
    reproduce.add_argument("--data-dir", dest="data_dir", help="data directory (default: the record's, else $HARNESS_DATA_DIR)")
    reproduce.add_argument("--output", choices=["table", "json"], default="table", help="what to print")

    export = sub.add_parser("export", help="write a run's results in a shared schema other tools read (every_eval_ever 0.2.0)")
    export.add_argument("run", metavar="RUN", help="run folder (or its record.json)")
    export.add_argument("--format", dest="fmt", default="every_eval_ever", help="every_eval_ever (the default and only one)")
    export.add_argument("--out", required=True, help="folder for the files, one per variant and task")

    board = sub.add_parser("leaderboard", help="versioned leaderboard releases from run records, and their static site")
    board_sub = board.add_subparsers(dest="leaderboard_command", required=True)
    build = board_sub.add_parser("build", help="build a release (leaderboard/releases/vX.Y.Z/release.json) from run records")
    build.add_argument("runs", nargs="*", metavar="RUNS", help="run folders or folders of runs (default: results)")
    build.add_argument("--out", default="leaderboard", help="the leaderboard folder (default: leaderboard)")
    build.add_argument(
        "--version",
        help="MAJOR.MINOR.PATCH (default: the proposed one: patch for new rows, minor for new columns, major for a task version change)",
    )
    build.add_argument(
        "--normalise", action="store_true", help="add scores rescaled to the random baseline (Open LLM Leaderboard), labelled"
    )
    build.add_argument("--resamples", type=int, default=1000, help="paired bootstrap resamples (default 1000)")
    build.add_argument("--seed", type=int, default=1234, help="bootstrap seed (default 1234)")
    build.add_argument("--confidence", type=float, default=0.95, help="interval coverage (default 0.95)")
    site = board_sub.add_parser("site", help="render every release into a static site (HTML, CSS, JavaScript; no server)")
    site.add_argument("--leaderboard", default="leaderboard", help="the leaderboard folder (default: leaderboard)")
    site.add_argument("--out", help="where the site goes (default: LEADERBOARD/site)")

    tasks = sub.add_parser("tasks", help="list tasks and groups with their family and data")
    tasks.add_argument("--data-dir", dest="data_dir")
    sub.add_parser("models", help="list the model catalog and the registered wrappers")
    return parser


def _eval(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.analysis._table import print_json, print_table
    from harness.spec._spec import build_spec, load_config
    from harness.tasks.index import known_names, task_manager

    given = load_config(args.config) if args.config else {}
    flags = {
        "model": args.model,
        "tasks": args.tasks,
        "limit": args.limit,
        "num_fewshot": args.num_fewshot,
        "batch_size": args.batch_size,
        "device": args.device,
        "seed": args.seed,
        "data_dir": args.data_dir,
        "output_dir": args.output_dir,
        "samples": args.samples,
        "scorer": args.scorer,
        "toxicity_samples": args.toxicity_samples,
        "no_base": args.no_base,
    }
    given.update({k: v for k, v in flags.items() if v is not None})
    spec = build_spec(given, known_names(task_manager()))
    from harness.engine._executors import build_executor

    executor = build_executor(args.executor, args.address, args.max_models_per_worker, args.shard_size)

    from harness.engine._run import run

    record, folder = run(spec, ["harness", *argv], executor)
    if args.output == "json":
        print_json(record, folder)
    else:
        print_table(record, folder)
    return 0


def _fit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.engine._fit import fit_artifact
    from harness.models import DEFAULT_MODEL
    from harness.tasks import data

    if args.data_dir:
        os.environ[data.DATA_DIR_ENV] = str(data.data_dir(args.data_dir))
    given: dict[str, str] = {}
    for item in args.params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HarnessError(f"bad parameter {item!r}: expected KEY=VALUE")
        given[key] = value
    sidecar = fit_artifact(args.wrapper, given, args.model or DEFAULT_MODEL, Path(args.out), args.device)
    print(json.dumps({"artifact": args.out, **sidecar}, indent=1, sort_keys=True))
    return 0


def _experts(args: argparse.Namespace) -> int:
    from harness.models import resolve_model
    from harness.models.experts import EXPERTS
    from harness.models.experts.build import built_folder, ensure_built, is_built, read_build
    from harness.tasks import data

    if args.experts_command == "list":
        for name, recipe in EXPERTS:
            state = str(built_folder(recipe)) if is_built(recipe) else "not built"
            print(f"expert:{name}  steps={recipe.steps} batch={recipe.batch} lr={recipe.lr} seed={recipe.seed}  {recipe.doc}\n    {state}")
        return 0
    if args.data_dir:
        os.environ[data.DATA_DIR_ENV] = str(data.data_dir(args.data_dir))
    recipes = [EXPERTS.get(name) for name in args.name] if args.name else [recipe for _, recipe in EXPERTS]
    for recipe in recipes:
        facts = read_build(ensure_built(recipe, resolve_model(recipe.base)))
        print(
            json.dumps(
                {
                    "expert": f"expert:{recipe.name}",
                    "folder": str(built_folder(recipe)),
                    "seconds": facts["seconds"],
                    "train_loss": {k: v for k, v in facts["train_loss"].items() if k != "per_step"},
                    "held_out_loss": facts["held_out_loss"],
                    "disjointness": facts["data"]["disjointness"],
                    "weights_sha256": facts["weights_sha256"],
                },
                indent=1,
            )
        )
    return 0


def _neurons(args: argparse.Namespace) -> int:
    from harness.engine._neurons import list_neurons
    from harness.models import DEFAULT_MODEL

    if args.top < 1 or args.tokens < 1:
        raise HarnessError("--top and --tokens must be at least 1")
    rows = list_neurons(args.model or DEFAULT_MODEL, args.layer, args.top, args.concept, args.tokens, args.device)
    if args.output == "json":
        print(json.dumps(rows, indent=1))
        return 0
    from tabulate import tabulate

    score = f"logit of {args.concept!r}" if args.concept else "top logit"
    table = [(r["index"], round(r["score"], 4), " ".join(repr(t) for t in r["tokens"])) for r in rows]
    print(tabulate(table, headers=["neuron", score, "top tokens"]))
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from harness.tasks import data
    from harness.tasks.index import describe, task_manager

    directory = data.data_dir(args.data_dir)
    rows = [(t.name, t.kind, t.family, t.source, t.present) for t in describe(task_manager(), directory)]
    print(tabulate(rows, headers=["task", "kind", "family", "source", "data present"]))
    print(f"\ndata directory: {directory or 'none (set --data-dir or $HARNESS_DATA_DIR)'}")
    return 0


def _models() -> int:
    from tabulate import tabulate

    from harness.models import CATALOG
    from harness.wrappers import WRAPPERS

    rows = [(name, type(e.source).__name__, e.license, e.description) for name, e in CATALOG]
    print(tabulate(rows, headers=["model", "source", "license", "description"], maxcolwidths=[None, None, None, 70]))
    print("\nAlso accepted: hf:ORG/NAME[@REVISION], a local model folder (safetensors), a .gguf file.")
    print("\nWrappers (BASE+WRAPPER:key=value,...; `|` in a value sweeps):")
    rows = [(name, w.doc, "\n".join(p.describe() for p in w.params)) for name, w in WRAPPERS]
    print(tabulate(rows, headers=["wrapper", "what it does", "parameters: type [range] = default"], maxcolwidths=[None, 40, 80]))
    from harness.tasks.scorers import DEFAULT_SCORER, SCORERS

    names = [f"{name} (default)" if name == DEFAULT_SCORER else name for name in SCORERS.names()]
    print(f"\nToxicity scorers (--scorer; docs/scorers.md): {', '.join(names)}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from harness.analysis._compare import format_table, summarize, to_json

    summary = summarize(args.runs, args.seed, args.resamples, args.confidence, args.pareto)
    print(json.dumps(to_json(summary), indent=1) if args.output == "json" else format_table(summary, args.subtasks))
    return 0


def _report(args: argparse.Namespace) -> int:
    from harness.analysis._report import write_report

    for path in write_report(args.run, args.out, args.seed, args.resamples, pareto=args.pareto):
        print(path)
    return 0


def _reproduce(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.analysis._compare import to_json
    from harness.engine._reproduce import format_table, parse_batch_sizes, reproduce

    result = reproduce(args.run, ["harness", *argv], parse_batch_sizes(args.batch_sizes), args.tolerance, args.output_dir, args.data_dir)
    print(json.dumps({**to_json(result), "ok": result.ok}, indent=1, default=str) if args.output == "json" else format_table(result))
    return 0 if result.ok else 1


def _export(args: argparse.Namespace) -> int:
    from harness.records._export import export_run

    for path in export_run(args.run, args.out, args.fmt):
        print(path)
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    if args.leaderboard_command == "site":
        from harness.leaderboard import build_site

        print(build_site(args.leaderboard, args.out))
        return 0
    from harness.leaderboard import build_release

    built = build_release(args.runs or ["results"], args.out, args.version, args.normalise, args.seed, args.resamples, args.confidence)
    log = built.changelog
    print(f"{built.version} {built.status}: {built.path} ({built.rows} rows, {built.columns} columns)")
    print(
        f"changes since {('v' + log.previous) if log.previous else 'nothing'} ({log.level}): {len(log.new_rows)} new rows,"
        f" {len(log.retired_rows)} retired rows, {len(log.new_columns)} new columns, {len(log.retired_columns)} retired columns,"
        f" {log.new_cells} new cells, {len(log.changed_values)} changed values, {len(log.version_changes)} task version changes"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        if args.command == "eval":
            return _eval(args, argv)
        if args.command == "fit":
            return _fit(args)
        if args.command == "experts":
            return _experts(args)
        if args.command == "neurons":
            return _neurons(args)
        if args.command == "tasks":
            return _tasks(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "report":
            return _report(args)
        if args.command == "reproduce":
            return _reproduce(args, argv)
        if args.command == "export":
            return _export(args)
        if args.command == "leaderboard":
            return _leaderboard(args)
        return _models()
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("harness: interrupted; run the same command again to resume from the cache", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
