"""Log-likelihood requests answered by summing a decoding wrapper's raw scores.

DoLa's and ICD's TruthfulQA multiple-choice scripts score a choice by the sum of the raw
log-probability differences over its tokens (`post_softmax=False` in voidism/DoLa tfqa_mc_eval.py
and HillZhang1999/ICD truthfulqa_eval.py). lm-eval log-softmaxes whatever the model returns, and
no logits make it return a difference whose exponentials do not sum to 1, so a wrapper that asks
for the authors' scoring says so in its result (`Applied.scoring == "raw_sum"`) and
harness.lm._harness_lm answers the variant's log-likelihood requests with this HFLM. Tokenization
stays lm-eval's (TemplateLM.loglikelihood); only the scoring of the encoded requests is replaced.
Perplexity (`loglikelihood_rolling`) stays lm-eval's normalised scoring: a sum of raw differences
is no likelihood of a text.
"""

from __future__ import annotations

from typing import Any

from lm_eval.models.huggingface import HFLM


class SummedScoresHFLM(HFLM):
    """HFLM whose log-likelihood of a continuation is the sum of the model's returned scores at its
    tokens, one request at a time; `logits_to_keep` limits the scores (and a decoding wrapper's
    extra head evaluations) to the continuation's positions."""

    def _loglikelihood_tokens(
        self, requests: list[tuple[Any, list[int], list[int]]], disable_tqdm: bool = False, override_bs: Any = None
    ) -> list[tuple[float, bool]]:
        import torch

        results = []
        for _, context, continuation in requests:
            ids = (context + continuation)[-(self.max_length + 1) :][:-1]
            with torch.no_grad():
                scores = self.model(torch.tensor([ids], device=self.device), logits_to_keep=len(continuation)).logits[0].float()
            target = torch.tensor(continuation, device=scores.device)
            total = scores.gather(1, target[:, None]).sum()
            results.append((float(total), bool((scores.argmax(-1) == target).all())))
        return results
