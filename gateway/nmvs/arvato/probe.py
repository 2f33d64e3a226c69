"""NMVS checks: client certificate expiry, reachability and TLS (``SinglePackPing``), round-trip
latency against the 300 ms SLA, credentials, and the password / T&C notices.

Credentials are checked with a G188 (bulk result) request, on the bulk service
(``nmvs.bulk_url``), for a transaction id that does not exist: the NMVS authenticates it first and then answers ``NMVS_FE_TX_02`` — no pack is touched,
no alert can be raised. A wrong password costs one failed login, like any request would. The
SLA latency is the median of a few more such authenticated requests (pings skip the NMVS's
application and say less). Everything goes through the gateway's own :class:`~gateway.nmvs.arvato.ArvatoClient`.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from gateway.nmvs.arvato import ArvatoClient, ArvatoConfig, ArvatoConfigError
from gateway.nmvs.backend import BulkResult, BulkTicket, NmvsError, NmvsPermanentError, Notification
from gateway.nmvs.probing import LATENCY_SAMPLES, certificate_validity, check_latency
from gateway.selftest.results import CheckResult, NmvsReport, fail, ok, skipped, warning

PROBE = BulkTicket("SELFTEST-NO-SUCH-TRANSACTION-000", "", "", "")  # an id no NMVS issues
CONFIG_FIX = "check the [nmvs] section of the configuration"
_CREDENTIAL_FIXES = {
    "NMVS_FE_AU_01": "the user or password is wrong: check nmvs.user_id, nmvs.client_login_id "
    "and the password file; do not retry before fixing (the account locks after a few failures)",
    "NMVS_FE_AU_06": "the user or password is wrong: check nmvs.user_id, nmvs.client_login_id "
    "and the password file; do not retry before fixing (the account locks after a few failures)",
    "NMVS_FE_AU_02": "the account is locked: ask your national verification organisation to "
    "unlock it, then check the password file",
    "NMVS_FE_AU_05": "the account is locked after failed logins: ask your national verification "
    "organisation to unlock it, then check the password file",
    "NMVS_FE_AU_11": "the password has expired (or is the initial one): change it in the NMVS "
    "portal and update the password file",
    "NMVS_FE_AU_23": "new terms and conditions were not accepted in time: accept them in the "
    "NMVS portal",
}
# Answers saying the probe's interface (bulk) is closed to the account, not that the credentials
# are wrong [inferred: pharmacy accounts may lack bulk rights].
PROBE_NOT_OPEN = frozenset({"NMVS_FE_AU_14", "NMVS_TE_REQ_02"})
_NOTICE_FIXES = {
    "NMVS_NOTIFY_AU_01": "an old password is still in use: change it in the NMVS portal and "
    "update the password file",
    "NMVS_NOTIFY_AU_02": "change the password in the NMVS portal before it expires, then update "
    "the password file",
    "NMVS_NOTIFY_PMS_01": "accept the new terms and conditions in the NMVS portal before the "
    "deadline, or the account is blocked",
}


def check_certificate(config: ArvatoConfig, now: datetime) -> CheckResult:
    name = "nmvs.certificate"
    if not config.uses_tls:
        return warning(
            name,
            f"{config.endpoint} is plain HTTP: no TLS, no client certificate",
            "only a simulator is reached over plain HTTP: use the https:// URL of your NMVS",
        )
    try:
        certificate = config.client_certificate()
    except (ArvatoConfigError, OSError) as exc:
        return fail(name, f"cannot read the client certificate: {exc}", CONFIG_FIX)
    if certificate is None:
        return warning(
            name,
            "no client certificate configured (nmvs.cert_file or nmvs.pkcs12_file)",
            "if your NMVS requires one, install the certificate it issued and set nmvs.cert_file",
        )
    return certificate_validity(certificate, now, "nmvs.cert_file/key_file")


def _link_failure(exc: NmvsError, tls: bool) -> CheckResult:
    text = str(exc)
    if "TLS" in text or "certificate" in text:
        return fail(
            "nmvs.tls",
            text,
            "check nmvs.ca_file (the CA of the NMVS server) and the client certificate; "
            "renew an expired certificate",
        )
    fix = (
        "check the network, firewall and proxy, and nmvs.url"
        if not isinstance(exc, NmvsPermanentError)
        else CONFIG_FIX + " (nmvs.url)"
    )
    return fail("nmvs.reach", text, fix + (" (HTTPS port)" if tls else ""))


async def check_link(
    client: ArvatoClient,
) -> tuple[list[CheckResult], list[float], datetime | None]:
    """Reachability and TLS from pings; their latencies and the server's HTTP Date."""
    tls = client.config.uses_tls
    try:
        first = await client.ping()
        samples = [(await client.ping()).latency_ms for _ in range(LATENCY_SAMPLES)]
    except NmvsError as exc:
        return [_link_failure(exc, tls)], [], None
    results = [ok("nmvs.reach", f"{client.config.endpoint} answers the ping")]
    if tls:
        results.append(ok("nmvs.tls", "TLS handshake with our client certificate accepted"))
    return results, samples, first.server_time


