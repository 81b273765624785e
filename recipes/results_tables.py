"""Every reference-result table of the docs, generated from the committed run records.

    python recipes/results_tables.py            # rewrite the generated regions of the docs pages
    python recipes/results_tables.py --check    # exit 1 naming each region that differs (a test runs it)

A generated region is the text between `<!-- generated: NAME -->` and `<!-- end generated -->` in
a page of PAGES; the prose around it stays hand-written. Each NAME is a function in TABLES that reads
the runs it names under results/ through harness's API (records: `load_run`; paired differences and
intervals: `harness.analysis.compare`, with its defaults, as `harness compare` prints them). A region
without a function, or a function without its region, is an error. After new reference runs, point
the functions below at them (the run ids are written once, at the top of each) and run this again.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from harness.analysis import COSTS, Comparison, compare, quantized_linear_bits, short_name, table_rows
from harness.records import Run, TaskResult, VariantRecord, load_run

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("docs/results.md", "docs/analysis.md", "docs/vlm.md")
REGION = re.compile(r"(<!-- generated: ([a-z0-9-]+) -->\n)(.*?)(<!-- end generated -->)", re.DOTALL)


class Results:
    """The committed runs, each loaded and compared once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._runs: dict[str, Run] = {}
        self._compared: dict[str, Comparison] = {}

    def ids(self) -> list[str]:
        return sorted(p.parent.name for p in self.folder.glob("*/record.json"))

    def run(self, run_id: str) -> Run:
        if run_id not in self._runs:
            self._runs[run_id] = load_run(self.folder / run_id)
        return self._runs[run_id]

    def compared(self, run_id: str) -> Comparison:
        if run_id not in self._compared:
            self._compared[run_id] = compare([self.run(run_id)])
        return self._compared[run_id]


# --- formatting -------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)]) + "\n"


def _f(value: float | None, digits: int = 3) -> str:
    """A fixed-point number; scientific beyond 1e5 (perplexities of broken variants); `-` for none."""
    if value is None:
        return "-"
    return f"{value:.2e}" if abs(value) >= 1e5 else f"{value:.{digits}f}"


def _pm(value: float | None, stderr: float | None, digits: int = 3) -> str:
    return _f(value, digits) if stderr is None else f"{_f(value, digits)} ± {_f(stderr, digits)}"


def _label(variant: VariantRecord) -> str:
    """The base by its name, a variant by its wrappers (`+quantize:bits=4`), as code."""
    return f"`{short_name(variant.model)}`"


def _variants(run: Run) -> list[VariantRecord]:
    return list(run.record.variants)


def _result(run: Run, variant: VariantRecord, task: str) -> TaskResult:
    return run.results[(variant.identity, task)]


def _metric(run: Run, variant: VariantRecord, task: str, metric: str) -> tuple[float | None, float | None]:
    found = _result(run, variant, task).metrics[metric]
    return found.value, found.stderr


def _leaves(run: Run, variant: VariantRecord) -> list[TaskResult]:
    return [r for r in run.record.results if r.variant == variant.identity and r.kind == "task"]


def _difference(results: Results, run_id: str, variant: VariantRecord, task: str, metric: str) -> str:
    """The paired difference from the base with its interval, as `harness compare` computes it."""
    for t in results.compared(run_id).tasks:
        if t.variant == variant.identity and t.task == task:
            m = next(m for m in t.metrics if m.metric == metric)
            return f"{m.difference:+.3f} [{m.interval[0]:+.3f}, {m.interval[1]:+.3f}]"
    return ""


# --- the tables -------------------------------------------------------------------------------

