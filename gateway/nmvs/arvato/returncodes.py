"""The NMVS return-code catalogue: what every code means for the gateway and the pharmacist.

One table, one row per code (the Level-5 set; product, batch and pack codes; transaction and
request codes; authentication, account, PKI and technical codes; France MVO's table for
pharmacies; the v5 no-alert twins and the header notification codes). Each row says whether the
code is a Level-5 alert and its EU Hub code, how the gateway treats it (:class:`CodeClass`),
whether retrying can help, whether a state change answered with it may nevertheless have been
applied (``ambiguous``), and a short message for the pharmacist in English and French.

The client (``arvato``), the simulator and the engine all read this table, so an alert flag or
a Hub code changes in one place. Values no source confirms (inferred from the other codes) are
commented ``inferred`` on their row: check them against the NMVO's interface specification.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.vocabulary import AnswerClass


class CodeClass(StrEnum):
    """How the gateway treats a code (our classification: no NMVS document gives one)."""

    OK = "OK"  # processed; still look at the pack state
    ALERT = "ALERT"  # Level-5 alert raised: do not supply, never auto-retry
    REFUSED = "REFUSED"  # business refusal without alert: show it, no retry
    DATA = "DATA"  # request data or format wrong (bad scan or our bug): no retry
    OPERATOR = "OPERATOR"  # account, certificate, T&C or configuration: pause and notify
    TRANSIENT = "TRANSIENT"  # retry with backoff; reconcile state changes first when ambiguous
    PENDING = "PENDING"  # bulk result not ready yet: poll again
    INFO = "INFO"  # informational


@dataclass(frozen=True, slots=True)
class ReturnCodeInfo:
    code: str
    code_class: CodeClass
    alert: bool
    hub_code: str | None
    retryable: bool
    ambiguous: bool
    en: str
    fr: str
    # AU_01/AU_06: every further call with the same credentials brings the account closer to a
    # lockout, so the client refuses to send until it is reconfigured.
    stop_sending: bool = False
    rate_limited: bool = False
    known: bool = True

    def message(self, language: str) -> str:
        """The pharmacist's message in ``fr`` / ``fra`` or English (anything else)."""
        return self.fr if language.lower() in ("fr", "fra", "fre") else self.en

    @property
    def answer_class(self) -> AnswerClass:
        """What the code means in the gateway's own terms (see :func:`_answer_class`)."""
        return _answer_class(self)

    @property
    def needs_operator(self) -> bool:
        return self.code_class is CodeClass.OPERATOR


def _row(
    code: str,
    code_class: CodeClass,
    en: str,
    fr: str,
    *,
    hub: str | None = None,
    ambiguous: bool = False,
    stop_sending: bool = False,
    rate_limited: bool = False,
) -> ReturnCodeInfo:
    return ReturnCodeInfo(
        code=code,
        code_class=code_class,
        alert=code_class is CodeClass.ALERT,
        hub_code=hub,
        retryable=code_class in (CodeClass.TRANSIENT, CodeClass.PENDING),
        ambiguous=ambiguous,
        en=en,
        fr=fr,
        stop_sending=stop_sending,
        rate_limited=rate_limited,
    )


C = CodeClass

_NO_ALERT_EN = " (no alert raised)"
_NO_ALERT_FR = " (aucune alerte levée)"

