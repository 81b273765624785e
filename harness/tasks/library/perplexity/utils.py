"""WikiText-2 perplexity, the fluency cost that toxicity interventions are reported with.

Documents are whole articles, as in lm-eval's `wikitext` task (and its document-level dataset):
an article starts at a top-level ` = Title = ` line. lm-eval's detokenizer and word and byte
counts are used unchanged; token perplexity is added where the model reports how many tokens it
scored (`--model harness` does; see harness.lm._harness_lm.RollingLoglikelihood).
"""

from __future__ import annotations

import re

from lm_eval.tasks.wikitext.preprocess_wikitext import process_results as _lm_eval_process_results
from lm_eval.tasks.wikitext.preprocess_wikitext import wikitext_detokenizer  # noqa: F401

from harness.tasks import data

_ARTICLE_TITLE = re.compile(r"^ = [^=].* = $")


def split_articles(lines: list[str]) -> list[str]:
    """The articles of a WikiText file, each starting with its title line."""
    articles: list[list[str]] = []
    for line in lines:
        if _ARTICLE_TITLE.match(line) or not articles:
            articles.append([])
        articles[-1].append(line)
    pages = ["\n".join(article).strip("\n") for article in articles]
    return [page for page in pages if page.strip()]


def load_wikitext(**kwargs):
    import datasets

    directory = data.data_dir(kwargs.get("data_dir"))
    splits = {}
    for resolved in data.resolve_task_files(kwargs, directory):
        if resolved.path.suffix == ".parquet":  # the hub's document-level copy: already one page per row
            splits[resolved.file.split] = datasets.Dataset.from_parquet(str(resolved.path))
            continue
        lines = resolved.path.read_text(encoding="utf-8").splitlines()
        splits[resolved.file.split] = datasets.Dataset.from_list([{"page": p} for p in split_articles(lines)])
    return datasets.DatasetDict(splits)


def process_results(doc: dict, results: list) -> dict:
    scores = _lm_eval_process_results(doc, results)
    tokens = getattr(results[0], "tokens", None)
    if tokens is not None:
        scores["token_perplexity"] = (results[0], tokens)
    return scores
