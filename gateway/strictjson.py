"""JSON objects whose keys repeat are refused, wherever the gateway reads JSON (MQTT requests,
a national system's answers, the simulator's requests): "last one wins" would act on a field
the sender may not have meant (``{"op": "verify", "op": "dispense"}``). Imports nothing else
from the gateway."""

from __future__ import annotations

from typing import Any


class DuplicateKey(ValueError):
    """A key given twice in one object; ``key`` names it, each reader words its own error."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} appears twice in one object")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.loads`: the object, or :class:`DuplicateKey`."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKey(key)
        found[key] = value
    return found