_ROWS: tuple[ReturnCodeInfo, ...] = (
    _row(
        "NMVS_SUCCESS",
        C.OK,
        "Processed. Check the pack state before supplying.",
        "Traité. Vérifiez l'état de la boîte avant de la délivrer.",
    ),
    # --- the Level-5 set (Hub codes confirmed unless marked) and their v5 twins -------------
    _row(
        "NMVS_NC_PC_02",
        C.ALERT,
        "ALERT: serial number unknown for this product. Do not supply; set the pack aside.",
        "ALERTE : numéro de série inconnu pour ce produit. Ne pas délivrer ; mettez la boîte de côté.",
        hub="A3",
    ),
    _row(
        "NMVS_NC_PC_14",
        C.REFUSED,
        "Serial number unknown for this product" + _NO_ALERT_EN + ". Do not supply.",
        "Numéro de série inconnu pour ce produit" + _NO_ALERT_FR + ". Ne pas délivrer.",
    ),
    _row(
        "NMVS_FE_LOT_03",
        C.ALERT,
        "ALERT: batch unknown for this product. Check the scanner, set the pack aside.",
        "ALERTE : lot inconnu pour ce produit. Vérifiez le scanner, mettez la boîte de côté.",
        hub="A2",
    ),
    _row(
        "NMVS_FE_LOT_15",
        C.REFUSED,
        "Batch unknown for this product" + _NO_ALERT_EN + ". Do not supply.",
        "Lot inconnu pour ce produit" + _NO_ALERT_FR + ". Ne pas délivrer.",
    ),
    _row(
        "NMVS_FE_LOT_12",
        C.ALERT,
        "ALERT: expiry date does not match the batch. Check the scanner, set the pack aside.",
        "ALERTE : la date de péremption ne correspond pas au lot. Vérifiez le scanner, mettez la boîte de côté.",
        hub="A52",
    ),
    _row(
        "NMVS_FE_LOT_17",
        C.REFUSED,
        "Expiry date does not match the batch" + _NO_ALERT_EN + ". Do not supply.",
        "La date de péremption ne correspond pas au lot" + _NO_ALERT_FR + ". Ne pas délivrer.",
    ),
    _row(
        "NMVS_FE_LOT_13",
        C.ALERT,
        "ALERT: this serial number belongs to another batch. Check the scanner, set the pack aside.",
        "ALERTE : ce numéro de série appartient à un autre lot. Vérifiez le scanner, mettez la boîte de côté.",
        hub="A68",
    ),
    _row(
        "NMVS_FE_LOT_18",
        C.REFUSED,
        "This serial number belongs to another batch" + _NO_ALERT_EN + ". Do not supply.",
        "Ce numéro de série appartient à un autre lot" + _NO_ALERT_FR + ". Ne pas délivrer.",
    ),
    _row(
        "NMVS_NC_PCK_06",
        C.ALERT,
        "ALERT: the undo does not match the pack's current status.",
        "ALERTE : l'annulation ne correspond pas au statut actuel de la boîte.",
        hub="A24",
    ),
    _row(
        "NMVS_NC_PCK_29",
        C.REFUSED,
        "The undo does not match the pack's current status" + _NO_ALERT_EN + ".",
        "L'annulation ne correspond pas au statut actuel de la boîte" + _NO_ALERT_FR + ".",
    ),
    _row(
        "NMVS_NC_PCK_19",
        C.ALERT,
        "ALERT: the pack is already in the requested status.",
        "ALERTE : la boîte est déjà dans le statut demandé.",
        hub="A7",
    ),
    _row(
        "NMVS_NC_PCK_28",
        C.REFUSED,
        "The pack is already in the requested status" + _NO_ALERT_EN + ".",
        "La boîte est déjà dans le statut demandé" + _NO_ALERT_FR + ".",
    ),
    # PCK_20/PCK_21 Hub codes: the UK/EMVO lists give none (A24 is only inferred); France
    # MVO's table given to pharmacies (confirmed) says A4 and A5. We follow France MVO.
    _row(
        "NMVS_NC_PCK_20",
        C.ALERT,
        "ALERT: the 10-day limit for undoing this operation has passed.",
        "ALERTE : le délai de 10 jours pour annuler cette opération est dépassé.",
        hub="A4",
    ),
    _row(
        "NMVS_NC_PCK_21",
        C.ALERT,
        "ALERT: only the user who made the operation may undo it.",
        "ALERTE : seul l'utilisateur qui a fait l'opération peut l'annuler.",
        hub="A5",
    ),
    _row(
        "NMVS_NC_PCK_22",
        C.ALERT,
        "ALERT: the pack is already deactivated. Do not supply.",
        "ALERTE : la boîte est déjà désactivée. Ne pas délivrer.",
        hub="A24",
    ),
    _row(
        "NMVS_NC_PCK_30",
        C.REFUSED,
        "The pack is already deactivated" + _NO_ALERT_EN + ". Do not supply.",
        "La boîte est déjà désactivée" + _NO_ALERT_FR + ". Ne pas délivrer.",
    ),
    # PCK_27 → A24: inferred from the other lists, confirmed by France MVO's table.
    _row(
        "NMVS_NC_PCK_27",
        C.ALERT,
        "ALERT: the status change could not be made (pack in another inactive status).",
        "ALERTE : le changement de statut est impossible (boîte dans un autre statut inactif).",
        hub="A24",
    ),
    _row(
        "NMVS_NC_PCK_31",
        C.REFUSED,
        "The status change could not be made" + _NO_ALERT_EN + ".",
        "Le changement de statut est impossible" + _NO_ALERT_FR + ".",
    ),
    # --- product codes -------------------------------------------------------------------------
    # PC_01: no L5 in the UK list (inferred no alert); France MVO's table lists it with Hub #A1.
    _row(
        "NMVS_NC_PC_01",
        C.REFUSED,
        "Product code unknown. Check the scan; do not supply without checking.",
        "Code produit inconnu. Vérifiez le scan ; ne pas délivrer sans vérification.",
    ),
    _row(
        "NMVS_NC_PC_03",
        C.REFUSED,
        "The product is assigned to another client.",
        "Le produit est attribué à un autre client.",
    ),
    _row(
        "NMVS_NC_PC_04",
        C.REFUSED,
        "The product is already unlocked on the EU Hub.",
        "Le produit est déjà débloqué sur le Hub européen.",
    ),
    _row(
        "NMVS_NC_PC_05",
        C.REFUSED,
        "Product master data mismatch.",
        "Incohérence des données de référence du produit.",
    ),
    _row(
        "NMVS_NC_PC_06",
        C.REFUSED,
        "Product code not available in the system" + _NO_ALERT_EN + ".",
        "Code produit non disponible dans le système" + _NO_ALERT_FR + ".",
    ),
    _row(
        "NMVS_NC_PC_10",
        C.DATA,
        "A GTIN is not allowed for this national product: scan the national code.",
        "Un GTIN n'est pas autorisé pour ce produit national : scannez le code national.",
    ),
    _row(
        "NMVS_NC_PC_11",
        C.DATA,
        "The national reimbursement number (NHRN) is invalid. Scan the pack again.",
        "Le numéro national de remboursement (NHRN) est invalide. Scannez la boîte à nouveau.",
    ),
    # --- batch codes (LOT_01/06/08 "no alert" inferred) -----------------------------------------
    _row(
        "NMVS_FE_LOT_01",
        C.REFUSED,
        "This batch has been RECALLED. Do not supply.",
        "Ce lot a été RAPPELÉ. Ne pas délivrer.",
    ),
    _row(
        "NMVS_FE_LOT_02",
        C.REFUSED,
        "The batch exists with a different expiry date.",
        "Le lot existe avec une autre date de péremption.",
    ),
    _row(
        "NMVS_FE_LOT_04",
        C.REFUSED,
        "The batch exists with a different expiry date.",
        "Le lot existe avec une autre date de péremption.",
    ),
    _row(
        "NMVS_FE_LOT_05",
        C.REFUSED,
        "The batch is not locked.",
        "Le lot n'est pas bloqué.",
    ),
    _row(
        "NMVS_FE_LOT_06",
        C.REFUSED,
        "The expiry date entered does not match the stored one.",
        "La date de péremption saisie ne correspond pas à celle enregistrée.",
    ),
    _row(
        "NMVS_FE_LOT_07",
        C.DATA,
        "The expiry date is not a valid value. Scan the pack again.",
        "La date de péremption n'est pas valide. Scannez la boîte à nouveau.",
    ),
    _row(
        "NMVS_FE_LOT_08",
        C.REFUSED,
        "This batch or product has been WITHDRAWN. Do not supply.",
        "Ce lot ou ce produit a été RETIRÉ. Ne pas délivrer.",
    ),
    # --- pack codes (the "no alert" of PCK_01–18 and PCK_23 is inferred) ----------------------
    _row(
        "NMVS_NC_PCK_01",
        C.REFUSED,
        "The pack cannot be supplied in its current status.",
        "La boîte ne peut pas être délivrée dans son statut actuel.",
    ),
    _row(
        "NMVS_NC_PCK_02",
        C.REFUSED,
        "The pack has EXPIRED. Do not supply.",
        "La boîte est PÉRIMÉE. Ne pas délivrer.",
    ),
    _row(
        "NMVS_NC_PCK_03",
        C.REFUSED,
        "The pack cannot be supplied.",
        "La boîte ne peut pas être délivrée.",
    ),
    _row(
        "NMVS_NC_PCK_04",
        C.REFUSED,
        "The pack was not dispensed, so the dispense cannot be undone.",
        "La boîte n'a pas été délivrée : la délivrance ne peut pas être annulée.",
    ),
    _row(
        "NMVS_NC_PCK_05",
        C.REFUSED,
        "The time allowed to undo the dispense has passed.",
        "Le délai pour annuler la délivrance est dépassé.",
    ),
    _row(
        "NMVS_NC_PCK_07",
        C.REFUSED,
        "The pack is not exported.",
        "La boîte n'est pas exportée.",
    ),
    _row(
        "NMVS_NC_PCK_08",
        C.REFUSED,
        "The pack is already locked for dispensing.",
        "La boîte est déjà bloquée pour la délivrance.",
    ),
    _row(
        "NMVS_NC_PCK_09",
        C.REFUSED,
        "The batches of these serial numbers have expired.",
        "Les lots de ces numéros de série sont périmés.",
    ),
    _row(
        "NMVS_NC_PCK_11",
        C.REFUSED,
        "The pack is already dispensed, exported or destroyed.",
        "La boîte est déjà délivrée, exportée ou détruite.",
    ),
    _row(
        "NMVS_NC_PCK_13",
        C.REFUSED,
        "The time allowed to undo the destruction has passed.",
        "Le délai pour annuler la destruction est dépassé.",
    ),
    _row(
        "NMVS_NC_PCK_14",
        C.REFUSED,
        "The pack is not locked.",
        "La boîte n'est pas bloquée.",
    ),
    _row(
        "NMVS_NC_PCK_15",
        C.REFUSED,
        "The product is locked because of a notified takeover.",
        "Le produit est bloqué à la suite d'une reprise notifiée.",
    ),
    _row(
        "NMVS_NC_PCK_16",
        C.REFUSED,
        "The product is not locked.",
        "Le produit n'est pas bloqué.",
    ),
    _row(
        "NMVS_NC_PCK_17",
        C.REFUSED,
        "None of the serial numbers could be validated.",
        "Aucun des numéros de série n'a pu être validé.",
    ),
    _row(
        "NMVS_NC_PCK_18",
        C.REFUSED,
        "The pack has an exclusive property.",
        "La boîte a une propriété exclusive.",
    ),
    _row(
        "NMVS_NC_PCK_23",
        C.REFUSED,
        "You already deactivated this pack; the repeated scan was registered. Do not scan it again.",
        "Vous avez déjà désactivé cette boîte ; le nouveau scan est enregistré. Ne la scannez plus.",
    ),
    _row(
        "NMVS_NC_PCK_24",
        C.INFO,
        "At least one serial number of the request could not be processed.",
        "Au moins un numéro de série de la demande n'a pas pu être traité.",
    ),
    _row(
        "NMVS_NC_PCK_25",
        C.INFO,
        "No history is available for this pack.",
        "Aucun historique n'est disponible pour cette boîte.",
    ),
    _row(
        "NMVS_FE_GR_01",
        C.DATA,
        "Invalid product code. Scan the pack again.",
        "Code produit invalide. Scannez la boîte à nouveau.",
    ),
    _row(
        "NMVS_FE_GR_02",
        C.DATA,
        "The check digit of the PZN is wrong. Scan the pack again.",
        "La clé de contrôle du PZN est fausse. Scannez la boîte à nouveau.",
    ),
    _row(
        "NMVS_FE_GR_03",
        C.DATA,
        "The product code prefix does not match the country.",
        "Le préfixe du code produit ne correspond pas au pays.",
    ),
    _row(
        "NMVS_FE_GR_04",
        C.DATA,
        "Invalid product code. Scan the pack again.",
        "Code produit invalide. Scannez la boîte à nouveau.",
    ),
    # --- transaction / request codes ----------------------------------------------------------
    _row(
        "NMVS_FE_TX_01",
        C.REFUSED,
        "The undo refers to another transaction than the dispense.",
        "L'annulation fait référence à une autre transaction que la délivrance.",
    ),
    _row(
        "NMVS_FE_TX_02",
        C.PENDING,
        "The bulk result is not ready yet.",
        "Le résultat de l'envoi groupé n'est pas encore prêt.",
    ),
    _row(
        "NMVS_FE_TX_03",
        C.REFUSED,
        "The undo refers to another transaction than the destruction.",
        "L'annulation fait référence à une autre transaction que la destruction.",
    ),
    _row(
        "NMVS_FE_TX_04",
        C.REFUSED,
        "The transaction number does not match the upload.",
        "Le numéro de transaction ne correspond pas au chargement.",
    ),
    _row(
        "NMVS_FE_TX_05",
        C.REFUSED,
        "The referenced transaction cannot be undone.",
        "La transaction référencée ne peut pas être annulée.",
    ),
    _row(
        "NMVS_TE_TX_01",
        C.REFUSED,
        "This transaction number was already used.",
        "Ce numéro de transaction a déjà été utilisé.",
    ),
    _row(
        "NMVS_TE_TX_02",
        C.REFUSED,
        "This transaction number was already used for an import.",
        "Ce numéro de transaction a déjà été utilisé pour un import.",
    ),
    _row(
        "NMVS_FE_REQ_01",
        C.DATA,
        "Overwriting is not allowed.",
        "L'écrasement n'est pas autorisé.",
    ),
    _row(
        "NMVS_FE_REQ_02",
        C.DATA,
        "The data do not match the request type.",
        "Les données ne correspondent pas au type de demande.",
    ),
    _row(
        "NMVS_FE_BR_01",
        C.REFUSED,
        "This operation is not permitted for this business process.",
        "Cette opération n'est pas permise pour ce processus.",
    ),
    # --- authentication, account, PKI ----------------------------------------------------------
    _row(
        "NMVS_FE_AU_01",
        C.OPERATOR,
        "NMVS login refused (user or password). Sending stopped to avoid locking the account: fix the credentials.",
        "Connexion NMVS refusée (utilisateur ou mot de passe). Envois arrêtés pour ne pas bloquer le compte : corrigez les identifiants.",
        stop_sending=True,
    ),
    _row(
        "NMVS_FE_AU_06",
        C.OPERATOR,
        "NMVS login refused (user or password). Sending stopped to avoid locking the account: fix the credentials.",
        "Connexion NMVS refusée (utilisateur ou mot de passe). Envois arrêtés pour ne pas bloquer le compte : corrigez les identifiants.",
        stop_sending=True,
    ),
    _row(
        "NMVS_FE_AU_02",
        C.OPERATOR,
        "The NMVS user is locked. Contact your NMVO.",
        "L'utilisateur NMVS est bloqué. Contactez votre NMVO.",
    ),
    _row(
        "NMVS_FE_AU_05",
        C.OPERATOR,
        "The NMVS account is blocked after too many failed logins. Contact your NMVO.",
        "Le compte NMVS est bloqué après trop d'échecs de connexion. Contactez votre NMVO.",
    ),
    _row(
        "NMVS_FE_AU_03",
        C.OPERATOR,
        "NMVS access refused (general infringement). Contact your NMVO.",
        "Accès NMVS refusé (infraction générale). Contactez votre NMVO.",
    ),
    _row(
        "NMVS_FE_AU_04",
        C.OPERATOR,
        "The NMVS client does not exist: check the client login id.",
        "Le client NMVS n'existe pas : vérifiez l'identifiant client.",
    ),
    _row(
        "NMVS_FE_AU_07",
        C.OPERATOR,
        "The NMVS client does not match the user: check the configuration.",
        "Le client NMVS ne correspond pas à l'utilisateur : vérifiez la configuration.",
    ),
    _row(
        "NMVS_FE_AU_08",
        C.REFUSED,
        "No rights for this product.",
        "Aucun droit pour ce produit.",
    ),
    _row(
        "NMVS_FE_AU_09",
        C.REFUSED,
        "No rights for this serial number.",
        "Aucun droit pour ce numéro de série.",
    ),
    _row(
        "NMVS_FE_AU_12",
        C.REFUSED,
        "No rights for this process.",
        "Aucun droit pour ce processus.",
    ),
    _row(
        "NMVS_FE_AU_15",
        C.REFUSED,
        "No mandate for this operation.",
        "Aucun mandat pour cette opération.",
    ),
    _row(
        "NMVS_FE_AU_10",
        C.OPERATOR,
        "The current NMVS password given for the change is wrong.",
        "Le mot de passe NMVS actuel donné pour le changement est faux.",
    ),
    _row(
        "NMVS_FE_AU_11",
        C.OPERATOR,
        "The NMVS password has expired or is initial: set a new password.",
        "Le mot de passe NMVS a expiré ou est initial : définissez un nouveau mot de passe.",
    ),
    _row(
        "NMVS_FE_AU_13",
        C.OPERATOR,
        "Invalid EU Hub data. Contact your NMVO.",
        "Données Hub européen invalides. Contactez votre NMVO.",
    ),
    _row(
        "NMVS_FE_AU_14",
        C.OPERATOR,
        "This NMVS interface is not permitted now.",
        "Cette interface NMVS n'est pas autorisée actuellement.",
    ),
    _row(
        "NMVS_FE_AU_17",
        C.OPERATOR,
        "The NMVS login data are invalid: check the configuration.",
        "Les données de connexion NMVS sont invalides : vérifiez la configuration.",
    ),
    _row(
        "NMVS_FE_AU_23",
        C.OPERATOR,
        "New NMVS terms and conditions were not accepted in time: accept them to restore access.",
        "Les nouvelles conditions d'utilisation NMVS n'ont pas été acceptées à temps : acceptez-les pour rétablir l'accès.",
    ),
    _row(
        "NMVS_FE_AU_24",
        C.OPERATOR,
        "Password change not allowed: the new password is already assigned.",
        "Changement de mot de passe refusé : le nouveau mot de passe est déjà attribué.",
    ),
    _row(
        "NMVS_FE_PKI_01",
        C.OPERATOR,
        "The NMVS client certificate has expired: renew it.",
        "Le certificat client NMVS a expiré : renouvelez-le.",
    ),
    _row(
        "NMVS_FE_PKI_05",
        C.OPERATOR,
        "No NMVS client certificate: install one.",
        "Aucun certificat client NMVS : installez-en un.",
    ),
    _row(
        "NMVS_FE_PKI_06",
        C.OPERATOR,
        "No valid NMVS client certificate: renew it.",
        "Aucun certificat client NMVS valide : renouvelez-le.",
    ),
    _row(
        "NMVS_FE_PKI_07",
        C.OPERATOR,
        "No new NMVS client certificate is available.",
        "Aucun nouveau certificat client NMVS n'est disponible.",
    ),
    _row(
        "NMVS_FE_PKI_08",
        C.OPERATOR,
        "No NMVS client certificate on the server.",
        "Aucun certificat client NMVS sur le serveur.",
    ),
    _row(
        "NMVS_FE_PKI_09",
        C.OPERATOR,
        "The NMVS client certificate is already validated.",
        "Le certificat client NMVS est déjà validé.",
    ),
    _row(
        "NMVS_FE_PMS_02",
        C.OPERATOR,
        "The new NMVS password is the same as the old one.",
        "Le nouveau mot de passe NMVS est identique à l'ancien.",
    ),
    _row(
        "NMVS_FE_PMS_03",
        C.OPERATOR,
        "The new NMVS password was used among the last 20.",
        "Le nouveau mot de passe NMVS fait partie des 20 derniers.",
    ),
    _row(
        "NMVS_FE_PMS_04",
        C.OPERATOR,
        "The new NMVS password violates the password policy.",
        "Le nouveau mot de passe NMVS ne respecte pas la politique de mots de passe.",
    ),
    _row(
        "NMVS_NC_PMS_23",
        C.INFO,
        "The terms and conditions are already confirmed.",
        "Les conditions d'utilisation sont déjà confirmées.",
    ),
    _row(
        "NMVS_NC_PMS_24",
        C.INFO,
        "No terms and conditions to confirm.",
        "Aucune condition d'utilisation à confirmer.",
    ),
    # --- technical codes ---------------------------------------------------------------------
    # TE_XM/TE_JS: our request was malformed. The client raises these as permanent (our bug).
    _row(
        "NMVS_TE_XM_01",
        C.DATA,
        "The NMVS rejected the request as invalid XML (gateway fault): contact support.",
        "Le NMVS a rejeté la demande comme XML invalide (erreur de la passerelle) : contactez le support.",
    ),
    _row(
        "NMVS_TE_XM_02",
        C.DATA,
        "The NMVS rejected the request format (gateway fault): contact support.",
        "Le NMVS a rejeté le format de la demande (erreur de la passerelle) : contactez le support.",
    ),
    _row(
        "NMVS_TE_JS_01",
        C.DATA,
        "The NMVS rejected the request as invalid JSON (gateway fault): contact support.",
        "Le NMVS a rejeté la demande comme JSON invalide (erreur de la passerelle) : contactez le support.",
    ),
    _row(
        "NMVS_TE_JS_02",
        C.DATA,
        "The NMVS rejected the request format (gateway fault): contact support.",
        "Le NMVS a rejeté le format de la demande (erreur de la passerelle) : contactez le support.",
    ),
    _row(
        "NMVS_TE_REQ_02",
        C.OPERATOR,
        "No NMVS service at the configured address: check the endpoint URL.",
        "Aucun service NMVS à l'adresse configurée : vérifiez l'URL du point d'accès.",
    ),
    # Ambiguous: the NMVS answered, but a state change may still have been applied, so the
    # engine reconciles by verify. Whether TI_RT_01 is ambiguous is unclear; we keep the safer
    # choice.
    _row(
        "NMVS_ERROR",
        C.TRANSIENT,
        "NMVS technical error: the result will be checked and the operation retried.",
        "Erreur technique du NMVS : le résultat sera vérifié et l'opération relancée.",
        ambiguous=True,
    ),
    _row(
        "NMVS_TI_RT_01",
        C.TRANSIENT,
        "NMVS technical error: the result will be checked and the operation retried.",
        "Erreur technique du NMVS : le résultat sera vérifié et l'opération relancée.",
        ambiguous=True,
    ),
    _row(
        "NMVS_TI_RT_02",
        C.TRANSIENT,
        "NMVS communication error: the result will be checked and the operation retried.",
        "Erreur de communication du NMVS : le résultat sera vérifié et l'opération relancée.",
        ambiguous=True,
    ),
    _row(
        "NMVS_TI_TO_01",
        C.TRANSIENT,
        "The NMVS took too long: the result will be checked and the operation retried.",
        "Le NMVS a mis trop de temps : le résultat sera vérifié et l'opération relancée.",
        ambiguous=True,
    ),
    _row(
        "NMVS_TI_XM_01",
        C.TRANSIENT,
        "NMVS technical error: the result will be checked and the operation retried.",
        "Erreur technique du NMVS : le résultat sera vérifié et l'opération relancée.",
        ambiguous=True,
    ),
    _row(
        "NMVS_TI_AU_01",
        C.TRANSIENT,
        "NMVS authentication failed for technical reasons: retrying.",
        "Échec technique de l'authentification NMVS : nouvel essai.",
    ),
    _row(
        "NMVS_FI_SE_CLI_01",
        C.TRANSIENT,
        "Too many requests to the NMVS: sending slows down and resumes automatically.",
        "Trop de demandes au NMVS : les envois ralentissent et reprennent automatiquement.",
        rate_limited=True,
    ),
    _row(
        "NMVS_FI_BAT_01",
        C.TRANSIENT,
        "A process is already running for this action: retrying later.",
        "Un traitement est déjà en cours pour cette action : nouvel essai plus tard.",
    ),
    _row(
        "NMVS_FI_CFG_02",
        C.OPERATOR,
        "NMVS configuration error (no database schema for the client). Contact your NMVO.",
        "Erreur de configuration NMVS (aucun schéma pour le client). Contactez votre NMVO.",
    ),
    _row(
        "NMVS_FI_CFG_03",
        C.OPERATOR,
        "NMVS configuration error (client for the product unknown). Contact your NMVO.",
        "Erreur de configuration NMVS (client du produit inconnu). Contactez votre NMVO.",
    ),
    _row(
        "NMVS_WF_NC_01",
        C.TRANSIENT,
        "The NMVS cannot run this process now: retrying later.",
        "Le NMVS ne peut pas exécuter ce traitement maintenant : nouvel essai plus tard.",
    ),
    _row(
        "NMVS_WF_NC_02",
        C.TRANSIENT,
        "The NMVS cannot run this role now: retrying later.",
        "Le NMVS ne peut pas exécuter ce rôle maintenant : nouvel essai plus tard.",
    ),
    # --- header notifications: not return codes, but shown to the operator ------------------
    _row(
        "NMVS_NOTIFY_AU_01",
        C.INFO,
        "The old NMVS password is still in use: change it.",
        "L'ancien mot de passe NMVS est encore utilisé : changez-le.",
    ),
    _row(
        "NMVS_NOTIFY_AU_02",
        C.INFO,
        "The NMVS password expires soon: change it.",
        "Le mot de passe NMVS expire bientôt : changez-le.",
    ),
    _row(
        "NMVS_NOTIFY_PMS_01",
        C.INFO,
        "New NMVS terms and conditions must be accepted soon.",
        "De nouvelles conditions d'utilisation NMVS doivent être acceptées prochainement.",
    ),
)

