"""The experts' skills: training examples, the evaluation items they must not contain, and the check.

Each skill yields (prompt, target) pairs in its evaluation task's own prompt shape; an expert learns
the target given the prompt. `training_set` returns the examples with the disjointness check's
figures: every example's prompt is compared with every evaluation item's prompt of the skill's task
family, and an overlap is an error (the builder records the figures in build.json).

- `arithmetic`: problems generated here in GPT-3's format (tasks/arithmetic: "\\n\\nQ: What is 98
  plus 45?\\n\\nA:" -> " 143"), evenly over lm-eval's ten arithmetic tasks' kinds (1dc, 2da, 2ds,
  2dm, 3da, ..., 5ds), each drawn from a seeded generator and redrawn while its question appears in
  any of the GPT-3 files (all 13, the extra six-digit and sum-of-digits ones too).
- `xcopa`: XCOPA's validation split (11 languages, 100 each), written as lm-eval's xcopa tasks
  write a test item (premise without its full stop, the language's connective, the lower-cased
  right alternative); the tasks score the test split. An item whose premise is a test premise (any
  language) is an error; short alternatives that also end some test item ("Zengin oldu.") are
  counted, not refused, since an item is its premise.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._util.files import sha256_file, sha256_json
from harness.errors import HarnessError
from harness.tasks import data

ARITHMETIC_FILES = (
    "single_digit_three_ops",
    "two_digit_addition",
    "two_digit_subtraction",
    "two_digit_multiplication",
    "three_digit_addition",
    "three_digit_subtraction",
    "four_digit_addition",
    "four_digit_subtraction",
    "five_digit_addition",
    "five_digit_subtraction",
    "six_digit_addition",
    "six_digit_subtraction",
    "sum_of_digits",
)
XCOPA_LANGUAGES = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")


@dataclass(frozen=True)
class Example:
    prompt: str
    target: str


@dataclass(frozen=True)
class TrainingSet:
    examples: tuple[Example, ...]
    files: dict[str, str]
    """Data files read (path in the data directory -> sha256): the evaluation files checked against,
    and for xcopa the training split."""
    disjointness: dict[str, object]
    """How the examples were checked against the evaluation items, and what was found."""

    def sha256(self) -> str:
        return sha256_json([[e.prompt, e.target] for e in self.examples])


SKILL_FILES: dict[str, tuple[str, ...]] = {
    "arithmetic": tuple(f"arithmetic/{name}.jsonl" for name in ARITHMETIC_FILES),
    "xcopa": tuple(
        f"multilingual/xcopa/data/{language}/{split}.{language}.jsonl" for language in XCOPA_LANGUAGES for split in ("val", "test")
    ),
}
"""The data files (paths in the data directory) each skill's training set reads."""


def data_sha256s(skill: str) -> dict[str, str]:
    """The sha256 of each data file `skill` reads (they key the expert's folder)."""
    return {relative: sha256_file(_data_path(relative)) for relative in SKILL_FILES[skill]}


def _data_path(relative: str) -> Path:
    directory = data.data_dir()
    if directory is None:
        raise HarnessError(
            f"an expert is built from, and keyed by, its training data: give the data directory"
            f" (--data-dir or $HARNESS_DATA_DIR) for {relative}"
        )
    path = directory / relative
    if not path.is_file():
        raise HarnessError(f"an expert is built from, and keyed by, its training data: {relative} is not in the data directory {directory}")
    return path


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- arithmetic -----------------------------------------------------------------------------------


def _two_operands(digits: int, word: str, op: Callable[[int, int], int]) -> Callable[[random.Random], Example]:
    def draw(rng: random.Random) -> Example:
        a, b = (
            rng.randrange(10 ** (digits - 1) if digits > 1 else 0, 10**digits),
            rng.randrange(10 ** (digits - 1) if digits > 1 else 0, 10**digits),
        )
        return Example(f"\n\nQ: What is {a} {word} {b}?\n\nA:", f" {op(a, b)}")

    return draw


