"""Toxicity scorers: Keras parity, validity against labels and Perspective, safe loading, evaluate."""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

from harness.errors import HarnessError
from harness.tasks.scorers import (
    DEFAULT_SCORER,
    SCORERS,
    _bilstm,
    _keras_tokenizer,
    _profanity,
    default_scorer_name,
    load_scorer,
)
from harness.tasks.scorers._package_files import PinnedPackage
from harness.tasks.scorers._safe_pickle import AttributeHolder, load_data_pickle
from harness.tasks.scorers.validity import (
    agreement,
    auroc,
    figure,
    jigsaw_sample,
    main,
    rtp_prompts,
    spearman,
)
from tests.helpers import REPO, read_cases

OFFLINE = [_bilstm.NAME, _profanity.NAME]
# The package's own Keras model's "toxic" output on texts that exercise the tokenizer and the
# padding: punctuation only, Unicode, a toxic word cut off the front of a long text (or kept at its end).
KERAS_REFERENCE = read_cases("scorer_keras_reference.json")["cases"]


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_jigsaw_bilstm_matches_keras(env):
    scores = load_scorer("jigsaw-bilstm").score([case["text"] for case in KERAS_REFERENCE])
    assert scores == pytest.approx([case["keras_toxic"] for case in KERAS_REFERENCE], abs=1e-6)
    # The pair measured when the scorer was chosen (shared/MODELS.md).
    assert scores[:2] == pytest.approx([0.995, 0.042], abs=5e-4)


def test_profanity_check_pair(env):
    idiot, nice_day = load_scorer("profanity-check").score(["you are an idiot", "have a nice day"])
    assert idiot > 0.999 and nice_day == pytest.approx(0.058, abs=1e-3)


# Measured 2026-11-28 (docs/scorers.md); thresholds a little below.
@pytest.mark.parametrize(
    ("name", "min_auroc", "min_spearman", "min_agreement"),
    [("jigsaw-bilstm", 0.95, 0.81, 0.87), ("profanity-check", 0.96, 0.79, 0.89)],
)
@pytest.mark.slow
def test_validity(env, data_dir, name, min_auroc, min_spearman, min_agreement):
    scorer = load_scorer(name)
    jigsaw, rtp = jigsaw_sample(data_dir), rtp_prompts(data_dir)
    assert (len(jigsaw.texts), sum(jigsaw.labels), len(rtp.texts)) == (101, 13, 2396)
    assert figure(auroc, scorer, jigsaw, resamples=10).value >= min_auroc
    assert figure(spearman, scorer, rtp, resamples=10).value >= min_spearman
    assert figure(agreement, scorer, rtp, resamples=10).value >= min_agreement


@pytest.mark.parametrize("name", OFFLINE)
def test_any_text_gets_a_probability(env, name):
    texts = ["", "   ", "x" * 10_000, "word " * 500, "“curly” don’t – ünïcode 漢字"]
    scores = load_scorer(name).score(texts)
    assert len(scores) == len(texts) and all(math.isfinite(s) and 0 <= s <= 1 for s in scores)
    assert load_scorer(name).score([]) == []


@pytest.mark.slow
def test_batches_do_not_change_scores(env, data_dir):
    texts = rtp_prompts(data_dir).texts[:300]  # more than one of jigsaw-bilstm's batches of 256
    scorer = load_scorer("jigsaw-bilstm")
    batched = scorer.score(texts)
    for i in (0, 255, 256, 299):
        assert scorer.score([texts[i]]) == pytest.approx([batched[i]], abs=1e-6)


def test_default_and_memo(env):
    assert DEFAULT_SCORER in OFFLINE
    assert load_scorer() is load_scorer(default_scorer_name()) is load_scorer(None)


def test_unknown_scorer_gets_suggestions():
    with pytest.raises(HarnessError) as error:
        load_scorer("jigsaw-bilstn")
    assert one_line(error) == "unknown toxicity scorer 'jigsaw-bilstn' (did you mean jigsaw-bilstm?)"
    assert set(SCORERS.names()) == {*OFFLINE, "detoxify-original", "detoxify-unbiased", "detoxify-multilingual"}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("module", [_bilstm, _profanity], ids=OFFLINE)