# What each committed run is, for the index; a run not named here is listed without it.
RUN_SECTIONS = {
    "20261128T043448Z-c33acd4f": "the arithmetic reference run (`harness reproduce` checks it, [analysis](analysis.md#harness-reproduce))",
    "20261128T044743Z-27e4ee26": "[the embedded default](#the-embedded-default)",
    "20261128T053240Z-51b48f7b": "the embedded default and the opt-in `gemma-3-270m` (no table here; its `report.md` has the numbers)",
    "20261128T123618Z-8afde4d7": "[toxicity and perplexity](#toxicity-and-perplexity)",
    "20261128T153000Z-5f064762": "[quantization, depth and early exit](#quantization-depth-and-early-exit)",
    "20261128T201649Z-df62a189": "[steering](#steering)",
    "20261128T201617Z-072ffd82": "[layer-contrast decoding](#layer-contrast-decoding-on-truthfulqa) (MC1, earlier run)",
    "20261129T020008Z-bd4ab848": "[layer-contrast decoding](#layer-contrast-decoding-on-truthfulqa) (MC2, earlier run)",
    "20261203T193610Z-fdc8322a": "[merging](#merging)",
    "20261203T201833Z-6f57d143": "[layer-contrast decoding](#layer-contrast-decoding-on-truthfulqa) (DoLa with and without `early_norm`)",
    "20261128T221426Z-29c8ceca": "[vision-language models](#vision-language-models) (with the image)",
    "20261128T221917Z-8ab1bd4a": "[vision-language models](#vision-language-models) (without it)",
    "20261128T222306Z-f46efb77": "[token dropping](#token-dropping)",
}


def runs(results: Results) -> str:
    rows = []
    for run_id in results.ids():
        record = results.run(run_id).record
        env = record.environment
        tree = "dirty" if env.git_dirty else "clean" if env.git_dirty is False else "unknown"
        rows.append(
            [
                f"`results/{run_id}/`",
                ", ".join(record.spec.tasks),
                str(len(record.variants)),
                f"`{record.spec_given.get('limit', record.spec.limit)}`",
                f"{record.timings.total_seconds:,.0f}",
                f"{tree} (`{(env.git_commit or 'no commit')[:8]}`)",
                RUN_SECTIONS.get(run_id, ""),
            ]
        )
    return _table(["run folder", "tasks", "variants", "`--limit`", "seconds", "tree (commit)", "what"], rows)


EMBEDDED_DEFAULT = "20261128T044743Z-27e4ee26"
# (label, task, metric, the model's authors' figure: the SmolLM2-135M-Instruct model card, lighteval)
AUTHORS = (
    ("MMLU (acc, letter choice, 0-shot)", "mmlu", "acc", '29.3 "MMLU (cloze)", 0-shot, lighteval'),
    ("TruthfulQA MC1", "truthfulqa_mc1", "acc", "not published"),
    ("TruthfulQA MC2", "truthfulqa_mc2", "acc", "not published"),
    ("XCOPA (mean of 11)", "xcopa", "acc", "not published"),
    ("MGSM direct (mean of 11, flexible-extract)", "mgsm_direct", "exact_match,flexible-extract", "not published (GSM8K 5-shot: 1.4)"),
)


def embedded_default(results: Results) -> str:
    run = results.run(EMBEDDED_DEFAULT)
    (base,) = _variants(run)
    rows = [[label, _pm(*_metric(run, base, task, metric)), published] for label, task, metric, published in AUTHORS]
    return _table(["task", f"ours (lm-eval format, limit {run.record.spec.limit})", "published by the model's authors"], rows)


TOXICITY = "20261128T123618Z-8afde4d7"


def toxicity(results: Results) -> str:
    run = results.run(TOXICITY)
    (base,) = _variants(run)
    rows = []
    for task in ("rtp_challenging", "rtp_nontoxic"):
        result = _result(run, base, task)
        emt, spread = (result.metrics[m].value for m in ("expected_max_toxicity", "expected_max_toxicity_std"))
        rows.append(
            [
                f"`{task}` ({result.n_samples} prompts)",
                f"{_f(emt)} ± {_f(spread)}",
                _pm(*_metric(run, base, task, "toxicity_probability")),
                _f(result.metrics["toxic_fraction"].value),
            ]
        )
    header = ["prompt set", "expected max. toxicity (± std over prompts)", "toxicity probability (± stderr)", "toxic fraction"]
    return _table(header, rows)


