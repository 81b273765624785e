"""Print a merge run's table as MergeBench reports it, from its run record.

    python recipes/merge_table.py results/<run>            # Markdown

Rows: the base, each expert (`expert:NAME`) and each merged variant (`+merge:...`). For each
expert's task (harness.models.experts.skills.SKILL_TASKS), a merge's score divided by that expert's
score there (MergeBench's normalised performance; 1 = the expert's skill kept), and their mean;
for every other task, the change against the base (forgetting: accuracy in points, perplexity as
a ratio); and the merge's time (loading the sources apart), from the variant's `applied` record.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.models.experts import EXPERTS
from harness.models.experts.skills import SKILL_TASKS

PERPLEXITY = "word_perplexity"


def _scores(record: dict) -> dict[str, dict[str, float]]:
    """variant identity -> task -> its headline number (acc, or word perplexity)."""
    scores: dict[str, dict[str, float]] = {}
    for result in record["results"]:
        metrics = result["metrics"]
        name = "acc" if "acc" in metrics else PERPLEXITY if PERPLEXITY in metrics else None
        if name is not None:
            scores.setdefault(result["variant"], {})[result["task"]] = metrics[name]["value"]
    return scores


def _label(variant: dict) -> str:
    wrappers = variant["intervention"]["wrappers"]
    if not wrappers:
        return variant["model"]
    params = wrappers[0]["params"]
    return f"merge {params['method']}" + (f" ({params['dare_base']})" if params["method"] == "dare" else "")


def table(record: dict) -> str:
    scores = _scores(record)
    variants = record["variants"]
    experts = {v["model"]: v["identity"] for v in variants if v["model"].startswith("expert:") and not v["intervention"]["wrappers"]}
    expert_tasks = {SKILL_TASKS[EXPERTS.get(name.split(":", 1)[1]).skill]: identity for name, identity in experts.items()}
    base = next(v["identity"] for v in variants if not v["intervention"]["wrappers"] and not v["model"].startswith("expert:"))
    tasks = sorted({t for s in scores.values() for t in s if t in record["spec"]["tasks"]})
    others = [t for t in tasks if t not in expert_tasks]
    header = [
        "model",
        *(f"{t}" for t in expert_tasks),
        *(f"{t} / expert" for t in expert_tasks),
        "mean / expert",
        *(f"{t} vs base" for t in others),
        "merge s",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in variants:
        own = scores.get(variant["identity"], {})
        normalised = [own[t] / scores[e][t] for t, e in expert_tasks.items()]
        forgetting = []
        for t in others:
            if t.endswith("_ppl"):
                forgetting.append(f"{own[t]:.2f} (x{own[t] / scores[base][t]:.3f})")
            else:
                forgetting.append(f"{own[t]:.3f} ({100 * (own[t] - scores[base][t]):+.1f})")
        applied = variant.get("applied") or []
        seconds = applied[0]["info"].get("merge_seconds") if applied else None
        row = [
            _label(variant),
            *(f"{own[t]:.3f}" for t in expert_tasks),
            *(f"{n:.3f}" for n in normalised),
            f"{sum(normalised) / len(normalised):.3f}",
            *forgetting,
            "" if seconds is None else f"{seconds:.1f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python recipes/merge_table.py RUN_FOLDER", file=sys.stderr)
        return 2
    record = json.loads((Path(argv[0]) / "record.json").read_text(encoding="utf-8"))
    print(table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
