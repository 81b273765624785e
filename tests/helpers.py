"""What several test modules share: the repository's paths, the command line, a hand-made run
record, and a tiny vision-language model (fixtures that use these live in conftest.py)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

from harness.analysis import _stats
from harness.records._schema import (
    BaseIdentity,
    CostRecord,
    DataFileRecord,
    Environment,
    InterventionRecord,
    MetricValue,
    RunRecord,
    RunSpecRecord,
    ScorerRecord,
    TaskResult,
    Timings,
    VariantRecord,
    WrapperRecord,
    write_record,
)

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "tests" / "cases"
HARNESS = [sys.executable, "-m", "harness"]


def read_cases(name: str):
    """The data-driven cases of tests/cases/<name>."""
    return json.loads((CASES / name).read_text())


def run_cli(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*HARNESS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)


# --- a hand-made run -------------------------------------------------------------------------------

# quiz_a: document -> (base's choice, variant's choice); choice 0 is right. Base right on 0 1 2 5 7,
# variant on 0 2 3 7: negative flips 1 and 5, positive flip 3, variant errors 1 4 5 6; the two agree
# on 0 2 4 6 7. quiz_b: both right on both documents.
QUIZ_A = {0: (0, 0), 1: (0, 2), 2: (0, 0), 3: (1, 0), 4: (1, 1), 5: (0, 1), 6: (2, 2), 7: (0, 0)}
QUIZ_B = {0: (0, 0), 1: (0, 0)}
# A chosen answer has log-likelihood -1, the two others -2: where the choices differ,
# KL = (a - b) ln(a / b) = a - b with a = 1 / (1 + 2/e), b = (1 - a) / 2.
A = 1 / (1 + 2 / math.e)
KL_DISAGREE = A - (1 - A) / 2
GEN = {  # document -> (base output, variant output, exact match base/variant, toxic base/variant)
    0: ("4", "4", (1, 1), (1, 0)),
    1: ("7", "8", (1, 0), (0, 0)),
    2: ("x", "x", (0, 0), (1, 1)),
    3: ("10", "11", (1, 0), (0, 1)),
}
PPL = {0: ((-10.0, 5), (-12.0, 5)), 1: ((-20.0, 5), (-20.0, 5))}
HIGHER = {"acc": True, "exact_match": True, "toxicity_probability": False, "word_perplexity": False}


def _choices(chosen: int) -> list:
    return [[-1.0 if i == chosen else -2.0, False] for i in range(3)]


def _sample_rows(task: str, side: int) -> list[dict]:
    """Sample-log lines of `task` for the base (side 0) or the variant (side 1)."""
    rows = []
    if task in ("quiz_a", "quiz_b"):
        for doc, chosen in (QUIZ_A if task == "quiz_a" else QUIZ_B).items():
            rows.append({"doc_id": doc, "filtered_resps": _choices(chosen[side]), "metrics": ["acc"], "acc": float(chosen[side] == 0)})
    elif task == "gen":
        for doc, (base, variant, match, toxic) in GEN.items():
            rows.append(
                {
                    "doc_id": doc,
                    "filtered_resps": [(base, variant)[side]],
                    "metrics": ["exact_match", "toxicity_probability"],
                    "exact_match": float(match[side]),
                    "toxicity_probability": float(toxic[side]),
                }
            )
    else:
        for doc, pairs in PPL.items():
            rows.append(
                {"doc_id": doc, "filtered_resps": [pairs[side][0]], "metrics": ["word_perplexity"], "word_perplexity": list(pairs[side])}
            )
    for row in rows:
        row.update(filter="none", doc_hash=f"{task}-doc{row['doc_id']}", prompt_hash="p", target_hash="t")
    return rows


def _aggregate(rows: list[dict], metric: str) -> float:
    return float(_stats.aggregate_for(metric)(np.array([r[metric] for r in rows], dtype=float)))


def _variant(model: str, wrappers: tuple, weight_mb: float) -> VariantRecord:
    base = BaseIdentity(weights_sha256="a" * 64, format="gguf", dtype="float32")
    intervention = InterventionRecord(base=base, wrappers=tuple(WrapperRecord(name=n, params=p) for n, p in wrappers))
    return VariantRecord(
        identity=intervention.identity(),
        model=model,
        base_origin="local",
        base_path="/models/tiny",
        intervention=intervention,
        load_seconds=1.5,
        load_converted=False,
        cost=CostRecord(parameters=1_000_000, weight_bytes=int(weight_mb * 1e6), flops_per_token=2e6),
    )


def write_synthetic_run(
    folder: Path,
    name: str = "tiny",
    run_id: str = "20260101T000000Z-synthetic",
    variants: tuple[str, ...] = ("base", "bits=4", "bits=8"),
    change: dict | None = None,
) -> Path:
    """A run of a base `name` and its quantize:bits=4 (the hand-made answers above) and bits=8
    (the base's answers) variants on quiz_a, quiz_b (group quizzes), gen and ppl; `change` alters
    the bits=4 variant's quiz_a result as compare_refusals.json describes."""
    change = change or {}
    made = {
        "base": (_variant(name, (), 100.0), 0),
        "bits=4": (_variant(f"{name}+quantize:bits=4", (("quantize", {"bits": "4", "group": "64"}),), 30.0), 1),
        "bits=8": (_variant(f"{name}+quantize:bits=8", (("quantize", {"bits": "8", "group": "64"}),), 55.0), 0),
    }
    chosen = [made[v] for v in variants]
    results = []
    for variant, side in chosen:
        changed = variant.model.endswith("bits=4")
        pooled = []
        for task in ("quiz_a", "quiz_b", "gen", "ppl"):
            rows = _sample_rows(task, side)
            tamper = changed and task == "quiz_a"
            if tamper and "doc_hash" in change:
                rows[change["doc_hash"]]["doc_hash"] = "f" * 64
            samples_file = f"samples/{variant.identity[:12]}/{task}.jsonl"
            (folder / samples_file).parent.mkdir(parents=True, exist_ok=True)
            (folder / samples_file).write_text("".join(json.dumps(r) + "\n" for r in rows))
            pooled += rows if task.startswith("quiz") else []
            metrics = {
                m: MetricValue(value=_aggregate(rows, m), stderr=None if m == "word_perplexity" else 0.1) for m in rows[0]["metrics"]
            }
            scorer = change.get("scorer", "jigsaw-bilstm") if tamper else "jigsaw-bilstm"
            results.append(
                TaskResult(
                    variant=variant.identity,
                    task=task,
                    kind="task",
                    version=change.get("version", "1.0") if tamper else "1.0",
                    num_fewshot=change.get("num_fewshot", 0) if tamper else 0,
                    n_samples=len(rows),
                    config_hash="c" * 64,
                    data_files=(
                        DataFileRecord(
                            split="test",
                            path=f"{task}.jsonl",
                            origin="data_dir",
                            sha256=change.get("data_sha256", "d") * 64 if tamper else "d" * 64,
                        ),
                    ),
                    metrics=metrics,
                    higher_is_better={m: HIGHER[m] for m in metrics},
                    samples_file=samples_file,
                    seconds=0.5,
                    requests_computed=len(rows),
                    requests_cached=0,
                    scorer=ScorerRecord(name=scorer, version="test 1.0", weights_sha256="f" * 64),
                )
            )
        results.append(
            TaskResult(
                variant=variant.identity,
                task="quizzes",
                kind="group",
                version="1.0",
                num_fewshot=0,
                n_samples=None,
                config_hash=None,
                metrics={"acc": MetricValue(value=_aggregate(pooled, "acc"), stderr=0.1)},
                higher_is_better={"acc": True},
                samples_file=None,
                seconds=None,
                requests_computed=None,
                requests_cached=None,
            )
        )
    record = RunRecord(
        run_id=run_id,
        created_at="2026-01-01T00:00:00+00:00",
        command=("harness", "eval", "--model", f"{name}+quantize:bits=4|8", "--tasks", "quizzes,gen,ppl"),
        spec_given={"model": [f"{name}+quantize:bits=4|8"], "tasks": "quizzes,gen,ppl"},
        spec=RunSpecRecord(
            models=tuple(v.model for v, _ in chosen),
            tasks=("quizzes", "gen", "ppl"),
            limit=None,
            num_fewshot=None,
            batch_size=8,
            device="cpu",
            seed=1234,
            data_dir=None,
            samples="public",
        ),
        variants=tuple(v for v, _ in chosen),
        results=tuple(results),
        lm_eval={v.identity: {"group_subtasks": {"quizzes": ["quiz_a", "quiz_b"]}} for v, _ in chosen},
        environment=Environment(
            harness_version="0.1.0",
            git_commit="0" * 40,
            git_dirty=False,
            python="3.11",
            packages={"lm_eval": "0.4.13"},
            platform="test",
            processor="x86_64",
            cpu_count=2,
            memory_gb=8.0,
            accelerator=None,
            torch_threads=2,
        ),
        timings=Timings(total_seconds=12.0, setup_seconds=2.0),
    )
    write_record(record, folder)
    return folder


# --- a tiny vision-language model ------------------------------------------------------------------

IMAGE = "<image>"


TINY_LLAMA = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "tie_word_embeddings": True,
}
"""The tiny Llama the model tests build (its vocabulary is its tokenizer's)."""


