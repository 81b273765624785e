"""The fitting seam end to end, with meandiff (the cheapest fit) on the embedded default: fit on first
use and cache, find the cached fit again, `harness fit` to a file that gives the same identity,
refuse artifacts of another wrapper or model, refuse to evaluate on the data a fit read. And the
artifact cache on its own: keyed by the fit's code, an edited artifact found and fitted again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from harness._util.code import callable_digest
from harness._util.files import sha256_file
from harness.errors import HarnessError
from harness.models import resolve_model
from harness.models.loading import ensure_float_folder
from harness.spec._spec import VariantSpec
from harness.variant._variant import Variant
from harness.wrappers import WRAPPERS
from harness.wrappers import _concept_data as concept
from harness.wrappers._fitting import FitData, Fitted, cached_artifact, ensure_artifact, header, load_tensors, read_sidecar, sidecar_path
from tests.helpers import run_cli

BASE = "smollm2-135m-instruct"
FIT = "layer=2,n=8"  # 8 sentences per class through the model: seconds


def _variant(model: str) -> Variant:
    spec = VariantSpec.parse(model)
    return Variant(spec, resolve_model(spec.base))


def _no_more_fitting(monkeypatch) -> None:
    """From here on a fit fails the test: building the model a fit reads is refused (replacing the fit
    function itself would change the code that keys its artifact)."""

    def refuse(*args):
        raise AssertionError("fitted again")

    monkeypatch.setattr(Variant, "load", refuse)


def _manual_direction(layer: int, n: int) -> torch.Tensor:
    """The documented pooling, one unpadded sentence at a time: each sentence's mean token state at
    the layer's output, its first token (an attention sink) left out, averaged over sentences, toxic
    minus non-toxic."""
    loaded = _variant(BASE).load("cpu")
    means = []
    for label in ("toxic", "nontoxic"):
        per_sentence = []
        for text in concept.sentences(label, n):
            ids = loaded.tokenizer(text, return_tensors="pt").input_ids
            with torch.no_grad():
                states = loaded.model(ids, output_hidden_states=True).hidden_states[layer + 1]
            per_sentence.append(states[0, 1:].mean(0))
        means.append(torch.stack(per_sentence).mean(0))
    return means[0] - means[1]


@pytest.mark.slow  # fits and runs on the embedded default through the command line
def test_fit_on_first_use_then_cached_then_from_a_file(env, tmp_path, monkeypatch):
    first = _variant(f"{BASE}+meandiff:{FIT},c=1")
    fit_sha = first.intervention.wrappers[0].artifacts["fit"]  # the identity needs the fit: it runs here
    (cached,) = (Path(env["HARNESS_CACHE_DIR"]) / "artifacts").glob("meandiff-*.safetensors")
    assert fit_sha == sha256_file(cached)
    sidecar = read_sidecar(cached)
    assert sidecar["wrapper"] == "meandiff" and sidecar["params"] == {"layer": 2, "n": 8}
    assert sidecar["model_identity"] == _variant(BASE).identity
    assert sidecar["data"]["files"] == concept.fit_data().files
    # the pooling is the documented one (the fit pads a batch; the manual check does not)
    torch.testing.assert_close(load_tensors(cached)["direction"], _manual_direction(2, 8), atol=1e-4, rtol=1e-4)

    # `harness fit` writes the same artifact to a file of the user's; naming it gives the same identity
    out = tmp_path / "md.safetensors"
    done = run_cli(["fit", "meandiff", *FIT.split(","), "--model", BASE, "--out", str(out), "--device", "cpu"], env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.is_file() and (tmp_path / "md.safetensors.json").is_file()
    assert sha256_file(out) == fit_sha
    assert read_sidecar(out)["params"] == sidecar["params"]

    _no_more_fitting(monkeypatch)  # from here on a fit would fail the test
    again = _variant(f"{BASE}+meandiff:{FIT},c=1")
    assert again.identity == first.identity
    swept = _variant(f"{BASE}+meandiff:{FIT},c=3")  # c only applies: the same fit
    assert swept.intervention.wrappers[0].artifacts["fit"] == fit_sha and swept.identity != first.identity
    given = _variant(f"{BASE}+meandiff:{FIT},c=1,artifact={out}")
    assert given.identity == first.identity

    # refused, with one line each: another wrapper's artifact, and an artifact of another model
    for model, reason in (
        (f"{BASE}+eigenshift:artifact={out}", "was fitted for 'meandiff', not eigenshift"),
        (f"{BASE}+quantize:bits=8+meandiff:{FIT},c=1,artifact={out}", "was fitted on another model"),
    ):
        with pytest.raises(HarnessError, match=reason) as error:
            _ = _variant(model).identity
        assert "\n" not in str(error.value)


@pytest.mark.slow  # an evaluation on the embedded default through the command line
def test_a_fitted_variant_is_not_evaluated_on_the_data_it_was_fitted_on(env, tmp_path):
    ensure_float_folder(resolve_model(BASE))  # so that the run's stderr holds no conversion progress
    out = tmp_path / "results"
    done = run_cli(
        [
            "eval",
            "--model",
            f"{BASE}+meandiff:{FIT},c=1",
            "--tasks",
            "toxigen_asian",
            "--limit",
            "2",
            "--toxicity-samples",
            "1",
            "--output-dir",
            str(out),
        ],
        env,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "was fitted on toxicity/toxigen/prompts/" in message and "which task toxigen_asian evaluates" in message
    assert not out.exists() or not any(out.iterdir())


# --- the artifact cache on its own -----------------------------------------------------------------


def _fit_here(model, tokenizer, params):
    return Fitted({"direction": torch.arange(4096, dtype=torch.float32)}, FitData({"concept/a.txt": "ab" * 32}, "train split"))


def test_the_cache_key_holds_the_fit_code_and_the_libraries_and_no_path(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    meandiff = WRAPPERS.get("meandiff").fitter.fit
    ours = header("meandiff", {"layer": 2, "n": 8}, "model", meandiff)
    assert ours["code"] == callable_digest(meandiff)
    assert set(ours["libraries"]) >= {"torch", "transformers", "lm_eval"}
    path = cached_artifact(ours, {"concept/a.txt": "ab" * 32})
    assert path.parent == tmp_path / "artifacts" and path.name.startswith("meandiff-")
    assert str(tmp_path) not in json.dumps(ours)
    assert cached_artifact(header("meandiff", {"layer": 2, "n": 8}, "model", _fit_here), {"concept/a.txt": "ab" * 32}) != path
    assert cached_artifact(dict(ours, libraries={**ours["libraries"], "torch": "0.0"}), {"concept/a.txt": "ab" * 32}) != path


def _edit(path: Path) -> None:
    before = path.stat()
    with open(path, "r+b") as f:
        f.seek(before.st_size - 64)
        f.write(b"\x7f" * 8)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize("edited", ["tensors", "sidecar"])
def test_an_edited_cached_artifact_is_reported_and_fitted_again(monkeypatch, tmp_path, capsys, edited):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    fits = []

    def fit() -> Fitted:
        fits.append(1)
        return _fit_here(None, None, {})

    made = header("meandiff", {"layer": 2, "n": 8}, "model", _fit_here)
    path = cached_artifact(made, {"concept/a.txt": "ab" * 32})
    assert ensure_artifact(path, fit, made) is True
    assert ensure_artifact(path, fit, made) is False and len(fits) == 1
    right = sha256_file(path)
    if edited == "tensors":
        _edit(path)
    else:
        sidecar = read_sidecar(path)
        sidecar_path(path).write_text(json.dumps({**sidecar, "tensors_sha256": "0" * 64}))
    capsys.readouterr()
    assert ensure_artifact(path, fit, made) is True
    err = capsys.readouterr().err
    assert err == f"harness: fitted artifact {path.name}: its tensors do not match their sidecar's sha256; it is fitted again\n"
    assert len(fits) == 2 and sha256_file(path) == right == read_sidecar(path)["tensors_sha256"]