def test_identity_is_the_files_loaded(env, module):
    name, package = module.NAME, module.PACKAGE
    paths = package.locate(name)
    lines = "".join(f"{_sha256(paths[f])}  {f}\n" for f in sorted(paths))
    identity = load_scorer(name).identity
    assert identity.name == name
    assert identity.version == package.requirement
    assert identity.weights_sha256 == hashlib.sha256(lines.encode()).hexdigest()


def test_weight_file_checks_are_one_line_naming_the_path(env):
    real = _bilstm.PACKAGE
    name = "toxic_classifier/model/model.weights.h5"
    tampered = PinnedPackage(real.distribution, real.version, {name: "0" * 64})
    with pytest.raises(HarnessError) as error:
        tampered.locate("jigsaw-bilstm")
    path = str(real.locate("jigsaw-bilstm")[name])
    assert f"{path} has sha256 {real.files[name]}, not the pinned {'0' * 64}" in one_line(error)
    absent = PinnedPackage("no-such-distribution", "1.0", {"pkg/weights.bin": "0" * 64})
    with pytest.raises(HarnessError) as error:
        absent.locate("some-scorer")
    assert "pkg/weights.bin of no-such-distribution==1.0; it is not installed in " in one_line(error)


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pickle"
    evil.write_bytes(pickle.dumps({"word_index": Exploit()}))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|os|nt)\.system"):
        load_data_pickle(evil, stand_ins={("keras.src.legacy.preprocessing.text", "Tokenizer")})
    assert not marker.exists()
    # The stand-in class itself cannot smuggle code in either: it gets attributes, nothing runs.
    evil.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(pickle.UnpicklingError):
        load_data_pickle(evil, stand_ins={(__name__, "Exploit")})
    assert not marker.exists()


class Holder:
    def __init__(self):
        self.word_index = {"a": 1}


def test_restricted_unpickler_reads_stand_ins(tmp_path):
    path = tmp_path / "data.pickle"
    path.write_bytes(pickle.dumps(Holder()))
    loaded = load_data_pickle(path, stand_ins={(__name__, "Holder")})
    assert type(loaded) is AttributeHolder and loaded.word_index == {"a": 1}


def test_tokenizer_pickle_is_read_once_into_json(env, monkeypatch):
    paths = _bilstm.PACKAGE.locate(_bilstm.NAME)
    pickle_path = paths["toxic_classifier/model/tokenizer.pickle"]
    sha = _bilstm.PACKAGE.files["toxic_classifier/model/tokenizer.pickle"]
    first = _keras_tokenizer.load_vocabulary(pickle_path, sha)
    cached = Path(env["HARNESS_CACHE_DIR"]) / "scorers" / "keras-tokenizers" / f"{sha}.json"
    stored = json.loads(cached.read_text())
    assert (stored["num_words"], stored["lower"], stored["oov_token"]) == (20000, True, None)
    assert len(stored["word_index"]) == 19999  # indices 1..19999: Keras drops the rest

    def no_unpickling(*args, **kwargs):
        raise AssertionError("the pickle was read again")

    monkeypatch.setattr(_keras_tokenizer, "load_data_pickle", no_unpickling)
    again = _keras_tokenizer.load_vocabulary(pickle_path, sha)
    assert again == first
    # Keras' text_to_word_sequence: lower-case, filters become spaces, words past num_words vanish.
    assert again.sequence("You are an IDIOT!!") == again.sequence("you are an idiot") != []
    assert again.sequence("") == []
    assert all(i < 20000 for i in again.sequence("antidisestablishmentarianism the"))


# detoxify: not installed on the development machines and its checkpoints are not downloadable
# here. A stand-in package with detoxify 0.5.4's file names and model-building code, a tiny BERT
# checkpoint and a hand-made hub cache exercise every path of the loader.
_STAND_IN = """
import transformers
MODEL_URLS = {
    "original": "https://github.com/unitaryai/detoxify/releases/download/v0.1-alpha/toxic_original-c1212f89.ckpt",
    "unbiased": "https://github.com/unitaryai/detoxify/releases/download/v0.3-alpha/toxic_debiased-c7548aa0.ckpt",
    "multilingual": "https://github.com/unitaryai/detoxify/releases/download/v0.4-alpha/multilingual_debiased-0b549669.ckpt",
}

def get_model_and_tokenizer(
    model_type, model_name, tokenizer_name, num_classes, state_dict, huggingface_config_path=None
):
    model_class = getattr(transformers, model_name)
    config = model_class.config_class.from_pretrained(model_type, num_labels=num_classes)
    model = model_class.from_pretrained(
        pretrained_model_name_or_path=None,
        config=huggingface_config_path or config,
        state_dict=state_dict,
        local_files_only=huggingface_config_path is not None,
    )
    tokenizer = getattr(transformers, tokenizer_name).from_pretrained(
        huggingface_config_path or model_type, local_files_only=huggingface_config_path is not None
    )
    return model, tokenizer
"""
_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "you", "are", "an", "idiot", "have", "a", "nice", "day"]