def tiny_llama(folder: Path, tokenizer_folder: Path) -> Path:
    """A tiny randomly initialised Llama (seed 0) with `tokenizer_folder`'s tokenizer, saved as a model folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), **TINY_LLAMA)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_llava(folder: Path, tokenizer_folder: Path) -> Path:
    """A LLaVA as llava-hf lays one out (CLIP vision tower, Llama text model, `<image>` added to
    the tokenizer), tiny and randomly initialised, with SmolLM2's tokenizer, saved as a folder."""
    import torch
    from transformers import AutoTokenizer, CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE]})
    torch.manual_seed(0)
    # The tower's depth differs from the text model's: depth wrappers cut every config of the text depth.
    vision = CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2)
    text = LlamaConfig(vocab_size=len(tokenizer), **TINY_LLAMA)
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        tie_word_embeddings=True,
    )
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def picture(color: tuple[int, int, int]):
    from PIL import Image

    image = Image.new("RGB", (32, 32), (250, 250, 250))
    image.paste(color, (8, 8, 20, 24))
    return image


def request(kind: str, *arguments):
    from lm_eval.api.instance import Instance

    return Instance(request_type=kind, doc={}, arguments=arguments, idx=0, metadata=("t", 0, 1))


# --- a cache with an entry of every kind (harness cache) -------------------------------------------