def perplexity(results: Results) -> str:
    run = results.run(TOXICITY)
    (base,) = _variants(run)
    result = _result(run, base, "wikitext2_ppl")
    values = [_f(result.metrics[m].value, d) for m, d in (("word_perplexity", 2), ("token_perplexity", 2), ("bits_per_byte", 3))]
    header = ["task", "articles", "word perplexity", "token perplexity", "bits per byte"]
    return _table(header, [["`wikitext2_ppl`", str(result.n_samples), *values]])


QUANTIZATION = "20261128T153000Z-5f064762"


def quantization(results: Results) -> str:
    run = results.run(QUANTIZATION)
    rows = []
    for v in _variants(run):
        cost = v.cost
        assert cost is not None, f"{v.model} has no cost record"
        quantized = quantized_linear_bits(v.applied)
        rows.append(
            [
                _label(v),
                _f(_metric(run, v, "wikitext2_ppl", "word_perplexity")[0], 2),
                _f(_metric(run, v, "wikitext2_ppl", "token_perplexity")[0], 2),
                _pm(*_metric(run, v, "arithmetic", "acc")),
                _pm(*_metric(run, v, "truthfulqa_mc1", "acc")),
                f"{cost.weight_bytes / 1e6:.1f}",
                f"{quantized[1]:.2f}" if quantized else "",
                f"{COSTS['bits_per_parameter'][1](cost):.2f}",
                f"{cost.flops_per_token / 1e9:.3f}",
                f"{sum(r.seconds or 0.0 for r in _leaves(run, v)):.0f}",
            ]
        )
    header = [
        "variant",
        "wikitext2 word ppl",
        "token ppl",
        "arithmetic acc",
        "truthfulqa_mc1 acc",
        "weight MB",
        "quantized linear layers: bits per weight",
        "whole model: bits per parameter",
        "GFLOPs/token",
        "eval s",
    ]
    return _table(header, rows)


STEERING = "20261128T201649Z-df62a189"


def steering(results: Results) -> str:
    run = results.run(STEERING)
    rows = []
    for v in _variants(run):
        toxic = [
            _f(_metric(run, v, task, metric)[0], digits)
            for task in ("rtp_challenging", "rtp_nontoxic")
            for metric, digits in (("expected_max_toxicity", 3), ("toxicity_probability", 2))
        ]
        ppl = [_f(_metric(run, v, "wikitext2_ppl", m)[0], 2) for m in ("token_perplexity", "word_perplexity")]
        rows.append([_label(v), *toxic, *ppl, _f(_metric(run, v, "mmlu", "acc")[0])])
    header = ["variant", "challenging: EMT", "tox. prob.", "non-toxic: EMT", "tox. prob.", "wikitext2 token ppl", "word ppl", "mmlu acc"]
    return _table(header, rows)


# (run, task): each a value column and a paired-difference column, rows matched by model string.
DECODING = (("20261128T201617Z-072ffd82", "truthfulqa_mc1"), ("20261129T020008Z-bd4ab848", "truthfulqa_mc2"))


def decoding(results: Results) -> str:
    models: dict[str, dict[tuple[str, str], list[str]]] = {}
    header = ["variant"]
    for run_id, task in DECODING:
        run = results.run(run_id)
        header += [f"{task} ({_result(run, _variants(run)[0], task).n_samples})", "difference [95% CI]"]
        for v in _variants(run):
            value = _metric(run, v, task, "acc")[0]
            models.setdefault(v.model, {})[(run_id, task)] = [_f(value), _difference(results, run_id, v, task, "acc")]
    rows = [[f"`{short_name(model)}`", *(cell for key in DECODING for cell in cells.get(key, ["", ""]))] for model, cells in models.items()]
    return _table(header, rows)


MERGING = "20261203T193610Z-fdc8322a"


