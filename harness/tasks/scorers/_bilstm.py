"""`jigsaw-bilstm`: the Keras BiLSTM of toxic-comment-classifier, rebuilt in torch without TensorFlow.

The package's model (toxic_classifier/model.py): Embedding(20000, 50) -> Bidirectional(LSTM(50),
sequences, concatenated) -> GlobalMaxPooling1D -> Dense(50, relu) -> Dense(6, sigmoid), over the
tokenizer's word indices zero-padded and truncated at the front to 100 (pad_sequences' defaults,
no masking: the padding runs through the LSTM too). Dropout is off at inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from harness.tasks.scorers._base import ScorerIdentity, combined_sha256
from harness.tasks.scorers._keras_tokenizer import KerasVocabulary, load_vocabulary
from harness.tasks.scorers._package_files import PinnedPackage

NAME = "jigsaw-bilstm"
_WEIGHTS = "toxic_classifier/model/model.weights.h5"
_TOKENIZER = "toxic_classifier/model/tokenizer.pickle"
PACKAGE = PinnedPackage(
    distribution="toxic-comment-classifier",
    version="0.3.0",
    files={
        _WEIGHTS: "03ed4c3f52be909821a8c3263de2dcd65b95908bfae6f569c9a9cec90538a4b3",
        _TOKENIZER: "d8e998211d68c5264b84c6eb6753f08897194038e0345e91a592f97cd38c125c",
    },
    pip_flags="--no-deps",  # it declares tensorflow, pandas and scikit-learn; only its files are used
)
_MAXLEN = 100
_TOXIC = 0  # outputs: toxic, severe_toxic, obscene, threat, insult, identity_hate
_BATCH = 256


class _BiLSTMNet(nn.Module):
    def __init__(self, embedding: np.ndarray, units: int, hidden: int, labels: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(torch.from_numpy(embedding))
        self.lstm = nn.LSTM(embedding.shape[1], units, batch_first=True, bidirectional=True)
        self.hidden = nn.Linear(2 * units, hidden)
        self.out = nn.Linear(hidden, labels)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self.embedding(ids))
        pooled = states.max(dim=1).values
        return torch.sigmoid(self.out(torch.relu(self.hidden(pooled))))


def _net_from_h5(path: Path) -> _BiLSTMNet:
    """The torch module with the Keras 3 weights file's values (layer names as Keras gave them)."""
    with h5py.File(path, "r") as f:
        layers = f["layers"]

        def var(layer: str, i: int) -> np.ndarray:
            return np.asarray(layers[layer]["vars"][str(i)], dtype=np.float32)

        net = _BiLSTMNet(
            var("embedding", 0),
            units=layers["bidirectional/forward_layer/cell/vars/1"].shape[0],
            hidden=layers["dense/vars/1"].shape[0],
            labels=layers["dense_1/vars/1"].shape[0],
        )
        params: dict[str, np.ndarray] = {
            "hidden.weight": var("dense", 0).T,
            "hidden.bias": var("dense", 1),
            "out.weight": var("dense_1", 0).T,
            "out.bias": var("dense_1", 1),
        }
        # Keras keeps (input, 4*units) kernels and one bias, gates in torch's order (i, f, c, o);
        # torch has transposed kernels and two biases that add up, so the second is zero.
        for direction, suffix in (("forward_layer", ""), ("backward_layer", "_reverse")):
            cell = f"bidirectional/{direction}/cell"
            params[f"lstm.weight_ih_l0{suffix}"] = var(cell, 0).T
            params[f"lstm.weight_hh_l0{suffix}"] = var(cell, 1).T
            params[f"lstm.bias_ih_l0{suffix}"] = var(cell, 2)
            params[f"lstm.bias_hh_l0{suffix}"] = np.zeros_like(var(cell, 2))
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in params.items()}
    net.load_state_dict({**net.state_dict(), **state}, strict=True)
    return net.eval()


def _padded(sequences: Sequence[list[int]]) -> torch.Tensor:
    """pad_sequences(sequences, maxlen=100): zeros in front, and long ones lose their front."""
    ids = torch.zeros((len(sequences), _MAXLEN), dtype=torch.long)
    for row, seq in enumerate(sequences):
        kept = seq[-_MAXLEN:]
        if kept:
            ids[row, _MAXLEN - len(kept) :] = torch.tensor(kept)
    return ids


class JigsawBiLSTM:
    def __init__(self, identity: ScorerIdentity, vocabulary: KerasVocabulary, net: _BiLSTMNet) -> None:
        self.identity = identity
        self._vocabulary = vocabulary
        self._net = net

    def score(self, texts: Sequence[str]) -> list[float]:
        scores: list[float] = []
        for start in range(0, len(texts), _BATCH):
            ids = _padded([self._vocabulary.sequence(t) for t in texts[start : start + _BATCH]])
            with torch.inference_mode():
                scores.extend(self._net(ids)[:, _TOXIC].tolist())
        return scores


def load() -> JigsawBiLSTM:
    files = PACKAGE.locate(NAME)
    vocabulary = load_vocabulary(files[_TOKENIZER], PACKAGE.files[_TOKENIZER])
    identity = ScorerIdentity(NAME, PACKAGE.requirement, combined_sha256(PACKAGE.files))
    return JigsawBiLSTM(identity, vocabulary, _net_from_h5(files[_WEIGHTS]))
