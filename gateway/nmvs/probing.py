"""Self-test checks every backend's probe shares: the client certificate's validity and the
round-trip latency against the NMVS service level."""

from __future__ import annotations

import statistics
from datetime import datetime

from cryptography import x509

from gateway.selftest.results import CheckResult, fail, ok, warning

SLA_MS = 300.0
CERTIFICATE_WARNING_DAYS = 30
LATENCY_SAMPLES = 3  # requests after the first (which may also pay for the TLS handshake)


def certificate_validity(certificate: x509.Certificate, now: datetime, keys: str) -> CheckResult:
    """``nmvs.certificate``: expired, not yet valid, expiring within 30 days, or fine;
    ``keys`` names the settings of the certificate to renew."""
    name = "nmvs.certificate"
    expires = certificate.not_valid_after_utc
    days = (expires - now).total_seconds() / 86_400
    detail = f"client certificate {certificate.subject.rfc4514_string()} expires {expires:%Y-%m-%d}"
    renew = f"request a new certificate from your NMVS and install it ({keys})"
    if days < 0:
        return fail(name, f"{detail}: EXPIRED {-days:.0f} days ago", renew)
    if now < certificate.not_valid_before_utc:
        return fail(
            name,
            f"{detail}, but is valid only from {certificate.not_valid_before_utc:%Y-%m-%d %H:%M}",
            "check this PC's clock, or install the right certificate",
        )
    if days < CERTIFICATE_WARNING_DAYS:
        return warning(name, f"{detail}: in {days:.0f} days", renew)
    return ok(name, f"{detail} (in {days:.0f} days)")


def check_latency(samples: list[float], what: str) -> CheckResult:
    """The median round trip against the SLA (the first request, which also sets up the
    connection, is not among ``samples``)."""
    latency = statistics.median(samples)
    detail = f"round trip {latency:.0f} ms (median of {len(samples)} {what}), SLA {SLA_MS:.0f} ms"
    if latency > SLA_MS:
        return warning(
            "nmvs.latency",
            detail,
            "a slow link makes the counter wait: check the internet connection (Wi-Fi, 4G "
            "backup, bandwidth used by other PCs)",
        )
    return ok("nmvs.latency", detail)
