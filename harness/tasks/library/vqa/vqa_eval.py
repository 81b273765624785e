"""How VQA answers are scored: the official VQA evaluation's answer normalisation and accuracy.

The rules are those of the VQA challenge's evaluation script (GT-Vision-Lab/VQA,
PythonEvaluationTools/vqaEvaluation/vqaEval.py), so a `vqav2` number here means what it means in
papers:

- a predicted answer has tabs and newlines made spaces, is stripped, then has its punctuation
  handled (`punctuation`) and its words normalised (`digits_and_articles`);
- a reference answer has only its punctuation handled, and only when the ten annotators did not
  all give the same answer (the annotations are already lower case);
- accuracy is min(#annotators who gave the answer / 3, 1), averaged over the ten leave-one-out
  subsets of nine annotators: 3 of 10 agreeing gives 0.9, not 1.

The quirks of the official script are kept on purpose, since they decide real scores: its period
rule `(?!<=\\d)(\\.)(?!\\d)` is a lookahead, not the lookbehind it looks like, so any period not
followed by a digit is dropped; `re.UNICODE` is passed where `re.sub` expects a count, so at most
32 periods go; the keys `Im`, `Ive`, `Id've` never match lowered words.

easy-VQA's answers are single words, so its exact match compares the normalised prediction with
the reference answer after the same normalisation (a reference is one word without punctuation,
which the rules leave as it is).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
    "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
    "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at",
    "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've",
    "someone'dve": "someone'd've", "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're", "whys": "why's",
    "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd",
    "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're", "youve": "you've",
}  # fmt: skip
_NUMBERS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_ARTICLES = frozenset({"a", "an", "the"})
_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
_OFFICIAL_PERIOD_COUNT = re.UNICODE  # passed as re.sub's count by the official script (32)
_AGREEING = 3


def punctuation(text: str) -> str:
    """A mark next to a space, or any mark in a text with a digit-comma-digit, is deleted; any
    other mark becomes a space. Then periods not followed by a digit go."""
    out = text
    has_number_comma = _DIGIT_COMMA_DIGIT.search(text) is not None
    for mark in _PUNCTUATION:
        deleted = mark + " " in text or " " + mark in text or has_number_comma
        out = out.replace(mark, "" if deleted else " ")
    return _PERIOD.sub("", out, count=_OFFICIAL_PERIOD_COUNT)


def digits_and_articles(text: str) -> str:
    """Lower case; number words 0-10 (and `none`) become digits; articles go; contractions
    written without their apostrophe get it back."""
    words = [_NUMBERS.get(word, word) for word in text.lower().split()]
    return " ".join(_CONTRACTIONS.get(word, word) for word in words if word not in _ARTICLES)


def normalize_answer(answer: str) -> str:
    """A predicted answer as the official evaluation compares it."""
    text = answer.replace("\n", " ").replace("\t", " ").strip()
    return digits_and_articles(punctuation(text))


def vqa_accuracy(prediction: str, references: Sequence[str]) -> float:
    """The VQA accuracy of `prediction` against the annotators' answers (VQAv2 has ten)."""
    predicted = normalize_answer(prediction)
    answers = list(references)
    if len(set(answers)) > 1:
        answers = [punctuation(a) for a in answers]
    scores = []
    for left_out in range(len(answers)):
        agreeing = sum(a == predicted for i, a in enumerate(answers) if i != left_out)
        scores.append(min(1.0, agreeing / _AGREEING))
    return sum(scores) / len(scores)


def process_vqav2(doc: dict, results: list[str]) -> dict[str, float]:
    return {"vqa_accuracy": vqa_accuracy(results[0], [a["answer"] for a in doc["answers"]])}


def process_exact_match(doc: dict, results: list[str]) -> dict[str, float]:
    """easy-VQA generation: 1 when the normalised answer is the reference word."""
    return {"exact_match": float(normalize_answer(results[0]) == normalize_answer(doc["answer"]))}
