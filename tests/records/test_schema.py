import json

import jsonschema
import pytest
from pydantic import ValidationError

from harness._util.files import sha256_json
from harness.records._schema import BaseIdentity, InterventionRecord, WrapperRecord, read_record, record_json_schema
from tests.helpers import REPO


def test_identity_changes_with_weights_dtype_and_wrappers():
    base = BaseIdentity(weights_sha256="a" * 64, format="gguf", dtype="float32")
    plain = InterventionRecord(base=base)
    assert plain.identity() == InterventionRecord(base=base).identity()
    others = [
        InterventionRecord(base=base.model_copy(update={"weights_sha256": "b" * 64})),
        InterventionRecord(base=base.model_copy(update={"dtype": "bfloat16"})),
        InterventionRecord(base=base, wrappers=(WrapperRecord(name="quantize", params={"bits": "4"}),)),
        InterventionRecord(base=base, wrappers=(WrapperRecord(name="quantize", params={"bits": "8"}),)),
    ]
    assert len({plain.identity(), *(o.identity() for o in others)}) == 5


def test_the_plugin_of_a_wrapper_enters_the_identity():
    """Two plugins that register the same wrapper name (or one plugin at two versions) make
    different variants; harness's own wrappers hash as they did before the field existed."""
    base = BaseIdentity(weights_sha256="a" * 64, format="gguf", dtype="float32")
    ours = WrapperRecord(name="scale", params={"factor": "0.5"})
    plugins = ["harness-scale==1.0", "other-scale==1.0", "harness-scale==1.1"]
    identities = {InterventionRecord(base=base, wrappers=(ours.model_copy(update={"plugin": p}),)).identity() for p in plugins}
    assert len({InterventionRecord(base=base, wrappers=(ours,)).identity(), *identities}) == 4
    described = {"base": base.model_dump(mode="json"), "wrappers": [{"name": "scale", "params": {"factor": "0.5"}, "artifacts": {}}]}
    assert InterventionRecord(base=base, wrappers=(ours,)).identity() == sha256_json(described)


def test_records_are_frozen_and_strict():
    base = BaseIdentity(weights_sha256="a" * 64, format="gguf", dtype="float32")
    with pytest.raises(ValidationError):
        base.dtype = "float16"
    with pytest.raises(ValidationError):
        BaseIdentity(weights_sha256="a", format="gguf", dtype="float32", extra_field=1)


def test_schema_is_json_schema_and_versions_are_checked(tmp_path):
    schema = record_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "schema_version" in schema["properties"]
    (tmp_path / "record.json").write_text(json.dumps({"schema_version": "9.0"}))
    with pytest.raises(ValueError, match=r"schema_version '9\.0'"):
        read_record(tmp_path)


def test_older_records_still_read_without_the_fields_added_since():
    """Schema 1.3 added `execution` (set by --executor ray), 1.4 the code digests, 1.5 a wrapper's
    plugin and the include paths; the committed 1.0-1.4 records still read, with those fields unset,
    and their variants' identities are what they were."""

    from harness.records._schema import SCHEMA_VERSION

    assert SCHEMA_VERSION == "1.5"
    folders = sorted(REPO.glob("results/*/record.json"))
    versions = {json.loads(f.read_text())["schema_version"] for f in folders}
    assert {"1.0", "1.2"} <= versions
    for folder in folders:
        record = read_record(folder)
        assert record.execution is None and record.spec.include_paths == ()
        if record.schema_version < "1.4":
            assert record.environment.code_digest is None and all(v.code_digest is None for v in record.variants)
        for variant in record.variants:
            assert all(w.plugin is None for w in variant.intervention.wrappers)
            assert variant.intervention.identity() == variant.identity
