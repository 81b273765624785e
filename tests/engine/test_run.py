"""End to end on the embedded default: records, cache identity, resume after SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from harness.models import resolve_model
from harness.records._schema import read_record, record_json_schema
from tests.helpers import HARNESS, REPO, run_cli

pytestmark = pytest.mark.slow  # runs of the embedded default through the command line


def _eval(env, out: Path, *args: str):
    done = run_cli(["eval", *args, "--output-dir", str(out), "--output", "json"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    payload = json.loads(done.stdout)
    return read_record(Path(payload["record"])), Path(payload["record"]).parent


def _samples(run_dir: Path, result) -> list[dict]:
    return [json.loads(line) for line in (run_dir / result.samples_file).read_text().splitlines()]


def _leaf_metrics(record) -> dict:
    return {(r.variant, r.task): {k: v.value for k, v in r.metrics.items()} for r in record.results}


def test_end_to_end_arithmetic_on_the_embedded_default(env, tmp_path):
    record, run_dir = _eval(env, tmp_path / "out", "--model", "smollm2-135m-instruct", "--tasks", "arithmetic", "--limit", "10")

    raw = json.loads((run_dir / "record.json").read_text())
    umask = os.umask(0)
    os.umask(umask)
    assert (run_dir / "record.json").stat().st_mode & 0o777 == 0o666 & ~umask
    jsonschema.validate(raw, record_json_schema())
    assert raw["schema_version"] == "1.5"

    gguf = resolve_model("smollm2-135m-instruct").path
    (variant,) = record.variants
    assert variant.intervention.base.weights_sha256 == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert variant.load_seconds is not None and variant.load_seconds > 0

    tasks = [r for r in record.results if r.kind == "task"]
    assert sorted(r.task for r in tasks) == sorted(
        f"arithmetic_{t}" for t in ["1dc", "2da", "2dm", "2ds", "3da", "3ds", "4da", "4ds", "5da", "5ds"]
    )
    for result in tasks:
        assert 0.0 <= result.metrics["acc"].value <= 1.0
        assert result.n_samples == 10 and result.requests_computed == 10
        assert len(result.data_files) == 1 and result.data_files[0].origin == "data_dir"
        rows = _samples(run_dir, result)
        assert [row["doc_id"] for row in rows] == list(range(10))
        for row in rows:
            assert "doc" not in row and "arguments" not in row  # public form: no dataset text
            loglikelihood, is_greedy = row["resps"][0][0]
            assert loglikelihood < 0 and row["acc"] == float(is_greedy)
            assert len(row["doc_hash"]) == 64
        assert result.metrics["acc"].value == pytest.approx(sum(r["acc"] for r in rows) / 10)
    (group,) = [r for r in record.results if r.kind == "group"]
    assert group.task == "arithmetic"
    assert group.metrics["acc"].value == pytest.approx(sum(r.metrics["acc"].value for r in tasks) / len(tasks))
    env_record = record.environment
    assert env_record.packages["lm_eval"] and env_record.packages["torch"] and env_record.cpu_count >= 1
    assert record.spec.limit == 10 and record.spec.seed == 1234


def test_second_run_is_answered_from_the_cache_without_loading_the_model(env, tmp_path):
    # xcopa's prompt functions are functools.partial objects: its config hash must not change between processes.
    args = ("--tasks", "arithmetic_2da,xcopa_it", "--limit", "12")
    first, _ = _eval(env, tmp_path / "out", *args)
    # The same spec again, given as a --config file whose limit a flag overrides.
    config = tmp_path / "run.yaml"
    config.write_text("model: [smollm2-135m-instruct]\ntasks: [arithmetic_2da, xcopa_it]\nlimit: 99\n")
    second, _ = _eval(env, tmp_path / "out", "--config", str(config), "--limit", "12")
    assert second.spec == first.spec
    assert second.spec_given["limit"] == "12" and second.spec_given["tasks"] == ["arithmetic_2da", "xcopa_it"]
    assert first.run_id != second.run_id
    assert _leaf_metrics(first) == _leaf_metrics(second)
    assert [r.config_hash for r in first.results] == [r.config_hash for r in second.results]
    computed = {r.task: r.requests_computed for r in first.results}
    assert computed == {"arithmetic_2da": 12, "xcopa_it": 24}  # one request per choice
    assert all(r.requests_computed == 0 and r.requests_cached == computed[r.task] for r in second.results)
    assert second.variants[0].load_seconds is None  # the model was never built
    assert second.variants[0].cost == first.variants[0].cost is not None  # its cost kept in the cache
    assert not (tmp_path / "out" / ".incomplete").exists() or not any((tmp_path / "out" / ".incomplete").iterdir())

    table = run_cli(["eval", *args, "--output-dir", str(tmp_path / "out")], env)
    assert table.returncode == 0
    assert "arithmetic_2da" in table.stdout and "record: " in table.stdout


def _tiny_llama(folder: Path, tokenizer_source: Path) -> Path:
    """A randomly initialised two-layer llama with the embedded default's tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(folder)
    return folder