def _notices(notifications: tuple[Notification, ...]) -> CheckResult:
    if not notifications:
        return ok("nmvs.notices", "no password or terms-and-conditions notice")
    detail = "; ".join(f"{n.code}: {n.description}" for n in notifications)
    fixes = list(dict.fromkeys(_NOTICE_FIXES.get(n.code, "read the notice") for n in notifications))
    return warning("nmvs.notices", detail, "; ".join(fixes))


def _credentials_failure(exc: NmvsError, bulk_url: str) -> CheckResult:
    name, code = "nmvs.credentials", exc.return_code or ""
    if code in _CREDENTIAL_FIXES:
        return fail(name, str(exc), _CREDENTIAL_FIXES[code])
    if code in PROBE_NOT_OPEN:
        return warning(
            name,
            f"not confirmed: this account may not use the bulk interface the probe goes through "
            f"({exc})",
            "nothing to do if verifications work at the counter; otherwise check nmvs.user_id "
            "and the password file",
        )
    if isinstance(exc, NmvsPermanentError):
        return fail(name, str(exc), CONFIG_FIX)
    return warning(
        name,
        f"not confirmed: the NMVS could not answer now on its bulk service {bulk_url} ({exc})",
        "run the self-test again in a few minutes; if it persists, check nmvs.bulk_url (the bulk "
        "service may be on another host than nmvs.url)",
    )


async def _probe(client: ArvatoClient) -> tuple[BulkResult, float]:
    started = time.perf_counter()
    answer = await client.bulk_result(PROBE, client_trx_id=uuid.uuid4().hex)
    return answer, (time.perf_counter() - started) * 1000


async def check_credentials(
    client: ArvatoClient,
) -> tuple[list[CheckResult], list[float], datetime | None]:
    """Credentials and notices (G188 for an unknown transaction: no pack touched); when they are
    accepted, the latencies of more such authenticated requests for the SLA check."""
    try:
        answer, _ = await _probe(client)
        samples = [(await _probe(client))[1] for _ in range(LATENCY_SAMPLES)]
    except NmvsError as exc:
        return (
            [
                _credentials_failure(exc, client.config.bulk_url),
                skipped("nmvs.notices", "not read: the NMVS did not accept the request"),
            ],
            [],
            None,
        )
    detail = f"user {client.config.user_id} accepted (probe answered {answer.return_code})"
    return (
        [ok("nmvs.credentials", detail), _notices(answer.notifications)],
        samples,
        answer.server_time,
    )


async def check_nmvs(config: ArvatoConfig, now: datetime) -> NmvsReport:
    results = [check_certificate(config, now)]
    try:
        client = ArvatoClient(config)
    except (ArvatoConfigError, OSError) as exc:
        results.append(fail("nmvs.reach", f"cannot set up the NMVS client: {exc}", CONFIG_FIX))
        return NmvsReport(results, None, "")
    async with client:
        link, pings, date_header = await check_link(client)
        results.extend(link)
        if not pings:
            results.append(skipped("nmvs.credentials", "not tried: the NMVS cannot be reached"))
            return NmvsReport(results, None, "")
        credentials, requests, timestamp = await check_credentials(client)
    results.extend(credentials)
    if requests:
        results.append(check_latency(requests, "authenticated requests"))
    else:
        results.append(check_latency(pings, "pings"))
    if timestamp is not None:
        return NmvsReport(results, timestamp, "NMVS response timestamp")
    return NmvsReport(results, date_header, "HTTP Date header")
