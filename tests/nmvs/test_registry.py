"""The backend registry: one entry per backend, each owning its [nmvs] keys, its opening and
its self-test probe; the daemon's loader reads [nmvs] only through it."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from gateway.configfile import ConfigError, TableReader
from gateway.nmvs.registry import BACKENDS, DEFAULT

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_backend_is_registered_and_each_entry_is_complete() -> None:
    assert DEFAULT in BACKENDS
    for name, kind in BACKENDS.items():
        assert kind.name == name
        assert "backend" not in kind.keys and len(set(kind.keys)) == len(kind.keys)
        assert set(kind.default_credentials) <= set(kind.keys)
        assert inspect.iscoroutinefunction(kind.probe)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_a_backends_section_refuses_a_key_it_does_not_own_naming_it(name: str) -> None:
    kind = BACKENDS[name]
    with pytest.raises(ConfigError, match=r"nmvs\.colour: unknown setting"):
        TableReader(Path("gw.toml"), "nmvs", {"colour": "blue"}, kind.keys)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_key_of_every_backend_is_documented_in_the_example(name: str) -> None:
    text = (ROOT / "config" / "gateway.example.toml").read_text()
    for key in BACKENDS[name].keys:
        assert f"\n{key} = " in text or f"\n# {key} = " in text, f"nmvs.{key} ({name})"
