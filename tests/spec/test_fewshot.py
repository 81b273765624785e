"""--num-fewshot against a task's pool of examples (harness.spec.check_fewshot, which the engine
calls once the tasks are loaded): the largest count lm-eval's sampler can draw passes, one more is
refused in one line."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.spec import check_fewshot
from harness.tasks import data
from harness.tasks.index import task_manager


@pytest.mark.parametrize(
    ("task", "largest", "error"),
    [
        # drawn from its own evaluation split: one more than asked, to leave the document out
        ("arithmetic_2da", 1999, "--num-fewshot 2000: task arithmetic_2da has 2000 examples to draw from, the document itself left out"),
        # drawn from its dev split, in order (lm-eval's first_n sampler)
        ("mmlu_anatomy", 5, "--num-fewshot 6: task mmlu_anatomy has 5 examples to draw from"),
    ],
)
def test_few_shot_examples_must_be_in_the_pool(env, task, largest, error):
    tasks = task_manager(data.data_dir()).load(task)["tasks"]
    check_fewshot(tasks, largest)
    check_fewshot(tasks, 0)
    with pytest.raises(HarnessError) as refused:
        check_fewshot(tasks, largest + 1)
    assert str(refused.value) == error
