"""MMLU: the staged CSVs (question, choice0..3, answer) read into cais/mmlu's schema."""

from harness.tasks import data

N_CHOICES = 4


def to_hub_row(row: dict) -> dict:
    try:
        answer = int(row["answer"])
    except ValueError:
        raise data.MalformedRow(f"answer {row['answer']!r} is not an integer") from None
    if not 0 <= answer < N_CHOICES:
        raise data.MalformedRow(f"answer {answer} is out of range 0-{N_CHOICES - 1}")
    return {"question": row["question"], "choices": [row[f"choice{i}"] for i in range(N_CHOICES)], "answer": answer}


def load_dataset(**kwargs):
    return data.load_dataset(kwargs, to_hub_row)