CATALOGUE: dict[str, ReturnCodeInfo] = {row.code: row for row in _ROWS}

# v5 (Core 1.10) "no Alert ID" twin of each Level-5 code.
NO_ALERT_TWIN: dict[str, str] = {
    "NMVS_NC_PC_02": "NMVS_NC_PC_14",
    "NMVS_FE_LOT_03": "NMVS_FE_LOT_15",
    "NMVS_FE_LOT_12": "NMVS_FE_LOT_17",
    "NMVS_FE_LOT_13": "NMVS_FE_LOT_18",
    "NMVS_NC_PCK_06": "NMVS_NC_PCK_29",
    "NMVS_NC_PCK_19": "NMVS_NC_PCK_28",
    "NMVS_NC_PCK_22": "NMVS_NC_PCK_30",
    "NMVS_NC_PCK_27": "NMVS_NC_PCK_31",
}


# Codes whose meaning the handling class does not tell (our reading of each code's text).
_EXPIRY = frozenset(
    {"NMVS_FE_LOT_12", "NMVS_FE_LOT_17", "NMVS_FE_LOT_02", "NMVS_FE_LOT_04", "NMVS_FE_LOT_06"}
)
_UNKNOWN_PACK = frozenset(
    {
        "NMVS_NC_PC_01",
        "NMVS_NC_PC_02",
        "NMVS_NC_PC_05",
        "NMVS_NC_PC_06",
        "NMVS_NC_PC_14",
        "NMVS_FE_LOT_03",
        "NMVS_FE_LOT_13",
        "NMVS_FE_LOT_15",
        "NMVS_FE_LOT_18",
    }
)
_NOT_ALLOWED = frozenset(
    {
        "NMVS_NC_PCK_05",
        "NMVS_NC_PCK_13",
        "NMVS_NC_PCK_20",
        "NMVS_NC_PCK_21",
        "NMVS_FE_TX_01",
        "NMVS_FE_TX_03",
        "NMVS_FE_TX_05",
        "NMVS_FE_BR_01",
        "NMVS_FE_AU_08",
        "NMVS_FE_AU_09",
        "NMVS_FE_AU_12",
        "NMVS_FE_AU_15",
    }
)


