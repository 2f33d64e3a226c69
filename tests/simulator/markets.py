"""A small hand-made market and a settable clock shared by the simulator tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.simulator.market import BatchSpec, MarketData, ProductSpec, RequestHeader, UserSpec

GTIN = "05000456013482"
CIP_GTIN = "03400930000120"  # CIP13 3400930000120
WITHDRAWN_GTIN = "05000456099998"
IMT_GTIN = "05400000000010"
BATCH, EXPIRY = "00001", "261200"
PASSWORDS = {
    "SITE0001": "Secret-Pass1",
    "SITE0002": "Secret-Pass2",
    "EXPIRING": "Secret-Pass3",
    "OLDPASS1": "Secret-Pass4",
    "NEWTERMS": "Secret-Pass5",
    "BLOCKED1": "Secret-Pass6",
}
START = datetime(2025, 1, 31, 10, 0, tzinfo=UTC)

MARKET = MarketData(
    users=(
        UserSpec("PHARMA01", "SITE0001", PASSWORDS["SITE0001"]),
        UserSpec("PHARMA01", "SITE0002", PASSWORDS["SITE0002"]),
        UserSpec("PHARMA01", "EXPIRING", PASSWORDS["EXPIRING"], password_expires_in_days=5),
        UserSpec("PHARMA01", "OLDPASS1", PASSWORDS["OLDPASS1"], password_expired=True),
        UserSpec("PHARMA01", "NEWTERMS", PASSWORDS["NEWTERMS"], terms_to_accept_in_days=7),
        UserSpec("PHARMA01", "BLOCKED1", PASSWORDS["BLOCKED1"], terms_blocked=True),
    ),
    products=(
        ProductSpec(
            "GTIN",
            GTIN,
            (
                BatchSpec(BATCH, EXPIRY, ("0000000014", "0000000015", "abc-def/12", "S4", "S5")),
                BatchSpec("EXP1", "241100", ("EXPIRED01",)),
                BatchSpec("EOM1", "250100", ("ENDOFMONTH",)),
                BatchSpec("RCL1", "271231", ("RECALLED01",), recalled=True),
            ),
        ),
        ProductSpec("GTIN", CIP_GTIN, (BatchSpec("L0T", "270600", ("cip1", "cip2")),)),
        ProductSpec(
            "GTIN", WITHDRAWN_GTIN, (BatchSpec("W1", "271231", ("WITHDRAWN1",)),), withdrawn=True
        ),
        ProductSpec(
            "GTIN", IMT_GTIN, (BatchSpec("I1", "271231", ("IMT1", "IMT2")),), intermarket=True
        ),
    ),
)


class Clock:
    """An injected time source the tests move by hand."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def header(
    user: str = "SITE0001", trx: str = "0f3c9d2e7a514b0c8e11d2a3b4c5d6e7", **kw: str
) -> RequestHeader:
    return RequestHeader(
        "PHARMA01", user, kw.pop("password", PASSWORDS.get(user, "Wrong-Pass1")), trx, **kw
    )