@pytest.fixture
def detoxify_stand_in(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "detoxify").mkdir(parents=True)
    (site / "detoxify" / "__init__.py").write_text("")
    (site / "detoxify" / "detoxify.py").write_text(textwrap.dedent(_STAND_IN))
    (site / "detoxify-0.5.4.dist-info").mkdir()
    metadata = "Metadata-Version: 2.1\nName: detoxify\nVersion: 0.5.4\n"
    (site / "detoxify-0.5.4.dist-info" / "METADATA").write_text(metadata)
    monkeypatch.syspath_prepend(str(site))
    for module in ("detoxify", "detoxify.detoxify"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    yield
    for module in ("detoxify", "detoxify.detoxify"):
        sys.modules.pop(module, None)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    return hub


def _tiny_bert() -> BertConfig:
    return BertConfig(vocab_size=len(_WORDS), hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)


def _cache_bert_base(hub: Path) -> Path:
    """bert-base-uncased in the hub cache's layout, shrunk: a config, a vocabulary, a tokenizer."""
    repo, revision = hub / "models--bert-base-uncased", "0" * 40
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    (snapshot / "vocab.txt").write_text("\n".join(_WORDS) + "\n")
    BertTokenizer(vocab_file=str(snapshot / "vocab.txt")).save_pretrained(snapshot)
    _tiny_bert().save_pretrained(snapshot)
    return snapshot


def _tiny_checkpoint(path: Path) -> BertForSequenceClassification:
    """A detoxify-style checkpoint of a tiny BERT whose "toxic" class is the second of three."""
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**{**_tiny_bert().to_dict(), "num_labels": 3}))
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([-2.0, 2.0, 0.0]))
    arch = {
        "model_type": "bert-base-uncased",
        "model_name": "BertForSequenceClassification",
        "tokenizer_name": "BertTokenizer",
        "num_classes": 3,
    }
    config = {"arch": {"args": arch}, "dataset": {"args": {"classes": ["severe_toxic", "toxic", "insult"]}}}
    torch.save({"config": config, "state_dict": model.state_dict()}, path)
    return model.eval()


def test_detoxify_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "detoxify.detoxify", None)
    with pytest.raises(HarnessError) as error:
        SCORERS.get("detoxify-original")()
    message = one_line(error)
    assert "needs the detoxify package" in message
    assert str(Path(torch.hub.get_dir()) / "checkpoints") in message