VARIANT_A, VARIANT_B = "a" * 64, "b" * 64


def fill_cache(root: Path) -> dict[str, Path]:
    """An entry of every kind of cache under `root`, each as harness writes it (small stand-ins for
    weights): kind -> its main path. The request cache of VARIANT_A holds two answers made under
    an older answer context and one under the newest."""
    import time

    from harness._util.files import MEMO_BYTES, key_name, sha256_file, sha256_json, write_facts
    from harness.lm._request_cache import RequestCache

    made: dict[str, Path] = {}
    old = RequestCache(root / "requests", VARIANT_A, "old context")
    old.put_many([("k1", [-1.5, True]), ("k2", [-2.5, False])])
    old.close()
    time.sleep(0.01)  # the newer context's answers are written later
    new = RequestCache(root / "requests", VARIANT_A, "new context")
    new.put_many([("k3", [-0.5, True])])
    new.close()
    RequestCache(root / "requests", VARIANT_B, "new context").close()
    made["requests"] = root / "requests" / f"{VARIANT_A}.sqlite"
    for kind, facts_name, key in (
        ("models", "manifest.json", {"name": "gguf", "gguf_sha256": "1" * 64}),
        ("experts", "build.json", {"name": "arithmetic", "recipe": "2" * 64}),
        ("vlm", "build.json", {"name": "llava-smollm2-easyvqa", "recipe": "3" * 64}),
    ):
        folder = root / kind / key_name(key)
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(bytes(range(256)) * 32)
        (folder / "config.json").write_text("{}")
        write_facts(folder, facts_name, {}, key)
        made[kind] = folder
    for kind, recorded in (("artifacts", "tensors_sha256"), ("merges", "weights_sha256")):
        weights = root / kind / f"{'meandiff-' if kind == 'artifacts' else ''}{'4' * 32}.safetensors"
        weights.parent.mkdir(parents=True)
        weights.write_bytes(bytes(range(256)) * 8)
        weights.with_name(weights.name + ".json").write_text(json.dumps({recorded: sha256_file(weights)}))
        made[kind] = weights
    entry = {"key": {"score": "pruning"}, "scores": [0.5, 1.5]}
    made["quantize"] = root / "quantize" / f"{sha256_json(entry['key'])}.json"
    made["quantize"].parent.mkdir(parents=True)
    made["quantize"].write_text(json.dumps({**entry, "sha256": sha256_json(entry)}))
    big = root / "big.bin"
    big.write_bytes(b"\0" * MEMO_BYTES)
    sha256_file(big)  # its memo, in $HARNESS_CACHE_DIR/file-hashes (root, when the caller set it so)
    (made["file-hashes"],) = (root / "file-hashes").iterdir()
    made["scorers"] = root / "scorers" / "keras-tokenizers" / f"{'5' * 64}.json"
    made["scorers"].parent.mkdir(parents=True)
    made["scorers"].write_text('{"word_index": {}}')
    (root / "gguf").mkdir()
    made["gguf"] = root / "gguf" / "gemma.gguf"
    made["gguf"].write_bytes(b"GGUF")
    return made
