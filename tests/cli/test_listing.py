import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.slow  # each test starts the command line in a new process


def test_tasks_lists_every_family_with_its_data(env):
    done = run_cli(["tasks"], env)
    assert done.returncode == 0, done.stderr
    rows = {
        line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[2:] if line.strip() and not line.startswith("data directory")
    }
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


def test_models_lists_the_catalog(env):
    done = run_cli(["models"], env)
    assert done.returncode == 0, done.stderr
    assert "smollm2-135m-instruct" in done.stdout and "PackagedGGUF" in done.stdout
    assert "gemma-3-270m" in done.stdout and "Gemma Terms of Use" in done.stdout
    assert "jigsaw-bilstm (default), profanity-check, detoxify-original" in done.stdout
