"""The Arvato SOAP v5 NMVS backend: :class:`ArvatoClient` configured by :class:`ArvatoConfig`."""

from gateway.nmvs.arvato.client import ArvatoClient
from gateway.nmvs.arvato.config import ArvatoConfig, ArvatoConfigError
from gateway.nmvs.secret import Secret

__all__ = ["ArvatoClient", "ArvatoConfig", "ArvatoConfigError", "Secret"]
