"""Problems found while decoding a scan: stable codes, severities and plain-language messages.

A problem of severity ``error`` means the scan must not be sent to the NMVS (it could raise a
false alert); ``warning`` means the pack was determined exactly but something deserves a look.
The codes are a public contract (MQTT, the ``decode`` command, the README table): add new
codes, never rename or repurpose one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class ProblemCode(StrEnum):
    BAD_CHECK_DIGIT = "BAD_CHECK_DIGIT"
    BAD_DATE = "BAD_DATE"
    BAD_CHARSET = "BAD_CHARSET"
    FIELD_TOO_LONG = "FIELD_TOO_LONG"
    FIELD_TOO_SHORT = "FIELD_TOO_SHORT"
    MISSING_FIELD = "MISSING_FIELD"
    DUPLICATE_FIELD = "DUPLICATE_FIELD"
    GS_MISSING = "GS_MISSING"
    LAYOUT_AMBIGUOUS = "LAYOUT_AMBIGUOUS"
    LAYOUT_CHANGED = "LAYOUT_CHANGED"
    SUSPECT_LAYOUT_MISMATCH = "SUSPECT_LAYOUT_MISMATCH"
    NOT_A_PACK_CODE = "NOT_A_PACK_CODE"
    UNKNOWN_FORMAT = "UNKNOWN_FORMAT"
    UNMAPPED_KEY = "UNMAPPED_KEY"
    SCAN_INTERRUPTED = "SCAN_INTERRUPTED"
    BAD_INPUT = "BAD_INPUT"
    BAD_REQUEST = "BAD_REQUEST"


@dataclass(frozen=True, slots=True)
class ProblemText:
    en: str
    fr: str
    when: str = "error"  # the severities the decoder gives it, for the documentation table


# THE table of problem codes (the README's "Problem codes" section is generated from it by
# catalogue_markdown() and a test keeps them equal). One sentence each, telling the pharmacist or
# technician what to do; {detail} names the field, character or key concerned.
CATALOGUE: dict[ProblemCode, ProblemText] = {
    ProblemCode.BAD_CHECK_DIGIT: ProblemText(
        en="A check digit is wrong ({detail}): the code was misread, scan the pack again.",
        fr="Une clé de contrôle est fausse ({detail}) : le code a été mal lu, scannez la boîte à nouveau.",
    ),
    ProblemCode.BAD_DATE: ProblemText(
        en="The expiry date is not a valid YYMMDD date ({detail}): scan the pack again.",
        fr="La date de péremption n'est pas une date AAMMJJ valide ({detail}) : scannez la boîte à nouveau.",
    ),
    ProblemCode.BAD_CHARSET: ProblemText(
        en="A field holds a character that cannot appear in a pack code ({detail}): check the scanner's keyboard country.",
        fr="Un champ contient un caractère impossible dans un code de boîte ({detail}) : vérifiez le pays de clavier du scanner.",
    ),
    ProblemCode.FIELD_TOO_LONG: ProblemText(
        en="A field is longer than allowed ({detail}): the separators were probably lost, check the scanner sends GS.",
        fr="Un champ dépasse la longueur permise ({detail}) : les séparateurs ont sans doute été perdus, vérifiez que le scanner transmet GS.",
    ),
    ProblemCode.FIELD_TOO_SHORT: ProblemText(
        en="A field is shorter than its fixed length ({detail}): the scan was probably cut short, scan the pack again.",
        fr="Un champ est plus court que sa longueur fixe ({detail}) : le scan a sans doute été tronqué, scannez la boîte à nouveau.",
    ),
    ProblemCode.MISSING_FIELD: ProblemText(
        en="The code lacks a required field ({detail}): this pack cannot be verified from this scan.",
        fr="Le code ne contient pas un champ obligatoire ({detail}) : cette boîte ne peut pas être vérifiée avec ce scan.",
    ),
    ProblemCode.DUPLICATE_FIELD: ProblemText(
        en="A field appears twice ({detail}): scan the pack again; if it repeats, set the pack aside.",
        fr="Un champ apparaît deux fois ({detail}) : scannez à nouveau ; si cela se répète, mettez la boîte de côté.",
    ),
    ProblemCode.GS_MISSING: ProblemText(
        en="The scanner did not send the group separators ({detail}): enable 'transmit GS / FNC1' in the scanner settings.",
        fr="Le scanner n'a pas transmis les séparateurs de groupe ({detail}) : activez « transmettre GS / FNC1 » dans ses réglages.",
        when="warning when exactly one split of the fields is a valid pack (it is used), error otherwise",
    ),
    ProblemCode.LAYOUT_AMBIGUOUS: ProblemText(
        en="The scanner's keyboard country could not be told apart ({detail}): set the scanner layout in the configuration.",
        fr="Le pays de clavier du scanner est ambigu ({detail}) : indiquez la disposition du scanner dans la configuration.",
    ),
    ProblemCode.LAYOUT_CHANGED: ProblemText(
        en="The scanner no longer types like the keyboard country it has shown so far ({detail}): if it was reconfigured or replaced, scan other packs and the gateway learns the new one; otherwise set this pack aside.",
        fr="Le scanner ne tape plus selon le pays de clavier montré jusqu'ici ({detail}) : s'il a été reconfiguré ou remplacé, scannez d'autres boîtes et la passerelle apprend le nouveau ; sinon, mettez cette boîte de côté.",
        when="error while the change is unconfirmed; warning on the scan that confirms it (then used)",
    ),
    ProblemCode.SUSPECT_LAYOUT_MISMATCH: ProblemText(
        en="The characters look like a keyboard-country mix-up ({detail}): set the scanner's keyboard country in the gateway configuration, or calibrate the scanner (nmvs-gateway selftest --calibrate).",
        fr="Les caractères évoquent une confusion de clavier ({detail}) : indiquez le pays de clavier du scanner dans la configuration de la passerelle, ou calibrez le scanner (nmvs-gateway selftest --calibrate).",
    ),
    ProblemCode.NOT_A_PACK_CODE: ProblemText(
        en="This is not a medicine pack identifier ({detail}): scan the pack's DataMatrix code.",
        fr="Ce n'est pas l'identifiant d'une boîte de médicament ({detail}) : scannez le code DataMatrix de la boîte.",
    ),
    ProblemCode.UNKNOWN_FORMAT: ProblemText(
        en="The code format is not recognised ({detail}): scan the pack's DataMatrix code.",
        fr="Le format du code n'est pas reconnu ({detail}) : scannez le code DataMatrix de la boîte.",
    ),
    ProblemCode.UNMAPPED_KEY: ProblemText(
        en="The scanner typed a key that its keyboard country does not map ({detail}): check the scanner's keyboard country.",
        fr="Le scanner a tapé une touche inconnue pour son pays de clavier ({detail}) : vérifiez le pays de clavier du scanner.",
    ),
    ProblemCode.SCAN_INTERRUPTED: ProblemText(
        en="The scan was cut short ({detail}): scan the pack again.",
        fr="Le scan a été interrompu ({detail}) : scannez la boîte à nouveau.",
    ),
    ProblemCode.BAD_INPUT: ProblemText(
        en="The input could not be read ({detail}): send one scan or one JSON key event per line.",
        fr="L'entrée est illisible ({detail}) : envoyez un scan ou un événement clavier JSON par ligne.",
    ),
    ProblemCode.BAD_REQUEST: ProblemText(
        en="The request is not valid ({detail}): correct it and send it again.",
        fr="La requête n'est pas valide ({detail}) : corrigez-la et renvoyez-la.",
    ),
}


def catalogue_markdown() -> str:
    """The README table of problem codes, generated from :data:`CATALOGUE`."""
    lines = ["| code | severity | message (en) | message (fr) |", "|---|---|---|---|"]
    for code, text in CATALOGUE.items():
        lines.append(f"| `{code.value}` | {text.when} | {text.en} | {text.fr} |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Problem:
    """``detail`` names the field, character or key concerned; ``detail_fr`` is its French
    wording (the English one is used when there is none). Problems compare on code, severity
    and detail."""

    code: ProblemCode
    severity: Severity
    detail: str = ""
    detail_fr: str = field(default="", compare=False)

    @property
    def message(self) -> str:
        return self.text("en")

    def text(self, language: str = "en") -> str:
        template = CATALOGUE[self.code]
        if language == "fr":
            return template.fr.format(detail=self.detail_fr or self.detail or self.code.value)
        return template.en.format(detail=self.detail or self.code.value)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "message": self.message,
            "message_fr": self.text("fr"),
            "detail": self.detail,
        }


def error(code: ProblemCode, detail: str = "", fr: str = "") -> Problem:
    return Problem(code, Severity.ERROR, detail, fr)


def warning(code: ProblemCode, detail: str = "", fr: str = "") -> Problem:
    return Problem(code, Severity.WARNING, detail, fr)


def has_error(problems: tuple[Problem, ...] | list[Problem]) -> bool:
    return any(p.severity is Severity.ERROR for p in problems)
