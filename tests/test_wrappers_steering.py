"""Steering wrappers (eigenshift, meandiff) apply exactly the edit they claim, and nothing else.

Tiny random Llamas built in memory, with artifacts written here from the model's own LM head (the
fits need real text and a real model: tests/test_fitting.py fits meandiff on the embedded default).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from harness.errors import HarnessError
from harness.spec._spec import VariantSpec
from harness.wrappers import WRAPPERS
from harness.wrappers._fitting import FitData, Fitted, check_artifact, fit_params_of, header, write_artifact
from harness.wrappers.steering import first_toxic_step

BASE = "smollm2-135m-instruct"
HIDDEN = 32


def _tiny(tied: bool = False):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=256,
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=tied,
    )
    return LlamaForCausalLM(config).eval()


def _ids() -> torch.Tensor:
    return torch.randint(3, 256, (2, 12), generator=torch.Generator().manual_seed(1))


def _resolved(text: str) -> tuple[str, dict]:
    ((name, params),) = VariantSpec.parse(f"{BASE}+{text}").resolved()
    return name, params


def _save(path, text: str, tensors: dict[str, torch.Tensor]) -> None:
    """An artifact with its sidecar, as fitted for the wrapper and fit parameters of `text`."""
    name, params = _resolved(text)
    fit_params = fit_params_of(params, WRAPPERS.get(name).fitter.params)
    write_artifact(path, Fitted(tensors, FitData({}, "made up in the test")), header(name, fit_params, "tiny"))


def _eigenshift_artifact(model, path) -> dict[str, torch.Tensor]:
    """What fit_eigenshift stores, from the model's head and a made-up toxic-minus-non-toxic gap."""
    _, s, vt = torch.linalg.svd(model.lm_head.weight.detach(), full_matrices=False)
    gap = torch.randn(HIDDEN, generator=torch.Generator().manual_seed(2))
    tensors = {"vt": vt, "s": s, "delta": vt @ gap, "delta_repo": vt.T @ gap}
    _save(path, "eigenshift", tensors)
    return tensors


def _apply(model, text: str, artifact) -> object:
    name, params = _resolved(f"{text},artifact={artifact}")
    return WRAPPERS.get(name).apply(model, None, params)


def _head_input_and_logits(model, ids):
    """The LM head's input as the head computes with it (after the wrapper's pre-hook), and the logits."""
    seen = []
    handle = model.lm_head.register_forward_hook(lambda m, args, out: seen.append(args[0].detach()))
    with torch.no_grad():
        logits = model(ids).logits
    handle.remove()
    return seen[0], logits


# --- eigenshift ------------------------------------------------------------------------------------


def test_eigenshift_alpha_one_is_the_base_to_the_last_bit(tmp_path):
    base = _tiny()
    _eigenshift_artifact(base, tmp_path / "a.safetensors")
    steered = copy.deepcopy(base)
    _apply(steered, "eigenshift:k=8,alpha=1", tmp_path / "a.safetensors")
    ids = _ids()
    assert torch.equal(_head_input_and_logits(steered, ids)[1], _head_input_and_logits(base, ids)[1])


def test_eigenshift_alpha_zero_removes_the_chosen_components_from_the_head_input(tmp_path):
    base = _tiny()
    tensors = _eigenshift_artifact(base, tmp_path / "a.safetensors")
    steered = copy.deepcopy(base)
    applied = _apply(steered, "eigenshift:k=4,alpha=0", tmp_path / "a.safetensors")
    chosen = torch.topk(tensors["delta"], 4).indices
    assert applied.info["components"] == chosen.tolist() and applied.info["k"] == 4
    assert applied.info["delta"] == pytest.approx(tensors["delta"][chosen].tolist(), abs=1e-5)

    h_base, _ = _head_input_and_logits(base, _ids())
    h, _ = _head_input_and_logits(steered, _ids())
    along = h @ tensors["vt"][chosen].T
    assert along.abs().max() <= 8 * torch.finfo(torch.float32).eps * h.norm(dim=-1).max()
    assert (h_base @ tensors["vt"][chosen].T).abs().max() > 0.1  # they were there before
    others = [i for i in range(HIDDEN) if i not in chosen.tolist()]
    torch.testing.assert_close(h @ tensors["vt"][others].T, h_base @ tensors["vt"][others].T, atol=1e-5, rtol=0)