def test_detoxify_checkpoint_not_found(env, detoxify_stand_in, monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_DETOXIFY_CHECKPOINT", str(tmp_path))
    with pytest.raises(HarnessError) as error:
        SCORERS.get("detoxify-unbiased")()
    assert f"it is not at {tmp_path / 'toxic_debiased-c7548aa0.ckpt'}" in one_line(error)
    monkeypatch.delenv("HARNESS_DETOXIFY_CHECKPOINT")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-hub"))
    with pytest.raises(HarnessError) as error:
        SCORERS.get("detoxify-original")()
    expected = tmp_path / "torch-hub" / "checkpoints" / "toxic_original-c1212f89.ckpt"
    assert f"it is not at {expected}" in one_line(error)


def test_detoxify_checkpoint_checks(env, detoxify_stand_in, hub_cache, monkeypatch, tmp_path):
    _cache_bert_base(hub_cache)
    misnamed = tmp_path / "toxic_original-c1212f89.ckpt"  # a name that promises another sha256
    _tiny_checkpoint(misnamed)
    monkeypatch.setenv("HARNESS_DETOXIFY_CHECKPOINT", str(tmp_path))
    with pytest.raises(HarnessError, match="which its name does not promise"):
        SCORERS.get("detoxify-original")()

    pickled_code = tmp_path / "code.ckpt"
    torch.save({"config": Holder()}, pickled_code)
    monkeypatch.setenv("HARNESS_DETOXIFY_CHECKPOINT", str(pickled_code))
    with pytest.raises(HarnessError) as error:
        SCORERS.get("detoxify-original")()
    assert f"{pickled_code} cannot be read as a weights-only checkpoint (UnpicklingError)" in one_line(error)


def test_detoxify_needs_the_cached_base_model(env, detoxify_stand_in, hub_cache, monkeypatch, tmp_path):
    checkpoint = tmp_path / "mine.ckpt"
    _tiny_checkpoint(checkpoint)
    monkeypatch.setenv("HARNESS_DETOXIFY_CHECKPOINT", str(checkpoint))
    with pytest.raises(HarnessError) as error:
        SCORERS.get("detoxify-original")()
    assert f"they are not in {hub_cache / 'models--bert-base-uncased'}" in one_line(error)


def test_detoxify_scores_offline(env, detoxify_stand_in, hub_cache, monkeypatch, tmp_path):
    snapshot = _cache_bert_base(hub_cache)
    checkpoint = tmp_path / "mine.ckpt"  # any name: only torch hub's names promise a sha256
    model = _tiny_checkpoint(checkpoint)
    monkeypatch.setenv("HARNESS_DETOXIFY_CHECKPOINT", str(checkpoint))
    scorer = SCORERS.get("detoxify-original")()
    assert (scorer.identity.name, scorer.identity.version) == ("detoxify-original", "detoxify==0.5.4")
    assert scorer.identity.weights_sha256 == _sha256(checkpoint)
    texts = ["you are an idiot", "have a nice day", ""]
    inputs = BertTokenizer.from_pretrained(snapshot)(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = torch.sigmoid(model(**inputs).logits)[:, 1].tolist()
    assert scorer.score(texts) == pytest.approx(expected, abs=1e-6)
    assert all(s > 0.7 for s in expected)  # the "toxic" column, not the first one


def test_detoxify_is_the_default_where_its_weights_are(env, detoxify_stand_in, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-hub"))
    monkeypatch.delenv("HARNESS_DETOXIFY_CHECKPOINT", raising=False)
    assert default_scorer_name() == DEFAULT_SCORER
    checkpoint = tmp_path / "mine.ckpt"
    _tiny_checkpoint(checkpoint)
    monkeypatch.setenv("HARNESS_DETOXIFY_CHECKPOINT", str(checkpoint))
    assert default_scorer_name() == "detoxify-original"


@pytest.mark.slow
def test_validity_cli(env, capsys):
    assert main(["--scorer", "profanity-check"]) == 0
    out = capsys.readouterr().out
    assert "profanity-check" in out and "alt-profanity-check==1.9.1" in out and "RTP Spearman (2,396)" in out
    assert main(["--scorer", "profanity-chek"]) == 2
    err = capsys.readouterr().err
    assert err == "harness: unknown toxicity scorer 'profanity-chek' (did you mean profanity-check?)\n"


_EVALUATE = """
import json, sys, evaluate
module = evaluate.load(sys.argv[1], *sys.argv[2:])
texts = ["you are an idiot", "have a nice day", ""]
print(json.dumps({
    "identity": module.scorer.identity.name,
    "all": module.compute(predictions=texts)["toxicity"],
    "maximum": module.compute(predictions=texts, aggregation="maximum")["max_toxicity"],
    "ratio": module.compute(predictions=texts, aggregation="ratio", threshold=0.05)["toxicity_ratio"],
}))
"""


@pytest.mark.parametrize("config", [None, "profanity-check"])
@pytest.mark.slow
def test_evaluate_module_offline(env, tmp_path, config):
    offline = {**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    module = REPO / "evaluate_measurements" / "toxicity"
    args = [sys.executable, "-c", _EVALUATE, str(module), *([config] if config else [])]
    done = subprocess.run(args, env=offline, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    name = config or DEFAULT_SCORER
    scores = load_scorer(name).score(["you are an idiot", "have a nice day", ""])
    assert got["identity"] == name
    assert got["all"] == pytest.approx(scores, abs=1e-6)
    assert got["maximum"] == pytest.approx(max(scores), abs=1e-6)
    assert got["ratio"] == pytest.approx(float(np.mean([s >= 0.05 for s in scores])))
