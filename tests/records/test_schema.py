import json

import jsonschema
import pytest
from pydantic import ValidationError

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
    """Schema 1.3 added `execution` (set by --executor ray), 1.4 the code digests, 1.5 the include
    paths; the committed 1.0-1.4 records still read, with those fields unset."""

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
