import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.slow  # each test starts the command line in a new process


def _rows(stdout: str) -> dict[str, list[str]]:
    """Name -> kind, from, family, data, present (the table's rows, its header and footer aside)."""
    lines = [line for line in stdout.splitlines()[2:] if line.strip() and not line.startswith("data directory")]
    return {line.split()[0]: line.split()[1:] for line in lines}


def test_tasks_lists_every_family_with_its_data(env):
    done = run_cli(["tasks"], env)
    assert done.returncode == 0, done.stderr
    everything = _rows(done.stdout)
    assert everything["hellaswag"][:3] == ["task", "lm-eval", "hellaswag"]  # lm-eval's own tasks too
    rows = {name: [row[0], *row[2:]] for name, row in everything.items() if row[1] == "harness"}
    tasks = {name: row for name, row in rows.items() if row[0] == "task"}
    families = {row[1] for row in tasks.values()}
    assert families == {"arithmetic", "truthfulqa", "mmlu", "multilingual", "toxicity", "perplexity", "vqa"}
    counts = {family: sum(row[1] == family for row in tasks.values()) for family in families}
    assert counts == {"arithmetic": 10, "truthfulqa": 3, "mmlu": 57, "multilingual": 22, "toxicity": 18, "perplexity": 1, "vqa": 13}
    # VQAv2 has no copy in the data directory: it names its hub dataset.
    assert tasks.pop("vqav2")[2:] == ["hub:lmms-lab/VQAv2", "hub"]
    assert all(row[2:] == ["data_dir", "yes"] for row in tasks.values())
    for group in (
        "easy_vqa",
        "easy_vqa_mc",
        "easy_vqa_noimage",
        "arithmetic",
        "truthfulqa",
        "mmlu",
        "mmlu_stem",
        "xcopa",
        "mgsm_direct",
        "multilingual",
        "realtoxicityprompts",
        "toxigen_gen",
    ):
        assert rows[group][0] == "group"


def test_tasks_without_data_dir_points_at_the_hub(env, tmp_path):
    done = run_cli(["tasks"], {**env, "HARNESS_DATA_DIR": ""})
    assert done.returncode == 0, done.stderr
    hubs = ("EleutherAI/arithmetic", "cais/mmlu", "truthfulqa/truthful_qa", "cambridgeltl/xcopa", "juletxara/mgsm")
    for hub in (*hubs, "AI-secure/DecodingTrust", "EleutherAI/wikitext_document_level"):
        assert f"hub:{hub}" in done.stdout
    assert "none (set --data-dir" in done.stdout


def test_tasks_lists_an_include_path_s_tasks_and_only_those_asked_for(env, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "mine.yaml").write_text("task: my_task\ndataset_path: org/my_dataset\noutput_type: loglikelihood\ntest_split: test\n")
    done = run_cli(["tasks", "--include-path", str(folder), "my_*", "hellaswag"], env)
    assert done.returncode == 0, done.stderr
    assert _rows(done.stdout) == {
        "hellaswag": ["task", "lm-eval", "hellaswag", "hub:Rowan/hellaswag", "no"],  # offline, and not in the data directory
        "my_task": ["task", str(folder), "mine", "hub:org/my_dataset", "no"],
    }


def test_models_lists_the_catalog(env):
    done = run_cli(["models"], env)
    assert done.returncode == 0, done.stderr
    assert "smollm2-135m-instruct" in done.stdout and "PackagedGGUF" in done.stdout
    assert "gemma-3-270m" in done.stdout and "Gemma Terms of Use" in done.stdout
    assert "jigsaw-bilstm (default), profanity-check, detoxify-original" in done.stdout
