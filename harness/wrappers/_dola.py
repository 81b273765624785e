"""DoLa scores (`dola:layers=...`; see harness.wrappers.decoding for how they reach the evaluation).

Per row (a position that gets logits), as transformers' DoLa (`_dola_select_contrast`, now the hub
repository transformers-community/dola) and the authors' `lm_score` (voidism/DoLa, dola.py) do:
1. q_N = softmax of the model's own logits (final norm and head on the last layer), and for each
   candidate premature layer j, q_j = softmax(head(h_j)), h_j the hidden state after j layers, the
   final norm applied first only with `early_norm=true` (the authors apply the head to the raw
   state: their early-exit forward returns `lm_head(hidden_states[j])`, and so does transformers);
2. the layer j* with the largest divergence, which both compute as
   0.5 * (mean_v M (log M - log q_N) + mean_v M (log M - log q_j)), M = (q_N + q_j) / 2
   (torch's `kl_div(log q, M)` is KL(M || q), so this is not the textbook Jensen-Shannon
   divergence 0.5 (KL(q_N || M) + KL(q_j || M)); it is mirrored as written, summed over the
   vocabulary instead of averaged, which leaves the choice alone; the first such layer on ties, as
   argmax takes it);
3. score = log q_N - log q_j*; in generation, -inf where q_N < relative_top x max q_N.
One difference: transformers averages the divergence over the batch and picks one layer for every
sequence of a generation step; here each row picks its own, as the authors' scoring (batch 1) does,
so a sequence's scores do not depend on what it is batched with.

What a log-likelihood is made of: the authors' `lm_score` log-softmaxes the differences with its
default `post_softmax=True` (`diff_logits.log_softmax(-1)`), which is what lm-eval does to the
returned scores; their TruthfulQA multiple-choice scripts (voidism/DoLa tfqa_mc_eval.py, and ICD's
truthfulqa_eval.py built on it) pass `post_softmax=False` and `relative_top=0.0` and sum the raw
differences. `post_softmax` chooses; its default, false, is the scripts' (harness.lm._summed_scores).
"""

from __future__ import annotations

from typing import Any

from harness.wrappers._hooks import CHUNK, ScoreHooks


class Dola(ScoreHooks):
    name = "dola"

    def __init__(self, model: Any, candidates: list[int], early_norm: bool, relative_top: float) -> None:
        import torch

        super().__init__(model, candidates)
        self.candidates = candidates
        self.early_norm = early_norm
        self.relative_top = relative_top
        self.counts = torch.zeros(len(candidates), dtype=torch.int64)
        """Rows that chose each candidate (padding rows of a 2-D attention mask left out)."""

    def scores(self, model: Any, final: Any, hidden: dict[int, Any], call: dict[str, Any]) -> Any:
        import torch

        out = torch.empty(final.shape, dtype=torch.float32, device=final.device)
        chosen = torch.empty(final.shape[0], dtype=torch.int64, device=final.device)
        for start in range(0, final.shape[0], CHUNK):
            rows = slice(start, start + CHUNK)
            log_final = final[rows].float().log_softmax(-1)
            p_final = log_final.exp()
            best = torch.full(log_final.shape[:1], float("-inf"), device=final.device)
            pick = torch.zeros(log_final.shape[:1], dtype=torch.int64, device=final.device)
            log_premature = torch.empty_like(log_final)
            for index, layer in enumerate(self.candidates):
                log_q = self.head(model, hidden[layer][rows], self.early_norm)
                middle = log_q.exp().add_(p_final).mul_(0.5)
                # 0.5 (KL(M || q_N) + KL(M || q_j)), one pass over the vocabulary per term
                divergence = torch.special.xlogy(middle, middle).sum(-1) - 0.5 * (
                    torch.einsum("rv,rv->r", middle, log_final) + torch.einsum("rv,rv->r", middle, log_q)
                )
                better = divergence > best
                best = torch.where(better, divergence, best)
                pick[better] = index
                log_premature[better] = log_q[better]
            out[rows] = self.plausible(log_final - log_premature, log_final, self.relative_top)
            chosen[rows] = pick
        counted = call["counted"]
        kept = chosen if counted is None else chosen[counted.to(chosen.device)]
        self.counts += torch.bincount(kept.cpu(), minlength=len(self.candidates))
        return out
