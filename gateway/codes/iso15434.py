"""ISO/IEC 15434 envelopes: IFA PPN codes (format 06, ANSI MH10.8.2 data identifiers) and GS1
data in format 05.

``[)>`` RS ``06`` GS ``9N``PPN GS ``1T``batch GS ``D``YYMMDD GS ``S``serial RS EOT, data
identifiers in any order; ``8P`` (GTIN/NTIN) and other identifiers may be present and are
ignored. RS, GS and EOT are real delimiters here, so a message whose control characters were
dropped is refused rather than guessed. The trailer (RS EOT) may be missing: it carries no data.
biip does not read this format, hence this small parser.
"""

from __future__ import annotations

import re

from gateway.codes.gs1 import GS, Reading, parse_gs1
from gateway.codes.pack import PackIdentifier
from gateway.codes.problems import ProblemCode, error
from gateway.codes.validation import PPN_LABELS, validate_pack

RS = "\x1e"
EOT = "\x04"
HEADER = "[)>"

_DATA_IDENTIFIER = re.compile(r"([0-9]{0,3}[A-Z])(.*)", re.DOTALL)  # ASCII digits only


def parse_iso15434(text: str, aim: str | None) -> Reading:
    """Read a message that starts with ``[)>``."""
    body = text[len(HEADER) :]
    if not body.startswith(RS):
        return Reading.refused(
            ProblemCode.GS_MISSING,
            "the [)> header is not followed by RS",
            "l'en-tête [)> n'est pas suivi de RS",
        )
    fmt, body = body[1:3], body[3:]
    if fmt not in ("05", "06"):
        return Reading.refused(
            ProblemCode.UNKNOWN_FORMAT,
            f"ISO/IEC 15434 format {fmt!r} is not a pack code",
            f"le format ISO/IEC 15434 {fmt!r} n'est pas un code de boîte",
        )
    if not body.startswith(GS):
        return Reading.refused(
            ProblemCode.GS_MISSING,
            f"format {fmt} is not followed by GS",
            f"le format {fmt} n'est pas suivi de GS",
        )
    body = body[1:]
    for trailer in (RS + EOT, RS, EOT):
        if body.endswith(trailer):
            body = body[: -len(trailer)]
            break
    if RS in body or EOT in body:
        return Reading.refused(
            ProblemCode.UNKNOWN_FORMAT,
            "more than one ISO/IEC 15434 format in one code",
            "plusieurs formats ISO/IEC 15434 dans un même code",
        )
    if fmt == "05":  # the envelope's GS arrived, so its fields are never re-cut
        return parse_gs1(body, aim, split_ais=None)
    return _parse_format_06(body, aim)


def _parse_format_06(body: str, aim: str | None) -> Reading:
    found: dict[str, list[str]] = {}
    for field in body.split(GS):
        if not field:
            continue
        match = _DATA_IDENTIFIER.fullmatch(field)
        if match is None:
            return Reading.refused(
                ProblemCode.UNKNOWN_FORMAT,
                f"no data identifier at {field[:4]!r}",
                f"aucun identifiant de données à {field[:4]!r}",
            )
        identifier, value = match.groups()
        # the same field twice with the same value is one field
        if identifier in PPN_LABELS and value not in found.setdefault(identifier, []):
            found[identifier].append(value)
    problems = [
        error(ProblemCode.MISSING_FIELD, f"{label.en} is missing", f"{label.fr} est absent")
        for identifier, label in PPN_LABELS.items()
        if identifier not in found
    ]
    problems += [
        error(
            ProblemCode.DUPLICATE_FIELD,
            f"data identifier {identifier} appears {len(values)} times",
            f"l'identifiant de données {identifier} apparaît {len(values)} fois",
        )
        for identifier, values in found.items()
        if len(values) > 1
    ]
    if problems:
        return Reading(None, tuple(problems))
    pack = PackIdentifier(
        scheme="PPN",
        product_code=found["9N"][0],
        batch=found["1T"][0],
        expiry=found["D"][0],
        serial=found["S"][0],
        aim=aim,
    )
    return Reading(pack, validate_pack(pack))