def test_two_variants_never_share_a_cache_entry(env, tmp_path, models_dir):
    base, _ = _eval(env, tmp_path / "out", "--tasks", "arithmetic_2da", "--limit", "6")
    tiny = _tiny_llama(tmp_path / "tiny", next(p for p in models_dir.glob("gguf-*") if p.is_dir()))
    record, run_dir = _eval(
        env, tmp_path / "out", "--model", "smollm2-135m-instruct", "--model", str(tiny), "--tasks", "arithmetic_2da", "--limit", "6"
    )
    default, other = record.variants
    assert default.identity == base.variants[0].identity != other.identity
    by_variant = {r.variant: r for r in record.results}
    assert by_variant[default.identity].requests_cached == 6  # its own earlier answers
    assert by_variant[other.identity].requests_computed == 6  # never the default's
    default_ll = [row["resps"][0][0][0] for row in _samples(run_dir, by_variant[default.identity])]
    other_ll = [row["resps"][0][0][0] for row in _samples(run_dir, by_variant[other.identity])]
    assert all(abs(a - b) > 1e-3 for a, b in zip(default_ll, other_ll, strict=True))

    keys = {}
    for identity in (default.identity, other.identity):
        db = Path(env["HARNESS_CACHE_DIR"]) / "requests" / f"{identity}.sqlite"
        with sqlite3.connect(db) as conn:
            keys[identity] = {k for (k,) in conn.execute("SELECT key FROM results")}
    assert len(keys[default.identity]) == 6 and len(keys[other.identity]) == 6
    assert not keys[default.identity] & keys[other.identity]