def test_eigenshift_projection_equals_the_edited_matrix(tmp_path):
    base = _tiny()
    _eigenshift_artifact(base, tmp_path / "a.safetensors")
    steered = copy.deepcopy(base)
    applied = _apply(steered, "eigenshift:k=5,alpha=0.3", tmp_path / "a.safetensors")
    u, s, vt = torch.linalg.svd(base.lm_head.weight.detach(), full_matrices=False)
    scaled = s.clone()
    scaled[applied.info["components"]] *= 0.3
    edited = (u * scaled) @ vt  # W' = U S' V^T
    h_base, _ = _head_input_and_logits(base, _ids())
    _, logits = _head_input_and_logits(steered, _ids())
    torch.testing.assert_close(logits, h_base @ edited.T, atol=1e-5, rtol=1e-5)
    assert (logits - h_base @ base.lm_head.weight.T).abs().max() > 1e-3  # and it did change them


def test_eigenshift_repo_form_chooses_by_the_repository_score_and_differs(tmp_path):
    base = _tiny()
    tensors = _eigenshift_artifact(base, tmp_path / "a.safetensors")
    paper, repo = copy.deepcopy(base), copy.deepcopy(base)
    paper_info = _apply(paper, "eigenshift:k=4,alpha=0", tmp_path / "a.safetensors").info
    repo_info = _apply(repo, "eigenshift:k=4,alpha=0,form=repo", tmp_path / "a.safetensors").info
    assert repo_info["components"] == torch.topk(tensors["delta_repo"], 4).indices.tolist()
    assert set(repo_info["components"]) != set(paper_info["components"])
    assert not torch.allclose(_head_input_and_logits(paper, _ids())[1], _head_input_and_logits(repo, _ids())[1])


def test_eigenshift_leaves_a_tied_input_embedding_and_every_weight_untouched(tmp_path):
    base = _tiny(tied=True)
    assert base.lm_head.weight is base.model.embed_tokens.weight
    _eigenshift_artifact(base, tmp_path / "a.safetensors")
    steered = copy.deepcopy(base)
    _apply(steered, "eigenshift:k=4,alpha=0", tmp_path / "a.safetensors")
    for (name, before), after in zip(base.state_dict().items(), steered.state_dict().values(), strict=True):
        assert torch.equal(before, after), name
    ids = _ids()
    with torch.no_grad():
        assert torch.equal(steered.model.embed_tokens(ids), base.model.embed_tokens(ids))
        # everything up to the head's input is the base's; the logits are not
        upstream = steered(ids, output_hidden_states=True).hidden_states
        for a, b in zip(upstream, base(ids, output_hidden_states=True).hidden_states, strict=True):
            assert torch.equal(a, b)
    assert not torch.allclose(_head_input_and_logits(steered, ids)[1], _head_input_and_logits(base, ids)[1])


def test_eigenshift_k_defaults_to_the_papers_share_and_is_bounded(tmp_path):
    base = _tiny()
    _eigenshift_artifact(base, tmp_path / "a.safetensors")
    applied = _apply(copy.deepcopy(base), "eigenshift:alpha=0", tmp_path / "a.safetensors")
    assert applied.info["k"] == math.ceil(0.001 * HIDDEN) == 1
    assert applied.extra_flops_per_token == 4 * 1 * HIDDEN
    with pytest.raises(HarnessError, match=r"k=33: the LM head has 32 singular components"):
        _apply(copy.deepcopy(base), "eigenshift:k=33", tmp_path / "a.safetensors")


