"""`--executor ray` on a local Ray cluster of 2 workers: the record equals the local run's; an
interrupted driver or a killed worker changes nothing but the work redone.

Cheap by design (2 cores): one cluster for the module, few documents, the local reference run once.
Batch size 2 makes chunks of 32 requests (HarnessLM computes a task chunk by chunk, each in its own
batches): arithmetic_2da's 40 requests are two chunks, starting in the first and the fifth shard of 8
documents; xcopa_it's 20 (two choices of varied length per document) one chunk over two shards. Some
shards are empty, and none may split a chunk, or its log-likelihoods would move by ~1e-5.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import ray

from harness.engine._ray_executor import RayExecutor, RayOptions
from harness.engine._run import run
from harness.records._schema import read_record
from harness.spec._spec import build_spec
from harness.tasks.index import known_names, task_manager
from tests.helpers import REPO, run_cli

pytestmark = pytest.mark.slow  # a local Ray cluster and runs of the embedded default

MODELS = ["smollm2-135m-instruct+quantize:bits=8"]  # and its base: two variants
TASKS = "arithmetic_2da,xcopa_it"
LIMIT, BATCH, SHARD = "40,xcopa_it=10", 2, 8
REQUESTS = {"arithmetic_2da": 40, "xcopa_it": 20}  # one per answer choice


@pytest.fixture(scope="module")
def models(tmp_path_factory, data_dir) -> Path:
    """The converted embedded default: the user's when converted there, else converted once here."""
    from harness._util.paths import cache_dir
    from harness.models import resolve_model
    from harness.models.loading import ensure_float_folder

    resolved = resolve_model("smollm2-135m-instruct")
    user_models = cache_dir() / "models"
    if (user_models / f"gguf-{resolved.weights_sha256[:16]}" / "config.json").is_file():
        return user_models
    folder = tmp_path_factory.mktemp("ray-models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARNESS_CACHE_DIR", str(folder.parent / "ray-models-cache"))
        (folder.parent / "ray-models-cache").mkdir(exist_ok=True)
        (folder.parent / "ray-models-cache" / "models").symlink_to(folder, target_is_directory=True)
        ensure_float_folder(resolved)
    return folder


