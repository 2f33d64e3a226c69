"""The pack identifier: the unique identifier of one medicine pack, exactly as scanned.

This is the value every later stage (engine, NMVS link, MQTT) carries. It is never normalised:
the case of batch and serial, the raw ``YYMMDD`` expiry (day ``00`` included) and the product
code digits are kept byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Scheme = Literal["GTIN", "PPN"]
SCHEMES: tuple[Scheme, ...] = ("GTIN", "PPN")


class PackFormatError(ValueError):
    """A pack given as JSON (e.g. by an LGO over MQTT) is not well formed; the message names the field."""


@dataclass(frozen=True, slots=True)
class Nhrn:
    """A national healthcare reimbursement number carried in its own element (GS1 AI 710–717)."""

    ai: str
    value: str

    def to_json(self) -> dict[str, str]:
        return {"ai": self.ai, "value": self.value}


@dataclass(frozen=True, slots=True)
class PackIdentifier:
    scheme: Scheme
    product_code: str
    batch: str
    expiry: str
    serial: str
    nhrn: Nhrn | None = None
    aim: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """The pack's identity for the ledger and de-duplication: (scheme, product code, serial)."""
        return (self.scheme, self.product_code, self.serial)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "scheme": self.scheme,
            "product_code": self.product_code,
            "batch": self.batch,
            "expiry": self.expiry,
            "serial": self.serial,
        }
        if self.nhrn is not None:
            data["nhrn"] = self.nhrn.to_json()
        if self.aim is not None:
            data["aim"] = self.aim
        return data

    @classmethod
    def from_json(cls, data: object) -> PackIdentifier:
        """Build from the JSON form of :meth:`to_json`; checks shape and types, not content.

        Content (check digits, charset, dates) is validated by :func:`gateway.codes.validate_pack`.
        """
        if not isinstance(data, dict):
            raise PackFormatError("pack must be a JSON object")
        for name in ("scheme", "product_code", "batch", "expiry", "serial"):
            if not isinstance(data.get(name), str):
                raise PackFormatError(f"pack.{name} must be a string")
        scheme = data["scheme"]
        if scheme not in SCHEMES:
            raise PackFormatError(
                f"pack.scheme must be one of {', '.join(SCHEMES)}, not {scheme!r}"
            )
        nhrn = None
        raw_nhrn = data.get("nhrn")
        if raw_nhrn is not None:
            if not (
                isinstance(raw_nhrn, dict)
                and isinstance(raw_nhrn.get("ai"), str)
                and isinstance(raw_nhrn.get("value"), str)
            ):
                raise PackFormatError('pack.nhrn must be {"ai": "71x", "value": "..."}')
            nhrn = Nhrn(ai=raw_nhrn["ai"], value=raw_nhrn["value"])
        aim = data.get("aim")
        if aim is not None and not isinstance(aim, str):
            raise PackFormatError("pack.aim must be a string")
        return cls(
            scheme=scheme,
            product_code=data["product_code"],
            batch=data["batch"],
            expiry=data["expiry"],
            serial=data["serial"],
            nhrn=nhrn,
            aim=aim,
        )
