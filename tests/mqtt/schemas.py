"""The published JSON Schemas (``docs/schemas``), loaded once, for validating every message."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"
KINDS = ("status", "scan", "request", "result", "health", "error")


@cache
def validator(kind: str) -> Draft202012Validator:
    resources = []
    for path in SCHEMA_DIR.glob("*.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    registry: Registry[Any] = Registry().with_resources(resources)
    schema = json.loads((SCHEMA_DIR / f"{kind}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry)


def validate(kind: str, payload: bytes | dict[str, Any]) -> dict[str, Any]:
    """Validate and return the decoded message (raises ``jsonschema.ValidationError``)."""
    data = json.loads(payload) if isinstance(payload, bytes) else payload
    validator(kind).validate(data)
    return data


def kind_of(topic: str) -> str:
    """The message kind of a gateway topic (``.../result`` → ``result``)."""
    return topic.rsplit("/", 1)[-1]
