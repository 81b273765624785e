"""Vision-language models as a model type: a tiny randomly initialised LLaVA (plumbing only) loads
as a base, its images reach the model and key the cache by their pixels, a language model refuses
images, and the scorer's shared passes give what separate passes give."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import IMAGE, picture, request

pytestmark = pytest.mark.slow  # a tiny LLaVA built with the embedded default's tokenizer


def harness_lm(model: str, tmp_path: Path):
    from harness.lm._harness_lm import HarnessLM
    from harness.lm._request_cache import RequestCache
    from harness.models import resolve_model
    from harness.spec._spec import VariantSpec
    from harness.variant._variant import Variant

    spec = VariantSpec.parse(model)
    cache = RequestCache(tmp_path / "requests", "test", "context")
    return HarnessLM(variant=Variant(spec, resolve_model(spec.base)), cache=cache, task_hashes={"t": "config"}, device="cpu")


def test_images_reach_the_model_and_key_the_cache_by_pixels(tiny_vlm, tmp_path):
    lm = harness_lm(str(tiny_vlm), tmp_path)
    assert lm.MULTIMODAL
    context = f"{IMAGE}\nQuestion: what shape is it?\nAnswer:"
    red, blue = picture((255, 0, 0)), picture((0, 0, 255))
    scored = lm.loglikelihood(
        [
            request("loglikelihood", context, " circle", {"visual": [red]}),
            request("loglikelihood", context, " circle", {"visual": [blue]}),
            request("loglikelihood", context, " a red circle", {"visual": [red]}),
            request("loglikelihood", context, " circle"),
        ]
    )
    assert scored[0][0] != scored[1][0]  # another image, another log-likelihood
    assert scored[0][0] != scored[3][0]  # the image counts, against none
    again = lm.loglikelihood([request("loglikelihood", context, " circle", {"visual": [picture((255, 0, 0))]})])
    assert again == scored[:1] and lm.task_cached["t"] == 1  # the same pixels in another object: a cache hit
    (text,) = lm.generate_until(
        [request("generate_until", context, {"until": ["\n"], "max_gen_toks": 4, "do_sample": False}, {"visual": [red]})]
    )
    assert isinstance(text, str)


def test_a_language_model_refuses_images_before_it_loads(embedded_default, tmp_path):
    from harness.errors import HarnessError

    lm = harness_lm("smollm2-135m-instruct", tmp_path)
    with pytest.raises(HarnessError, match="task t shows images: smollm2-135m-instruct is not a vision-language model"):
        lm.loglikelihood([request("loglikelihood", f"{IMAGE}\nWhat?\nAnswer:", " red", {"visual": [picture((255, 0, 0))]})])
    assert lm.loaded is None


def test_single_and_multi_token_continuations_score_as_separate_passes(tiny_vlm):
    """Sharing one pass among single-token continuations gives what one pass each gives."""
    from harness.lm._vlm_scorer import VLMScorer
    from harness.models import load_model, resolve_model

    loaded = load_model(resolve_model(str(tiny_vlm)), "cpu")
    scorer = VLMScorer(loaded.model, batch_size=4, device="cpu")
    context, red = f"{IMAGE}\nQuestion: which?\nAnswer:", picture((255, 0, 0))
    together = scorer.loglikelihood([request("loglikelihood", context, f" {w}", {"visual": [red]}) for w in ("red", "blue", "teal")])
    alone = [scorer.loglikelihood([request("loglikelihood", context, f" {w}", {"visual": [red]})])[0] for w in ("red", "blue", "teal")]
    assert [v for v, _ in together] == pytest.approx([v for v, _ in alone], abs=1e-5)
    assert [g for _, g in together] == [g for _, g in alone]
