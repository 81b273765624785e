"""XCOPA and MGSM: lm-eval's prompt functions, imported; the staged files read into the hub's schema."""

from lm_eval.tasks.xcopa.utils import (  # noqa: F401
    doc_to_choice,
    doc_to_text_et,
    doc_to_text_ht,
    doc_to_text_id,
    doc_to_text_it,
    doc_to_text_qu,
    doc_to_text_sw,
    doc_to_text_ta,
    doc_to_text_th,
    doc_to_text_tr,
    doc_to_text_vi,
    doc_to_text_zh,
)

from harness.tasks import data


def to_xcopa_row(row: dict) -> dict:
    if row.get("label") not in (0, 1):
        raise data.MalformedRow(f"label {row.get('label')!r} is not 0 or 1")
    if row.get("question") not in ("cause", "effect"):
        raise data.MalformedRow(f"question {row.get('question')!r} is not cause or effect")
    return row


def to_mgsm_row(row: dict) -> dict:
    """question<TAB>answer -> juletxara/mgsm's test schema; thousands separators leave the answer."""
    try:
        number = int(row["answer"].replace(",", ""))
    except ValueError:
        raise data.MalformedRow(f"answer {row['answer']!r} is not an integer") from None
    return {"question": row["question"], "answer": None, "answer_number": number, "equation_solution": None}


def load_xcopa(**kwargs):
    return data.load_dataset(kwargs, to_xcopa_row)


def load_mgsm(**kwargs):
    return data.load_dataset(kwargs, to_mgsm_row)
