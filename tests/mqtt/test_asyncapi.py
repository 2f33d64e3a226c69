"""``docs/asyncapi.yaml`` is a valid AsyncAPI 3.1 document (checked against the AsyncAPI
initiative's own JSON Schema, fetched by ``.ci/setup``), with TLS and its security schemes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC_SCHEMA = ROOT / ".venv" / "share" / "asyncapi" / "3.1.0.json"


@pytest.fixture(scope="module")
def asyncapi_validator() -> jsonschema.protocols.Validator:
    if not SPEC_SCHEMA.is_file():
        pytest.fail(f"{SPEC_SCHEMA} is missing: run .ci/setup (it fetches the AsyncAPI schema)")
    schema = json.loads(SPEC_SCHEMA.read_text())
    return jsonschema.validators.validator_for(schema)(schema)  # type: ignore[no-any-return]


def document() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())  # type: ignore[no-any-return]


def test_the_asyncapi_document_is_valid_asyncapi_3_1(
    asyncapi_validator: jsonschema.protocols.Validator,
) -> None:
    doc = document()
    assert doc["asyncapi"] == "3.1.0"
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in asyncapi_validator.iter_errors(doc)]
    assert errors == []


def test_the_validator_would_see_a_broken_document(
    asyncapi_validator: jsonschema.protocols.Validator,
) -> None:
    broken = copy.deepcopy(document())
    broken["servers"]["pharmacy"]["protocol"] = 8883
    assert not asyncapi_validator.is_valid(broken)


def test_tls_and_the_security_schemes_are_declared() -> None:
    doc = document()
    tls = doc["servers"]["pharmacy-tls"]
    assert tls["protocol"] == "secure-mqtt"
    schemes = doc["components"]["securitySchemes"]
    assert {scheme["type"] for scheme in schemes.values()} == {"userPassword", "X509"}
    assert len(tls["security"]) == 2