def _answer_class(info: ReturnCodeInfo) -> AnswerClass:
    code = info.code
    if info.code_class is CodeClass.OK:
        return AnswerClass.SUCCESS
    if info.rate_limited:
        return AnswerClass.RATE_LIMITED
    if code in _EXPIRY:
        return AnswerClass.EXPIRY_MISMATCH
    if code in _UNKNOWN_PACK:
        return AnswerClass.UNKNOWN_PACK
    if code in _NOT_ALLOWED:
        return AnswerClass.NOT_ALLOWED
    if not info.known:
        return AnswerClass.TECHNICAL  # nobody knows what it means (an operator looks at it)
    if info.code_class is CodeClass.OPERATOR:
        return AnswerClass.AUTHENTICATION
    if info.code_class in (CodeClass.ALERT, CodeClass.REFUSED):
        return AnswerClass.WRONG_STATE  # the pack's, batch's or product's status refuses it
    return AnswerClass.TECHNICAL  # transient, pending, malformed request, informational


def lookup(code: str) -> ReturnCodeInfo:
    """The catalogue entry for ``code``; an unknown code gets a conservative entry.

    Unknown means: no alert known, not retryable, operator attention, and ``ambiguous`` (we
    cannot tell whether a state change was applied, so the engine must verify before resending).
    """
    info = CATALOGUE.get(code)
    if info is not None:
        return info
    return ReturnCodeInfo(
        code=code,
        code_class=CodeClass.OPERATOR,
        alert=False,
        hub_code=None,
        retryable=False,
        ambiguous=True,
        en="Unknown NMVS answer: the operation is paused, contact support.",
        fr="Réponse NMVS inconnue : l'opération est suspendue, contactez le support.",
        known=False,
    )
