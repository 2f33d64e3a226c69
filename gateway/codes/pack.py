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


PACK_KEYS = ("scheme", "product_code", "batch", "expiry", "serial", "nhrn", "aim", "keyed")
NHRN_KEYS = ("ai", "value")


class PackFormatError(ValueError):
    """A pack given as JSON (e.g. by an LGO over MQTT) is not well formed; the message names the
    field, ``fr`` says the same in French."""

    def __init__(self, message: str, fr: str = "") -> None:
        super().__init__(message)
        self.fr = fr


def _reject_unknown_keys(where: str, data: dict[Any, Any], keys: tuple[str, ...]) -> None:
    unknown = sorted(str(key) for key in data if key not in keys)
    if unknown:
        listed = ", ".join(keys)
        raise PackFormatError(
            f"{where}: unknown key {unknown[0]!r} (keys are {listed})",
            f"{where} : clé inconnue {unknown[0]!r} (les clés sont {listed})",
        )


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
    keyed: bool = False  # typed in by a person, not scanned (systems that count manual entry)

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
        if self.keyed:
            data["keyed"] = True
        return data

    @classmethod
    def from_json(cls, data: object) -> PackIdentifier:
        """Build from the JSON form of :meth:`to_json`; checks shape and types, not content.

        Content (check digits, charset, dates) is validated by :func:`gateway.codes.validate_pack`.
        """
        if not isinstance(data, dict):
            raise PackFormatError("pack must be a JSON object", "pack doit être un objet JSON")
        _reject_unknown_keys("pack", data, PACK_KEYS)
        for name in PACK_KEYS[:5]:
            if not isinstance(data.get(name), str):
                raise PackFormatError(
                    f"pack.{name} must be a string", f"pack.{name} doit être une chaîne"
                )
        scheme = data["scheme"]
        if scheme not in SCHEMES:
            raise PackFormatError(
                f"pack.scheme must be one of {', '.join(SCHEMES)}, not {scheme!r}",
                f"pack.scheme doit valoir {' ou '.join(SCHEMES)}, pas {scheme!r}",
            )
        nhrn = None
        raw_nhrn = data.get("nhrn")
        if raw_nhrn is not None:
            shape = '{"ai": "71x", "value": "..."}'
            if isinstance(raw_nhrn, dict):
                _reject_unknown_keys("pack.nhrn", raw_nhrn, NHRN_KEYS)
            if not (
                isinstance(raw_nhrn, dict)
                and all(isinstance(raw_nhrn.get(key), str) for key in NHRN_KEYS)
            ):
                raise PackFormatError(f"pack.nhrn must be {shape}", f"pack.nhrn doit être {shape}")
            nhrn = Nhrn(ai=raw_nhrn["ai"], value=raw_nhrn["value"])
        aim = data.get("aim")
        if aim is not None and not isinstance(aim, str):
            raise PackFormatError("pack.aim must be a string", "pack.aim doit être une chaîne")
        keyed = data.get("keyed", False)
        if not isinstance(keyed, bool):
            raise PackFormatError(
                "pack.keyed must be true or false", "pack.keyed doit valoir true ou false"
            )
        return cls(
            scheme=scheme,
            product_code=data["product_code"],
            batch=data["batch"],
            expiry=data["expiry"],
            serial=data["serial"],
            nhrn=nhrn,
            aim=aim,
            keyed=keyed,
        )
