"""A Keras (legacy) Tokenizer as plain data: its vocabulary, read once from its pickle into JSON.

The pickle is never trusted: its sha256 is checked by the caller, it is read with a restricted
unpickler, and what is needed is kept in the cache as JSON, which later loads read instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

from harness._util.files import atomic_write_text, canonical_json
from harness._util.paths import cache_dir
from harness.tasks.scorers._safe_pickle import load_data_pickle

_TOKENIZER_CLASS = ("keras.src.legacy.preprocessing.text", "Tokenizer")


@dataclass(frozen=True)
class KerasVocabulary:
    """What Tokenizer.texts_to_sequences uses (word-level, no custom analyzer)."""

    word_index: Mapping[str, int]  # only the indices below num_words: the model sees no others
    num_words: int | None
    lower: bool
    filters: str
    split: str
    oov_token: str | None

    @cached_property
    def _translation(self) -> dict[int, str]:
        return str.maketrans({c: self.split for c in self.filters})

    def sequence(self, text: str) -> list[int]:
        """Tokenizer.texts_to_sequences([text])[0], as keras.src.legacy.preprocessing.text does it."""
        if self.lower:
            text = text.lower()
        words = [w for w in text.translate(self._translation).split(self.split) if w]
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        found = (self.word_index.get(w, oov) for w in words)
        return [i for i in found if i is not None]


def load_vocabulary(pickle_path: Path, pickle_sha256: str) -> KerasVocabulary:
    """The vocabulary of the tokenizer pickle whose (already checked) sha256 is given."""
    cached = cache_dir() / "scorers" / "keras-tokenizers" / f"{pickle_sha256}.json"
    if cached.is_file():
        return KerasVocabulary(**json.loads(cached.read_text(encoding="utf-8")))
    vocabulary = _from_pickle(pickle_path)
    atomic_write_text(cached, canonical_json(asdict(vocabulary)))
    return vocabulary


def _from_pickle(path: Path) -> KerasVocabulary:
    tokenizer = vars(load_data_pickle(path, stand_ins={_TOKENIZER_CLASS}))
    if tokenizer["char_level"] or tokenizer["analyzer"] is not None:
        raise ValueError(f"{path}: only word-level tokenizers without a custom analyzer are supported")
    num_words = tokenizer["num_words"]
    # Keras drops (or maps to the OOV token) every index >= num_words, so those words need no entry.
    word_index = {w: i for w, i in tokenizer["word_index"].items() if not num_words or i < num_words}
    return KerasVocabulary(
        word_index=word_index,
        num_words=num_words,
        lower=tokenizer["lower"],
        filters=tokenizer["filters"],
        split=tokenizer["split"],
        oov_token=tokenizer["oov_token"],
    )