def _fresh_cache(root: Path, models: Path) -> Path:
    root.mkdir(parents=True)
    (root / "models").symlink_to(models, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, models, data_dir):
    """The same spec run locally, through the CLI in a fresh process that reports whether it imported Ray."""
    root = tmp_path_factory.mktemp("local")
    cache = _fresh_cache(root / "cache", models)
    env = {**os.environ, "HARNESS_CACHE_DIR": str(cache), "HARNESS_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    args = [
        "eval",
        "--model",
        MODELS[0],
        "--tasks",
        TASKS,
        "--limit",
        LIMIT,
        "--batch-size",
        str(BATCH),
        "--output-dir",
        str(root / "out"),
        "--output",
        "json",
    ]
    code = (
        "import sys; from harness.cli._main import main; code = main(sys.argv[1:]);"
        " print('RAY_IMPORTED', 'ray' in sys.modules); sys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    payload, imported = done.stdout.rsplit("RAY_IMPORTED", 1)
    return Path(json.loads(payload)["record"]).parent, imported.strip()


@pytest.fixture(scope="module")
def cluster() -> str:
    """The module's local cluster of 2 CPUs (2 workers); its address, for a CLI run to join."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def ray_env(monkeypatch, tmp_path, models, data_dir, cluster) -> Path:
    cache = _fresh_cache(tmp_path / "cache", models)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(cache))
    monkeypatch.setenv("HARNESS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def _spec(out: Path):
    given = {"model": MODELS, "tasks": TASKS, "limit": LIMIT, "batch_size": str(BATCH), "output_dir": str(out)}
    return build_spec(given, known_names(task_manager()))


def _content(run_dir: Path):
    """Every metric and every sample line of a run, keyed by variant and task."""
    record = read_record(run_dir)
    metrics = {(r.variant, r.task): r.metrics for r in record.results}
    samples = {(r.variant, r.task): (run_dir / r.samples_file).read_text() for r in record.results if r.samples_file}
    return record, metrics, samples


def _assert_same_as_local(ray_dir: Path, local_dir: Path):
    record, metrics, samples = _content(ray_dir)
    local, local_metrics, local_samples = _content(local_dir)
    assert metrics == local_metrics
    assert samples == local_samples and len(samples) == 4
    assert record.lm_eval == local.lm_eval
    assert [v.identity for v in record.variants] == [v.identity for v in local.variants]
    assert [v.cost for v in record.variants] == [v.cost for v in local.variants]
    # The driver's own evaluation found every request in the cache: the workers made exactly its requests.
    assert all(r.requests_computed == 0 and r.requests_cached == REQUESTS[r.task] for r in record.results if r.kind == "task")
    return record


def test_cli_ray_run_equals_the_local_run_and_the_local_path_never_imports_ray(tmp_path, models, data_dir, local_run, cluster):
    local_dir, ray_imported = local_run
    assert ray_imported == "False"
    cache = _fresh_cache(tmp_path / "cache", models)
    env = {**os.environ, "HARNESS_CACHE_DIR": str(cache), "HARNESS_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    # The CLI joins the module's cluster (--address) as a second driver.
    args = [
        "eval",
        "--model",
        MODELS[0],
        "--tasks",
        TASKS,
        "--limit",
        LIMIT,
        "--batch-size",
        str(BATCH),
        "--executor",
        "ray",
        "--address",
        cluster,
        "--shard-size",
        str(SHARD),
    ]
    done = run_cli([*args, "--output-dir", str(tmp_path / "out"), "--output", "json"], env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    ray_dir = Path(json.loads(done.stdout)["record"]).parent
    record = _assert_same_as_local(ray_dir, local_dir)
    # Progress per variant on the driver.
    for model in ("smollm2-135m-instruct", MODELS[0]):
        assert f"[ray] {model}: 7/7 shards" in done.stderr
    execution = record.execution
    assert execution.executor == "ray" and execution.address == cluster and execution.shard_size == SHARD
    assert execution.workers == len({s.worker for s in execution.shards}) == 2
    shards = execution.shards
    assert [(s.task, s.first, s.end) for s in shards[:7]] == [
        *(("arithmetic_2da", first, first + 8) for first in range(0, 40, 8)),
        ("xcopa_it", 0, 8),
        ("xcopa_it", 8, 10),
    ]
    assert len(shards) == 14 and all(s.status == "computed" and s.seconds > 0 for s in shards)
    # Each chunk computed once, by the shard where it starts: arithmetic_2da's second chunk starts at document 32.
    computed = {(s.variant, s.task, s.first): s.requests_computed for s in shards}
    for variant in {s.variant for s in shards}:
        assert [computed[variant, "arithmetic_2da", first] for first in range(0, 40, 8)] == [32, 0, 0, 0, 8]
        assert [computed[variant, "xcopa_it", first] for first in (0, 8)] == [20, 0]
    # A variant is built at most once per worker, only by the first shard that needs it there.
    built = [(s.worker, s.variant) for s in execution.shards if s.load_seconds is not None]
    assert execution.models_built == len(built) == len(set(built)) >= 2
    assert all(s.worker_peak_rss_bytes > 0 for s in execution.shards) and execution.driver_peak_rss_bytes > 0
    assert json.loads((ray_dir / "record.json").read_text())["schema_version"] == "1.5"


def test_an_interrupted_driver_resumes_and_a_killed_worker_is_replaced_with_the_same_record(ray_env, local_run):
    spec = _spec(ray_env / "out")
    finished: list[str] = []

    def interrupt_after_three(outcome):
        finished.append(outcome.worker)
        if len(finished) == 3:
            raise KeyboardInterrupt  # the driver dies with three shards' results stored

    one_worker = RayOptions(shard_size=SHARD, cpus_per_worker=2)  # one process to start, not two: cheaper here
    with pytest.raises(KeyboardInterrupt):
        run(spec, ["test"], RayExecutor(one_worker, on_shard=interrupt_after_three))
    assert not list((ray_env / "out").glob("2*"))  # no run folder from the interrupted run

    killed: list[str] = []

    def kill_once(outcome):
        # The driver has already sent this worker its next shard: it dies in the middle of it.
        if not killed:
            killed.append(outcome.worker)
            os.kill(int(outcome.worker.rsplit(":", 1)[1]), signal.SIGKILL)

    executor = RayExecutor(RayOptions(shard_size=SHARD, max_models_per_worker=1), on_shard=kill_once)
    record, ray_dir = run(spec, ["test"], executor)
    _assert_same_as_local(ray_dir, local_run[0])
    shards = record.execution.shards
    statuses = [s.status for s in shards]
    # Only the shards without stored results were computed again.
    assert statuses.count("resumed") == 3 and statuses.count("computed") == len(shards) - 3
    # Ray restarted the killed worker, which finished its shard: three processes ran the nine shards.
    computed_by = {s.worker for s in shards if s.status == "computed"}
    assert killed and killed[0] in computed_by and len(computed_by) == 3