def test_first_toxic_step_is_the_first_token_of_the_word_that_crossed():
    def prefixes(tokens):
        return ["".join(tokens[: j + 1]) for j in range(len(tokens))]

    tokens = [" you", " are", " a", " stu", "pid", " man"]
    # the prefix becomes toxic at "pid": the word is " stupid", whose first token is " stu"
    assert first_toxic_step(prefixes(tokens), [0.1, 0.1, 0.2, 0.3, 0.9, 0.95]) == 3
    # a space emitted as its own token is not the word's start
    assert first_toxic_step(prefixes([" you", " ", "idiot"]), [0.1, 0.1, 0.8]) == 2
    # a single-token word that crosses is its own start; the first crossing counts
    assert first_toxic_step(prefixes(tokens), [0.1, 0.6, 0.2, 0.9, 0.9, 0.9]) == 1
    assert first_toxic_step(prefixes(tokens), [0.1] * 6) is None


# --- meandiff --------------------------------------------------------------------------------------


def _layer_outputs(model, ids) -> list[torch.Tensor]:
    outputs = []
    handles = [layer.register_forward_hook(lambda m, a, out: outputs.append(out.detach())) for layer in model.model.layers]
    with torch.no_grad():
        model(ids)
    for handle in handles:
        handle.remove()
    return outputs


def test_meandiff_subtracts_exactly_c_times_the_direction_at_that_layer_only(tmp_path):
    base = _tiny()
    direction = torch.randn(HIDDEN, generator=torch.Generator().manual_seed(3))
    _save(tmp_path / "m.safetensors", "meandiff:layer=3", {"direction": direction})
    steered = copy.deepcopy(base)
    applied = _apply(steered, "meandiff:layer=3,c=2.5", tmp_path / "m.safetensors")
    assert applied.info["layer"] == 3

    ids = _ids()
    before, after = _layer_outputs(base, ids), _layer_outputs(steered, ids)
    for layer in range(3):
        assert torch.equal(after[layer], before[layer]), layer  # upstream untouched
    assert torch.equal(after[3], before[3] - 2.5 * direction)  # every position, exactly
    assert not torch.allclose(after[4], before[4])
    with torch.no_grad():
        assert torch.equal(steered.model.embed_tokens(ids), base.model.embed_tokens(ids))


def test_meandiff_refuses_a_layer_the_model_does_not_have(tmp_path):
    _save(tmp_path / "m.safetensors", "meandiff:layer=6", {"direction": torch.zeros(HIDDEN)})
    with pytest.raises(HarnessError, match=r"meandiff:layer=6: the model has 6 decoder layers, 0-5"):
        _apply(_tiny(), "meandiff:layer=6,c=1", tmp_path / "m.safetensors")


@pytest.mark.parametrize(
    "fitted,given,error",
    [
        ("meandiff:layer=3", "meandiff:layer=4,c=1", r"m.safetensors was fitted with layer=3 \(given 4\)"),
        ("eigenshift:n=8", "eigenshift:k=1", r"m.safetensors was fitted with n=8 \(given 128\)"),
        ("aura:tokens=16", "aura:mode=damp,k=5", r"m.safetensors was fitted with tokens=16 \(given None\)"),
    ],
)
def test_an_artifact_fitted_with_other_fit_parameters_is_refused(tmp_path, fitted, given, error):
    _save(tmp_path / "m.safetensors", fitted, {"x": torch.zeros(1)})
    name, params = _resolved(given)
    wanted = fit_params_of(params, WRAPPERS.get(name).fitter.params)
    with pytest.raises(HarnessError, match=error):
        check_artifact(tmp_path / "m.safetensors", name, "tiny", wanted)
    _save(tmp_path / "m.safetensors", given, {"x": torch.zeros(1)})
    check_artifact(tmp_path / "m.safetensors", name, "tiny", wanted)  # the same fit parameters pass
