"""The Solidsoft Reply REST NMVS backend: :class:`SolidsoftClient` configured by
:class:`SolidsoftConfig`."""

from gateway.nmvs.solidsoft.client import SolidsoftClient
from gateway.nmvs.solidsoft.config import SolidsoftConfig, SolidsoftConfigError

__all__ = ["SolidsoftClient", "SolidsoftConfig", "SolidsoftConfigError"]
