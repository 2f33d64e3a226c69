"""Advice the engine attaches to a result, in the same JSON shape as decode problems.

A result's ``problems`` list carries the decode problems of the scan plus, when the engine
answered instead of the NMVS (or must warn), one notice saying what the pharmacist should do.
Codes are a public contract: add, never rename.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class NoticeCode(StrEnum):
    ALREADY_DONE_HERE = "ALREADY_DONE_HERE"
    PACK_NOT_ACTIVE = "PACK_NOT_ACTIVE"
    UNDO_NOT_ALLOWED = "UNDO_NOT_ALLOWED"
    NMVS_OFFLINE = "NMVS_OFFLINE"
    CHANGE_UNCONFIRMED = "CHANGE_UNCONFIRMED"
    NMVS_ANSWER = "NMVS_ANSWER"
    GAVE_UP = "GAVE_UP"


_TEXTS: dict[NoticeCode, tuple[str, str]] = {
    NoticeCode.ALREADY_DONE_HERE: (
        "This gateway already decommissioned this pack ({detail}); it was not sent again, which would raise an alert.",
        "Cette passerelle a déjà désactivé cette boîte ({detail}) ; elle n'a pas été renvoyée, ce qui aurait déclenché une alerte.",
    ),
    NoticeCode.PACK_NOT_ACTIVE: (
        "The pack is not active in the NMVS ({detail}): do not supply it, set it aside and report it to your verification organisation; it may be falsified.",
        "La boîte n'est pas active dans le NMVS ({detail}) : ne la délivrez pas, mettez-la de côté et signalez-la à votre organisation de vérification ; elle peut être falsifiée.",
    ),
    NoticeCode.UNDO_NOT_ALLOWED: (
        "The undo was not sent because it would raise an alert ({detail}); do not return the pack to saleable stock.",
        "L'annulation n'a pas été envoyée car elle déclencherait une alerte ({detail}) ; ne remettez pas la boîte en stock vendable.",
    ),
    NoticeCode.NMVS_OFFLINE: (
        "The NMVS cannot be reached ({detail}): you may supply the pack (DR 2016/161 Art. 29); decommissions are queued and sent when the link returns.",
        "Le NMVS est injoignable ({detail}) : vous pouvez délivrer la boîte (RD 2016/161 art. 29) ; les désactivations sont mises en file et envoyées au retour de la liaison.",
    ),
    NoticeCode.CHANGE_UNCONFIRMED: (
        "The answer was lost; a verify shows the pack {detail}, but nothing proves this gateway did it, so it will not be undone automatically.",
        "La réponse a été perdue ; une vérification montre la boîte {detail}, sans preuve que cette passerelle l'a fait : elle ne sera pas annulée automatiquement.",
    ),
    NoticeCode.NMVS_ANSWER: ("{detail}", "{detail}"),
    NoticeCode.GAVE_UP: (
        "No answer from the NMVS before the retry horizon ({detail}): handle this pack manually in the NMVS portal.",
        "Pas de réponse du NMVS avant la limite de réessai ({detail}) : traitez cette boîte manuellement dans le portail NMVS.",
    ),
}


@dataclass(frozen=True, slots=True)
class Notice:
    code: NoticeCode
    detail: str
    detail_fr: str | None = None
    severity: str = "error"

    def to_json(self) -> dict[str, Any]:
        en, fr = _TEXTS[self.code]
        return {
            "code": self.code.value,
            "severity": self.severity,
            "message": en.format(detail=self.detail),
            "message_fr": fr.format(detail=self.detail_fr or self.detail),
            "detail": self.detail,
        }
