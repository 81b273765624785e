"""The float copy of a GGUF: keyed by the GGUF and the converting libraries' versions, checked against
its manifest on every load, and converted again, never read, when a file in it was changed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness._util.files import folder_problem
from harness.models import loading
from harness.models.loading import MANIFEST, conversion_key, ensure_float_folder, float_folder
from harness.models.sources import ResolvedModel

GGUF = ResolvedModel("model.gguf", "gguf", Path("/nowhere/model.gguf"), "local", "ab" * 32)


def _noise(path: Path) -> None:
    """Other bytes written into the middle of `path` (weights, past any header), its size kept and its
    mtime put back."""
    before = path.stat()
    with open(path, "r+b") as f:
        f.seek(before.st_size // 2)
        old = f.read(16)
        f.seek(before.st_size // 2)
        f.write(bytes(b ^ 0x5A for b in old))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns


@pytest.fixture
def conversions(monkeypatch, tmp_path) -> list[Path]:
    """A fast stand-in for the conversion (the real one takes 20 s), writing what it would: weights,
    config and the manifest; the folders it converted into."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    made: list[Path] = []

    def convert(resolved: ResolvedModel, out: Path) -> None:
        made.append(out)
        (out / "model.safetensors").write_bytes(bytes(range(256)) * 64)
        (out / "config.json").write_text('{"model_type": "llama"}')
        loading.write_facts(out, MANIFEST, {}, conversion_key(resolved))

    monkeypatch.setattr(loading, "convert", convert)
    return made


def test_the_key_holds_the_gguf_and_the_converting_libraries_and_no_path():
    key = conversion_key(GGUF)
    assert key["gguf_sha256"] == GGUF.weights_sha256
    assert set(key["libraries"]) >= {"transformers", "gguf", "torch"} and key["libraries"]["transformers"] != "absent"
    assert "/nowhere" not in json.dumps(key)
    moved = ResolvedModel("elsewhere.gguf", "gguf", Path("/elsewhere/copy.gguf"), "local", GGUF.weights_sha256)
    assert float_folder(moved) == float_folder(GGUF)


def test_the_folder_follows_the_transformers_version(monkeypatch):
    before = float_folder(GGUF)
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9" if name == "transformers" else real(name))
    assert float_folder(GGUF) != before


def test_noise_in_a_converted_weight_file_is_found_and_the_folder_converted_again(conversions, capsys):
    assert ensure_float_folder(GGUF) is True
    assert ensure_float_folder(GGUF) is False and len(conversions) == 1
    folder = float_folder(GGUF)
    _noise(folder / "model.safetensors")
    capsys.readouterr()
    assert ensure_float_folder(GGUF) is True
    err = capsys.readouterr().err
    assert err == f"harness: converted weights {folder.name}: model.safetensors differs from its manifest (sha256); it is rebuilt\n"
    assert len(conversions) == 2 and (folder / "model.safetensors").read_bytes() == bytes(range(256)) * 64
    assert folder_problem(folder, MANIFEST, full=True) is None


def test_a_folder_without_a_manifest_is_converted_again(conversions, capsys):
    folder = float_folder(GGUF)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")  # as an older harness left it
    (folder / "model.safetensors").write_bytes(b"old")
    assert ensure_float_folder(GGUF) is True
    assert "it has no manifest.json; it is rebuilt" in capsys.readouterr().err
    assert (folder / MANIFEST).is_file() and len(conversions) == 1


@pytest.mark.slow  # the embedded default converted, then converted again
def test_a_real_converted_folder_copied_is_trusted_and_with_noise_is_converted_again(embedded_default, tmp_path, monkeypatch, capsys):
    import torch

    from harness.models import load_model

    source = float_folder(embedded_default)
    cache = tmp_path / "own-cache"
    shutil.copytree(source, cache / "models" / source.name)  # new inodes and ctimes, the same bytes
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(cache))
    folder = float_folder(embedded_default)
    capsys.readouterr()
    assert ensure_float_folder(embedded_default) is False and capsys.readouterr().err == ""
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        right = load_model(embedded_default, "cpu").model(ids).logits

    _noise(folder / "model.safetensors")
    loaded = load_model(embedded_default, "cpu")
    assert loaded.converted
    assert "model.safetensors differs from its manifest (sha256); it is rebuilt" in capsys.readouterr().err
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, right)
