from conftest import run_cli


def test_tasks_lists_every_arithmetic_task_with_its_data(env):
    done = run_cli(["tasks"], env)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.startswith("arithmetic")}
    assert len(lines) == 11
    assert lines["arithmetic"][1:3] == ["group", "arithmetic"]
    assert lines["arithmetic_2da"][1:] == ["task", "arithmetic", "data_dir", "yes"]


def test_tasks_without_data_dir_points_at_the_hub(env, tmp_path):
    done = run_cli(["tasks"], {**env, "HARNESS_DATA_DIR": ""})
    assert done.returncode == 0, done.stderr
    assert "hub:EleutherAI/arithmetic" in done.stdout and "none (set --data-dir" in done.stdout


def test_models_lists_the_catalog(env):
    done = run_cli(["models"], env)
    assert done.returncode == 0, done.stderr
    assert "smollm2-135m-instruct" in done.stdout and "PackagedGGUF" in done.stdout
