"""The NMVS backends a gateway can run, by the name ``[nmvs] backend`` gives.

Each entry owns everything protocol-specific the rest of the gateway needs: the keys its
``[nmvs]`` section takes and how they are read (raising the file's one
:class:`~gateway.configfile.ConfigError`), how the backend is opened, and its self-test probe
(with its own advice texts). A new backend is one sub-package of :mod:`gateway.nmvs` plus one
entry in :data:`BACKENDS`; the daemon, the engine and the self-test only ever go through here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from gateway.configfile import TableReader
from gateway.nmvs.arvato import probe as arvato_probe
from gateway.nmvs.arvato import section as arvato_section
from gateway.nmvs.backend import NmvsBackend
from gateway.nmvs.solidsoft import probe as solidsoft_probe
from gateway.nmvs.solidsoft import section as solidsoft_section
from gateway.selftest.results import NmvsReport

DEFAULT = "arvato-soap"


class BackendSettings(Protocol):
    """What the gateway reads from any backend's settings."""

    @property
    def undo_owner(self) -> str:
        """Who alone may undo a change this gateway made, as the national system counts it
        (Arvato: the NMVS user; Solidsoft: the location). The engine's firewall rule 5."""
        ...


@dataclass(frozen=True, slots=True)
class BackendKind:
    name: str
    keys: tuple[str, ...]  # the [nmvs] keys besides ``backend``
    default_credentials: Mapping[str, str]  # key → systemd credential used when it is absent
    parse: Callable[[TableReader, list[str]], Any]  # → its settings (a BackendSettings)
    open: Callable[[Any, Path], NmvsBackend]  # settings, config file → a backend (ConfigError)
    probe: Callable[[Any, datetime], Awaitable[NmvsReport]]  # the self-test's NMVS checks


ARVATO = BackendKind(
    name="arvato-soap",
    keys=arvato_section.KEYS,
    default_credentials=arvato_section.DEFAULT_CREDENTIALS,
    parse=arvato_section.parse_section,
    open=arvato_section.open_client,
    probe=arvato_probe.check_nmvs,
)
SOLIDSOFT = BackendKind(
    name="solidsoft-rest",
    keys=solidsoft_section.KEYS,
    default_credentials=solidsoft_section.DEFAULT_CREDENTIALS,
    parse=solidsoft_section.parse_section,
    open=solidsoft_section.open_client,
    probe=solidsoft_probe.check_nmvs,
)
BACKENDS: dict[str, BackendKind] = {kind.name: kind for kind in (ARVATO, SOLIDSOFT)}