def _three_ops(rng: random.Random) -> Example:
    """GPT-3's single_digit_three_ops: `(a o b) o c` over single digits, o in + - *."""
    ops = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}
    a, b, c = (rng.randrange(10) for _ in range(3))
    first, second = rng.choice(list(ops)), rng.choice(list(ops))
    return Example(f"\n\nQ: What is ({a} {first} {b}) {second} {c}?\n\nA:", f" {ops[second](ops[first](a, b), c)}")


_ARITHMETIC_KINDS = (
    _three_ops,
    _two_operands(2, "plus", lambda a, b: a + b),
    _two_operands(2, "minus", lambda a, b: a - b),
    _two_operands(2, "times", lambda a, b: a * b),
    *(_two_operands(d, word, op) for d in (3, 4, 5) for word, op in (("plus", lambda a, b: a + b), ("minus", lambda a, b: a - b))),
)


def arithmetic(count: int, seed: int) -> TrainingSet:
    files = {relative: _data_path(relative) for relative in SKILL_FILES["arithmetic"]}
    evaluation = {row["context"] for path in files.values() for row in _jsonl(path)}
    rng = random.Random(seed)
    examples: list[Example] = []
    seen: set[str] = set()
    redrawn = 0
    while len(examples) < count:
        example = _ARITHMETIC_KINDS[len(examples) % len(_ARITHMETIC_KINDS)](rng)
        if example.prompt in evaluation or example.prompt in seen:
            redrawn += 1
            continue
        seen.add(example.prompt)
        examples.append(example)
    overlap = sum(e.prompt in evaluation for e in examples)
    if overlap:
        raise HarnessError(f"arithmetic expert: {overlap} training problems are evaluation items")
    return TrainingSet(
        tuple(examples),
        {key: sha256_file(path) for key, path in files.items()},
        {
            "evaluation_items_checked": len(evaluation),
            "compared": "question text (context)",
            "redrawn_because_evaluation_or_repeat": redrawn,
            "overlap": overlap,
        },
    )


# --- xcopa ----------------------------------------------------------------------------------------


def _xcopa_prompt(language: str, row: dict[str, Any]) -> Example:
    from lm_eval.tasks.xcopa import utils as xcopa  # lm-eval's own prompt, as the tasks use it

    prompt = getattr(xcopa, f"doc_to_text_{language}")(row)
    return Example(prompt, " " + xcopa.doc_to_choice(row)[row["label"]])


def xcopa(count: int, seed: int) -> TrainingSet:
    rows: list[tuple[str, dict[str, Any]]] = []
    files: dict[str, str] = {}
    premises: set[str] = set()
    alternatives: set[str] = set()
    for language in XCOPA_LANGUAGES:
        val = f"multilingual/xcopa/data/{language}/val.{language}.jsonl"
        test = f"multilingual/xcopa/data/{language}/test.{language}.jsonl"
        for relative in (val, test):
            files[relative] = sha256_file(_data_path(relative))
        rows += [(language, row) for row in _jsonl(_data_path(val))]
        for row in _jsonl(_data_path(test)):
            premises.add(row["premise"].strip())
            alternatives |= {row["choice1"].strip(), row["choice2"].strip()}
    overlap = [f"{language}:{row['idx']}" for language, row in rows if row["premise"].strip() in premises]
    if overlap:
        raise HarnessError(f"xcopa expert: validation items {', '.join(overlap[:5])} have a test item's premise")
    shared = sum(row[c].strip() in alternatives for _, row in rows for c in ("choice1", "choice2"))
    random.Random(seed).shuffle(rows)
    examples = tuple(_xcopa_prompt(language, row) for language, row in rows[:count])
    return TrainingSet(
        examples,
        files,
        {
            "evaluation_items_checked": len(premises),
            "training_split": "validation",
            "compared": "each validation premise (stripped) against every test premise, all 11 languages",
            "overlap": 0,
            "alternatives_also_in_test": shared,
        },
    )


SKILLS: dict[str, Callable[[int, int], TrainingSet]] = {"arithmetic": arithmetic, "xcopa": xcopa}
SKILL_TASKS = {"arithmetic": "arithmetic", "xcopa": "xcopa"}
"""The task (group) that measures each skill: an expert's score there normalises a merge's."""
