"""Self-test checks of a Solidsoft link: client certificate (when mutual TLS is used), the
token (credentials), a harmless authenticated call (reachability of the API host), its
latency against the 300 ms service level, and the system's clock from ``Date``.

The harmless call is a verify of a product code no system issues (``request.PROBE_PATH``):
the system checks the token, refuses the code, and looks up no pack, so no alert is raised. A
refused secret costs one failed login, as any request would, and nothing more is sent.
"""

from __future__ import annotations

from datetime import datetime

from gateway.nmvs.backend import NmvsError, NmvsPermanentError
from gateway.nmvs.probing import LATENCY_SAMPLES, certificate_validity, check_latency
from gateway.nmvs.solidsoft.client import SolidsoftClient
from gateway.nmvs.solidsoft.config import SolidsoftConfig, SolidsoftConfigError
from gateway.nmvs.tls import TlsFileError
from gateway.selftest.results import CheckResult, NmvsReport, fail, ok, skipped, warning

CONFIG_FIX = "check the [nmvs] section of the configuration"


def check_certificate(config: SolidsoftConfig, now: datetime) -> CheckResult:
    name = "nmvs.certificate"
    if not config.uses_tls:
        return warning(
            name,
            f"{config.api_url} is plain HTTP: no TLS",
            "only a simulator is reached over plain HTTP: use the https:// URL of your system",
        )
    if not config.tls.has_certificate:
        return ok(name, "no client certificate configured: the system authenticates the token")
    try:
        certificate = config.tls.client_certificate()
    except (TlsFileError, OSError) as exc:
        return fail(name, f"cannot read the client certificate: {exc}", CONFIG_FIX)
    assert certificate is not None
    return certificate_validity(certificate, now, "nmvs.cert_file/key_file")


def _failure(name: str, exc: NmvsError, fix: str) -> CheckResult:
    if isinstance(exc, NmvsPermanentError):
        return fail(name, str(exc), CONFIG_FIX)
    return fail(name, str(exc), fix)


async def check_nmvs(config: SolidsoftConfig, now: datetime) -> NmvsReport:
    results = [check_certificate(config, now)]
    try:
        client = SolidsoftClient(config)
    except (SolidsoftConfigError, OSError) as exc:
        results.append(fail("nmvs.reach", f"cannot set up the NMVS client: {exc}", CONFIG_FIX))
        return NmvsReport(results, None, "")
    async with client:
        try:
            token_ms = await client.authenticate()
        except NmvsError as exc:
            results.append(
                _failure(
                    "nmvs.credentials",
                    exc,
                    "check the network and nmvs.token_url (the identity server)",
                )
            )
            results.append(skipped("nmvs.reach", "not tried: no token"))
            return NmvsReport(results, None, "")
        results.append(
            ok("nmvs.credentials", f"client {config.client_id} got a token in {token_ms:.0f} ms")
        )
        try:
            first = await client.ping()
            samples = [(await client.ping()).latency_ms for _ in range(LATENCY_SAMPLES)]
        except NmvsError as exc:
            results.append(
                _failure("nmvs.reach", exc, "check the network, firewall and proxy, and nmvs.url")
            )
            return NmvsReport(results, None, "")
    results.append(ok("nmvs.reach", f"{config.api_url} answers ({first.output})"))
    results.append(check_latency(samples, "authenticated requests"))
    return NmvsReport(results, first.server_time, "HTTP Date header")