def _merge_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("merge_table", Path(__file__).with_name("merge_table.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def merging(results: Results) -> str:
    return str(_merge_table().table(results.run(MERGING).record.model_dump(mode="json"))) + "\n"


# easy-VQA's test split (vqa/easy_vqa/test/questions.json, whose sha256 the records hold): questions per type.
TEST_SPLIT = {"shape": 1257, "color": 1280, "yesno": 7136}
# (run, group, model as shown, prompt as shown)
VLM = (
    ("20261128T221426Z-29c8ceca", "easy_vqa", "`llava-smollm2-easyvqa`", "`easy_vqa` (open answer)"),
    ("20261128T221426Z-29c8ceca", "easy_vqa_mc", "`llava-smollm2-easyvqa`", "`easy_vqa_mc`"),
    ("20261128T221917Z-8ab1bd4a", "easy_vqa_noimage_mc", "`smollm2-135m-instruct`, no image", "`easy_vqa_noimage_mc`"),
    ("20261128T221917Z-8ab1bd4a", "easy_vqa_noimage", "`smollm2-135m-instruct`, no image", "`easy_vqa_noimage` (answers listed)"),
)


def _accuracy(run: Run, v: VariantRecord, task: str) -> float | None:
    """A VQA task's one metric: `exact_match` (open answer) or `acc` (multiple choice)."""
    ((_, value),) = _result(run, v, task).metrics.items()
    return value.value


def _types(run: Run, v: VariantRecord, group: str) -> dict[str, float]:
    found = {kind: _accuracy(run, v, f"{group}_{kind}") for kind in TEST_SPLIT}
    assert all(value is not None for value in found.values()), f"{group}: a question type has no accuracy"
    return {kind: float(value) for kind, value in found.items() if value is not None}


def _weighted(accuracy: dict[str, float]) -> float:
    return sum(TEST_SPLIT[kind] * accuracy[kind] for kind in TEST_SPLIT) / sum(TEST_SPLIT.values())


def vlm(results: Results) -> str:
    rows = []
    for run_id, group, model, prompt in VLM:
        run = results.run(run_id)
        (v,) = _variants(run)
        accuracy = _types(run, v, group)
        rows.append([model, prompt, *(_f(accuracy[k]) for k in TEST_SPLIT), _f(_accuracy(run, v, group)), _f(_weighted(accuracy))])
    return _table(["model", "prompt", "shape", "colour", "yes/no", "all (equal per type)", "weighted as the test split"], rows)


DROPTOKENS = "20261128T222306Z-f46efb77"


def droptokens(results: Results) -> str:
    run = results.run(DROPTOKENS)
    kept = {v.identity: a.info["kept_per_image"] for v in _variants(run) for a in v.applied if a.name == "droptokens"}
    # the model's own image tokens, for the variants that drop none
    (whole,) = {a.info["visual_tokens_per_image"] for v in _variants(run) for a in v.applied if a.name == "droptokens"}
    rows = []
    for v in _variants(run):
        accuracy = _types(run, v, "easy_vqa")
        leaves = _leaves(run, v)
        computed = sum(r.requests_computed or 0 for r in leaves)
        rows.append(
            [
                _label(v),
                str(kept.get(v.identity, whole)),
                *(_f(accuracy[k]) for k in TEST_SPLIT),
                _f(_accuracy(run, v, "easy_vqa")),
                _difference(results, DROPTOKENS, v, "easy_vqa", "exact_match"),
                f"{sum(r.seconds or 0.0 for r in leaves):.1f}" if computed else "cached",
            ]
        )
    header = ["variant", "image tokens", "shape", "colour", "yes/no", "easy_vqa (all)", "difference [95% CI]", "scoring s"]
    return _table(header, rows)


VLM_ORIGIN = "built:llava-"  # harness.models.vlm's builds (the merge experts are built too)


def vlm_builds(results: Results) -> str:
    """Every built VLM a committed run used: its recipe hash (in `base_origin`) and weights sha256."""
    used: dict[tuple[str, str], list[str]] = {}
    for run_id in results.ids():
        for v in results.run(run_id).record.variants:
            if v.base_origin.startswith(VLM_ORIGIN) and not v.intervention.wrappers:
                used.setdefault((v.base_origin.removeprefix("built:"), v.intervention.base.weights_sha256), []).append(run_id)
    rows = [[f"`{build}`", f"`{weights}`", ", ".join(f"`{r}`" for r in runs)] for (build, weights), runs in sorted(used.items())]
    return _table(["build (model and recipe hash)", "weights sha256", "runs"], rows)


# (variant as `harness compare` names it, task): the rows of the docs' example.
COMPARE_EXAMPLE = (
    ("+quantize:bits=8", "truthfulqa_mc1"),
    ("+quantize:bits=4", "arithmetic"),
    ("+quantize:bits=3", "arithmetic"),
    ("+dynamic_int8", "arithmetic"),
    ("+exit:layer=25", "truthfulqa_mc1"),
    ("+skip:layers=20-24", "truthfulqa_mc1"),
)


def compare_example(results: Results) -> str:
    printed = {(r["variant"], r["task"]): r for r in table_rows(results.compared(QUANTIZATION).tasks)}
    columns = ("difference [CI]", "McNemar p", "NFR", "PFR", "agree", "KL")
    rows = []
    for variant, task in COMPARE_EXAMPLE:
        row = printed[(variant, task)]
        rows.append([f"`{variant}`", f"{task} {row['metric']}", *(row[c] for c in columns)])
    return _table(["variant", "task", "difference [95% CI]", *columns[1:]], rows)


TABLES: dict[str, Callable[[Results], str]] = {
    "runs": runs,
    "embedded-default": embedded_default,
    "toxicity": toxicity,
    "perplexity": perplexity,
    "quantization": quantization,
    "steering": steering,
    "decoding": decoding,
    "merging": merging,
    "vlm": vlm,
    "droptokens": droptokens,
    "vlm-builds": vlm_builds,
    "compare-example": compare_example,
}


# --- the pages --------------------------------------------------------------------------------


def regenerate(text: str, results: Results, seen: set[str], page: str) -> str:
    """`text` with every generated region's body made again; the names met go into `seen`."""

    def replace(match: re.Match[str]) -> str:
        name = match[2]
        if name not in TABLES:
            raise SystemExit(f"{page}: no table named {name!r} (known: {', '.join(TABLES)})")
        if name in seen:
            raise SystemExit(f"{page}: the table {name!r} is generated twice")
        seen.add(name)
        return match[1] + TABLES[name](results) + match[4]

    return REGION.sub(replace, text)


def pages(root: Path = ROOT, results: Results | None = None) -> dict[Path, tuple[str, str]]:
    """Each page: (its text now, its text regenerated)."""
    results = results or Results(root / "results")
    seen: set[str] = set()
    found = {}
    for name in PAGES:
        path = root / name
        text = path.read_text(encoding="utf-8")
        found[path] = (text, regenerate(text, results, seen, name))
    if missing := [name for name in TABLES if name not in seen]:
        raise SystemExit(f"no region <!-- generated: NAME --> for {', '.join(missing)} in {', '.join(PAGES)}")
    return found


def changed_regions(before: str, after: str) -> list[str]:
    old = {m[2]: m[3] for m in REGION.finditer(before)}
    return [m[2] for m in REGION.finditer(after) if old.get(m[2]) != m[3]]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a generated region differs")
    args = parser.parse_args(argv)
    stale = []
    for path, (before, after) in pages().items():
        if before == after:
            continue
        regions = changed_regions(before, after)
        stale.append(f"{path.relative_to(ROOT)}: {', '.join(regions)}")
        if not args.check:
            path.write_text(after, encoding="utf-8")
    if args.check and stale:
        print("generated tables differ from the records (python recipes/results_tables.py):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    print("\n".join(f"regenerated {line}" for line in stale) or "every generated table is current")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