def test_a_killed_run_resumes_and_matches_an_uninterrupted_one(env, tmp_path, models_dir):
    args = [
        "eval",
        "--tasks",
        "arithmetic_2da,arithmetic_2ds,arithmetic_3da",
        "--limit",
        "60",
        "--batch-size",
        "2",
        "--output-dir",
        str(tmp_path / "out"),
        "--output",
        "json",
    ]
    requests_db = Path(env["HARNESS_CACHE_DIR"]) / "requests"
    proc = subprocess.Popen([*HARNESS, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done_before_kill = 0
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        dbs = list(requests_db.glob("*.sqlite"))
        if dbs:
            try:
                with sqlite3.connect(dbs[0], timeout=1) as conn:
                    done_before_kill = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                done_before_kill = 0
            if done_before_kill >= 32:
                os.kill(proc.pid, signal.SIGKILL)
                break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert 32 <= done_before_kill < 180
    assert not [p for p in (tmp_path / "out").glob("*") if p.name != ".incomplete"], "a killed run publishes nothing"

    resumed_run = run_cli(args, env)
    assert resumed_run.returncode == 0, resumed_run.stderr[-3000:]
    resumed = read_record(Path(json.loads(resumed_run.stdout)["record"]))
    assert sum(r.requests_cached for r in resumed.results if r.kind == "task") >= done_before_kill
    assert sum(r.requests_computed for r in resumed.results if r.kind == "task") == 180 - sum(
        r.requests_cached for r in resumed.results if r.kind == "task"
    )

    fresh = tmp_path / "fresh-cache"
    fresh.mkdir()
    (fresh / "models").symlink_to(models_dir, target_is_directory=True)
    uninterrupted = run_cli(
        [*args[:-4], "--output-dir", str(tmp_path / "out2"), "--output", "json"], {**env, "HARNESS_CACHE_DIR": str(fresh)}
    )
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    reference = read_record(Path(json.loads(uninterrupted.stdout)["record"]))
    assert all(r.requests_cached == 0 for r in reference.results if r.kind == "task")
    assert _leaf_metrics(resumed) == _leaf_metrics(reference)


def test_per_task_limits(env, tmp_path):
    record, run_dir = _eval(env, tmp_path / "out", "--tasks", "arithmetic_2da,arithmetic_2ds", "--limit", "3,arithmetic_2ds=1")
    counts = {r.task: r.n_samples for r in record.results}
    assert counts == {"arithmetic_2da": 3, "arithmetic_2ds": 1}
    assert record.spec.limit == 3 and record.spec.limit_per_task == {"arithmetic_2ds": 1}
    rows = _samples(run_dir, next(r for r in record.results if r.task == "arithmetic_2da"))
    assert [row["doc_id"] for row in rows] == [0, 1, 2]


def test_a_run_leaves_the_caller_s_process_as_it_found_it(embedded_default, data_dir, tmp_path, monkeypatch):
    """What a run sets for lm-eval and transformers (logger levels and handlers, progress bars,
    warning filters and display, stderr, seeds, the data directory's variable) is set only while it
    runs; the umask is never touched. What the libraries said is in the run folder's run.log."""
    import logging
    import random
    import warnings

    import datasets
    import numpy as np
    import torch
    import transformers

    from harness.engine import run
    from harness.spec._spec import build_spec
    from harness.tasks.index import known_names, task_manager

    monkeypatch.delenv("HARNESS_DATA_DIR")  # the spec names the data directory: the run must not leave it behind
    given = {"model": ["smollm2-135m-instruct"], "tasks": "arithmetic_2da", "limit": 2, "device": "cpu", "data_dir": str(data_dir)}
    spec = build_spec({**given, "output_dir": str(tmp_path / "out")}, known_names(task_manager(data_dir)))
    loggers = [logging.getLogger(name) for name in ("lm_eval", "datasets", "transformers", "accelerate", "huggingface_hub")]
    levels = [logger.level for logger in loggers]
    umask = os.umask(0o027)

    callers = logging.StreamHandler(sys.stdout)  # a handler of the caller's own, on lm-eval's logger

    def state() -> dict:
        return {
            "levels": [logger.level for logger in loggers],
            "handlers": [(list(logger.handlers), logger.propagate) for logger in [*loggers, logging.getLogger("harness")]],
            "progress bars": (transformers.utils.logging.is_progress_bar_enabled(), datasets.are_progress_bars_disabled()),
            "warning filters": list(warnings.filters),
            "warning display": warnings.showwarning,
            "stderr": (sys.stderr, os.fstat(2).st_ino),
            "environment": dict(os.environ),
            "umask": os.umask(os.umask(0)),
        }

    try:
        with warnings.catch_warnings():
            for logger in loggers:
                logger.setLevel(logging.INFO)
            loggers[0].addHandler(callers)
            transformers.utils.logging.enable_progress_bar()
            datasets.enable_progress_bars()
            warnings.simplefilter("default")
            before = state()
            random.seed(7)
            np.random.seed(7)
            torch.manual_seed(7)
            _, folder = run(spec, ["test"])
            drawn = (random.random(), np.random.random_sample(), torch.rand(1).item())
            after = state()
    finally:
        os.umask(umask)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        loggers[0].removeHandler(callers)
    assert after == before
    assert "arithmetic_2da: Custom kwargs can be passed to `--metadata`" in (folder / "run.log").read_text()
    seeded = torch.Generator().manual_seed(7)
    fresh = (random.Random(7).random(), np.random.RandomState(7).random_sample(), torch.rand(1, generator=seeded).item())
    assert drawn == fresh  # the caller's generators go on where they were


def test_a_default_run_prints_its_progress_and_results_and_the_libraries_noise_only_with_v(embedded_default, tmp_path):
    """Outside a git repository lm-eval's `git describe` prints `fatal: not a git repository`, and
    lm-eval warns about the arithmetic tasks' custom datasets: by default both go to the run's
    run.log, and stderr has one labelled progress bar per variant and task; -v shows them."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    # git looks no higher than tmp_path's parent for a repository (the test may run inside one).
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)}
    args = ["eval", "--tasks", "arithmetic_2da", "--limit", "3", "--output-dir", str(tmp_path / "out")]
    default = run_cli(args, env, cwd=outside)
    assert default.returncode == 0, default.stderr[-3000:]
    drawn = [part.strip() for part in default.stderr.replace("\r", "\n").splitlines() if part.strip()]
    assert drawn and all(part.startswith("smollm2-135m-instruct arithmetic_2da: ") for part in drawn), drawn
    assert "3/3" in drawn[-1]
    (folder,) = [p for p in (tmp_path / "out").iterdir() if p.name != ".incomplete"]
    logged = (folder / "run.log").read_text()
    assert "fatal: not a git repository" in logged and "Custom kwargs can be passed to `--metadata`" in logged
    *_, table_end, after = default.stdout.splitlines()
    assert table_end == "next:" and after.split()[:3] == ["harness", "report", str(folder)]  # a base alone: nothing to compare

    verbose = run_cli([*args, "-v"], env, cwd=outside)  # answered from the cache; lm-eval still runs
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert "fatal: not a git repository" in verbose.stderr
    assert "lm_eval.api.task: WARNING: arithmetic_2da: Custom kwargs can be passed to `--metadata`" in verbose.stderr


def test_importing_the_file_helpers_leaves_the_umask_alone():
    """The file helpers give new files the usual permissions without reading the umask, which
    Python can only read by changing it."""
    code = (
        "import os\n"
        "def refuse(*args):\n"
        "    raise AssertionError('os.umask called')\n"
        "os.umask = refuse\n"
        "from pathlib import Path\n"
        "import tempfile\n"
        "from harness._util.files import atomic_write_text\n"
        "folder = Path(tempfile.mkdtemp())\n"
        "atomic_write_text(folder / 'a.txt', 'a')\n"
        "print(oct((folder / 'a.txt').stat().st_mode & 0o777))\n"
    )
    done = subprocess.run([sys.executable, "-c", "import os; os.umask(0o027)\n" + code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == oct(0o640)


def test_two_runs_of_one_spec_at_once_both_publish_whole_run_folders(env, tmp_path):
    """Answered from the request cache, two identical runs overlap and may start in the same
    second: each publishes its own folder with every sample log (they once shared a staging folder
    and a run id)."""
    from harness.records import load_run, read_rows

    out = tmp_path / "out"
    args = ["eval", "--tasks", "arithmetic_2da", "--limit", "3", "--output-dir", str(out), "--output", "json"]
    assert run_cli(args, env).returncode == 0  # fills the request cache
    runs = [subprocess.Popen([*HARNESS, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in runs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    folders = [p for p in out.iterdir() if p.name != ".incomplete"]
    assert len(folders) == 3
    for folder in folders:
        run = load_run(folder)
        for result in run.record.results:
            if result.samples_file is not None:
                assert len(read_rows(run, result)) == result.n_samples == 3


def test_a_variant_answered_from_the_cache_keeps_its_wrapper_facts(env, tmp_path):
    args = ("--model", "smollm2-135m-instruct+quantize:bits=4", "--no-base", "--tasks", "arithmetic_2da", "--limit", "2")
    first, _ = _eval(env, tmp_path / "out", *args)
    second, _ = _eval(env, tmp_path / "out", *args)
    assert second.results[0].requests_computed == 0 and second.variants[0].load_seconds is None  # never built
    (built,), (cached,) = first.variants[0].applied, second.variants[0].applied
    assert cached.name == built.name == "quantize" and cached.info["bits_map"] and cached.info == built.info
    assert second.variants[0].cost == first.variants[0].cost
