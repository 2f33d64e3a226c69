"""The scan-level decode pipeline the capture layer and the daemon call: one scan in, one
:class:`DecodedScan` out, never an exception for bad data.

Three entry points, by transport: :func:`decode_text` (already text), :func:`decode_bytes`
(serial / CDC / HID POS: bytes are Latin-1 verbatim) and :func:`decode_keys` (a keyboard-wedge
scan as a :class:`~gateway.codes.keyboard.KeyTrace`, typed with the scanner's layout, or with
every candidate layout when the layout is ``auto``). All of them end in the same text stage:
configured prefix and suffix removed, AIM id split off, GS substitute turned into GS, then
:func:`gateway.codes.text.read_code`. Nothing is ever trimmed with ``str.strip()`` (GS, RS and
EOT are whitespace to Python) and no character is ever changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from typing import Any

from gateway.codes.gs1 import DEFAULT_SPLIT_AIS, SPLIT_AIS
from gateway.codes.keyboard import AUTO_LAYOUT, LAYOUTS, KeyboardSettings, KeyTrace, TypedText
from gateway.codes.keyboard.layouts import get_layout
from gateway.codes.keyboard.splitter import UNMAPPED
from gateway.codes.layout_belief import (
    RELEARN_AFTER,
    LayoutBelief,
    Observation,
    Verdict,
    digest,
    observe,
)
from gateway.codes.layout_typing import type_under
from gateway.codes.pack import PackIdentifier
from gateway.codes.problems import Problem, ProblemCode, error, has_error, warning
from gateway.codes.text import CALIBRATION_CODE, read_code, split_aim
from gateway.codes.validation import SET_82, char_name

# Control characters no scanner sends as data (it may send GS, RS, EOT, FS, US, CR, LF, TAB).
_BINARY = frozenset(chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]) - set(
    "\x1d\x1e\x04\x1c\x1f\r\n\t"
)
MAX_SCAN_LENGTH = 3116  # the most characters a Data Matrix (ECC 200, 144x144) can encode
_LINE_END = "\r\n"
# Every character a valid scan can hold: set 82, the control characters, AIM id and ISO/IEC
# 15434 header punctuation, an end of line (configured prefix, suffix and GS substitute added).
_SCAN_CHARACTERS = SET_82 | frozenset("\x1d\x1e\x04[]\r\n")


@dataclass(frozen=True, slots=True)
class DecodeSettings:
    """How one scanner's output is read.

    ``keyboard``: the wedge settings (layout or ``auto``, suffix keys, gap, function keys).
    ``auto_layouts``: the candidates tried when the layout is ``auto``, in order of preference.
    ``prefix``/``suffix``: removed when present. ``gs_substitute``: a character the scanner sends
    instead of GS; it must be outside set 82 (e.g. ``$``) so that it can never be data.
    ``split_ais``: the AIs a GS1 message without any GS may be cut at, ``fmd`` or ``gs1``
    (:data:`gateway.codes.gs1.SPLIT_AIS`).
    """

    keyboard: KeyboardSettings = field(default_factory=KeyboardSettings)
    auto_layouts: tuple[str, ...] = LAYOUTS
    prefix: str = ""
    suffix: str = ""
    gs_substitute: str | None = None
    split_ais: str = DEFAULT_SPLIT_AIS

    def __post_init__(self) -> None:
        unknown = [name for name in self.auto_layouts if name not in LAYOUTS]
        if unknown or not self.auto_layouts:
            raise ValueError(
                f"auto_layouts must be layouts among {', '.join(LAYOUTS)}, not {unknown or 'none'}"
            )
        if self.gs_substitute is not None and (
            len(self.gs_substitute) != 1 or self.gs_substitute in SET_82
        ):
            raise ValueError(
                f"gs_substitute must be one character outside GS1 set 82 (such as '$'), "
                f"not {self.gs_substitute!r}"
            )
        if self.split_ais not in SPLIT_AIS:
            raise ValueError(
                f"split_ais must be one of {', '.join(SPLIT_AIS)}, not {self.split_ais!r}"
            )


@dataclass(frozen=True, slots=True)
class DecodedScan:
    """One decoded scan: ``ok`` exactly when no problem is an error; ``pack`` whenever determined."""

    text: str
    pack: PackIdentifier | None
    problems: tuple[Problem, ...]
    aim: str | None = None
    layout: str | None = None
    # layout "auto": the layouts whose reading counts (or, refused, that read a valid pack)
    layouts: tuple[str, ...] = ()
    # layout "auto": what the scanner's scans have shown about its layout, this one included
    belief: LayoutBelief | None = None

    @property
    def ok(self) -> bool:
        return not has_error(self.problems)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ok": self.ok,
            "text": self.text,
            "layout": self.layout,
            "pack": None if self.pack is None else self.pack.to_json(),
            "problems": [problem.to_json() for problem in self.problems],
            "aim": self.aim,
        }
        if self.layouts:
            data["layouts"] = list(self.layouts)
        if self.belief is not None:
            data["layout_belief"] = self.belief.to_json()
        return data


def decode_text(text: str, settings: DecodeSettings) -> DecodedScan:
    """Decode one scan that is already text (``text`` is reported back unchanged).

    When it is not a valid pack but reads as one once its characters are taken back through a
    (scanner layout, host layout) pair, the pair is named in a ``SUSPECT_LAYOUT_MISMATCH``
    problem: a hint for the technician, never a correction (the pack stays the text's own).
    """
    scan = _read_text(text, settings)
    if scan.pack is not None or not {p.code for p in scan.problems} & _NO_FIELDS_READ:
        return scan  # valid, or fields were read and their own problems say what to do
    hint = _layout_pair_hint(text, settings)
    if hint is None:
        return scan
    rest = tuple(p for p in scan.problems if p.code is not ProblemCode.SUSPECT_LAYOUT_MISMATCH)
    return replace(scan, problems=(hint, *rest))


def _read_text(text: str, settings: DecodeSettings) -> DecodedScan:
    """:func:`decode_text` without the layout-pair hint (each layout's text in layout ``auto``)."""
    if len(text) > MAX_SCAN_LENGTH:
        return bad_input(
            text,
            f"{len(text)} characters, more than any DataMatrix holds",
            f"{len(text)} caractères, plus qu'un DataMatrix ne peut en contenir",
        )
    for position, char in enumerate(text, 1):
        if char in _BINARY:
            return bad_input(
                text,
                f"binary data, {char_name(char)} at position {position}",
                f"données binaires, {char_name(char)} en position {position}",
            )
    body = text.rstrip(_LINE_END)  # only CR/LF: an end-of-line suffix is never data
    if settings.prefix and body.startswith(settings.prefix):
        body = body[len(settings.prefix) :]
    if settings.suffix and body.endswith(settings.suffix):
        body = body[: -len(settings.suffix)]
    aim, body = split_aim(body)
    reading = read_code(body, aim, settings.gs_substitute, settings.split_ais)
    return DecodedScan(text=text, pack=reading.pack, problems=reading.problems, aim=aim)


def decode_bytes(data: bytes, settings: DecodeSettings) -> DecodedScan:
    """Decode one scan received as bytes; binary garbage gives ``BAD_INPUT``, never an exception."""
    return decode_text(data.decode("latin-1"), settings)


def decode_keys(
    trace: KeyTrace, settings: DecodeSettings, belief: LayoutBelief | None = None
) -> DecodedScan:
    """Decode one keyboard-wedge scan under the configured layout, or for ``auto`` under the
    layouts ``belief`` (what this scanner's earlier scans showed; none: a first scan) still
    allows; the result carries the updated belief (:mod:`gateway.codes.layout_belief`)."""
    if settings.keyboard.layout == AUTO_LAYOUT and belief is None:
        belief = LayoutBelief.fresh(settings.auto_layouts)
    if trace.interrupted or trace.truncated:
        problem = (
            error(
                ProblemCode.SCAN_INTERRUPTED,
                "the system dropped key events during the scan",
                "le système a perdu des événements clavier pendant le scan",
            )
            if trace.interrupted
            else error(
                ProblemCode.SCAN_INTERRUPTED,
                f"{trace.keys_discarded} keys beyond the per-scan limit were dropped",
                f"{trace.keys_discarded} touches au-delà de la limite par scan ont été ignorées",
            )
        )
        shown = settings.keyboard.layout if belief is None else belief.candidates[0]
        partial = type_under(trace, (shown,))[shown].text  # what did arrive, for the technician
        return DecodedScan(
            text=partial, pack=None, problems=(problem,), layout=shown, belief=belief
        )
    if belief is not None:
        return _decode_auto(trace, settings, belief)
    layout = settings.keyboard.layout
    scan = _decode_typed(layout, type_under(trace, (layout,))[layout], settings, {})
    if scan.ok:
        return scan
    others = tuple(name for name in settings.auto_layouts if name != layout)
    if not others:
        return scan
    valid = _valid_readings(trace, settings, others, {})
    if not valid:  # no other layout reads a valid pack either
        return scan
    named = ", ".join(reading.layout or "" for reading in valid)
    count = len({reading.pack for reading in valid})
    if count == 1:
        hint = error(
            ProblemCode.SUSPECT_LAYOUT_MISMATCH,
            f"the keys give a valid pack with layout {named}, not with {layout}",
            f"les touches donnent une boîte valide avec la disposition {named}, pas avec {layout}",
        )
    else:  # other layouts read different valid packs: still a layout problem, none is picked
        hint = error(
            ProblemCode.SUSPECT_LAYOUT_MISMATCH,
            f"the keys give {count} different valid packs with layouts {named}, none with {layout}",
            f"les touches donnent {count} boîtes valides différentes avec les dispositions "
            f"{named}, aucune avec {layout}",
        )
    # The keys say more than the characters: the character-level suspicion is left out.
    rest = tuple(p for p in scan.problems if p.code is not ProblemCode.SUSPECT_LAYOUT_MISMATCH)
    return replace(scan, problems=(hint, *rest))


def _decode_typed(
    layout: str, typed: TypedText, settings: DecodeSettings, decoded: dict[str, DecodedScan]
) -> DecodedScan:
    """Decode what a trace typed under ``layout``; ``decoded`` caches the texts already seen."""
    if typed.unmapped:
        shown = ", ".join(typed.unmapped[:3])
        more = len(typed.unmapped) - 3
        problem = error(
            ProblemCode.UNMAPPED_KEY,
            f"{shown}{f' and {more} more' if more > 0 else ''} in layout {layout}",
            f"{shown}{f' et {more} autres' if more > 0 else ''} dans la disposition {layout}",
        )
        return DecodedScan(text=typed.text, pack=None, problems=(problem,), layout=layout)
    scan = decoded.get(typed.text)
    if scan is None:
        scan = decoded[typed.text] = _read_text(typed.text, settings)
    return replace(scan, layout=layout)


def _valid_readings(
    trace: KeyTrace,
    settings: DecodeSettings,
    candidates: tuple[str, ...],
    decoded: dict[str, DecodedScan],
) -> list[DecodedScan]:
    """The readings of ``trace`` that are a valid pack, one per candidate layout, in order."""
    # Only texts made of characters a pack code can arrive in are worth a full decode.
    possible = _SCAN_CHARACTERS.union(
        settings.prefix, settings.suffix, settings.gs_substitute or ""
    )
    valid = []
    for name, typed in type_under(trace, candidates, possible).items():
        scan = _decode_typed(name, typed, settings, decoded)
        if scan.ok and scan.pack is not None:
            valid.append(scan)
    return valid


def _decode_auto(trace: KeyTrace, settings: DecodeSettings, belief: LayoutBelief) -> DecodedScan:
    """Read the trace under the layouts the belief allows; refuse when they disagree."""
    decoded: dict[str, DecodedScan] = {}
    learned = belief.candidates
    others = tuple(name for name in settings.auto_layouts if name not in learned)
    # The learned layouts alone answer when one reads a valid pack and no misfit is pending;
    # otherwise every layout is needed to see where the scan fits.
    valid = _valid_readings(trace, settings, learned, decoded)
    if not valid or belief.pending:
        valid += _valid_readings(trace, settings, others, decoded)
    if not valid:
        scans = [
            _decode_typed(name, typed, settings, decoded)
            for name, typed in type_under(trace, learned + others).items()
        ]
        cards = [scan for scan in scans if scan.problems == (CALIBRATION_CODE,)]
        if cards:  # the calibration code: the layouts that typed it exactly are the scanner's
            calibration = tuple(card.layout or "" for card in cards)
            belief = LayoutBelief.from_calibration(calibration, belief)
            return replace(cards[0], layouts=calibration, belief=belief)
        # Nothing valid: report the reading with the fewest problems (unmapped keys last),
        # preferring the learned layouts.
        worst = min(
            scans,
            key=lambda scan: (
                any(p.code is ProblemCode.UNMAPPED_KEY for p in scan.problems),
                len(scan.problems),
            ),
        )
        return replace(worst, belief=belief)
    by_layout = {scan.layout or "": scan for scan in valid}
    strokes = tuple((k.code, k.modifiers, k.fixed, k.alt_digits) for k in trace.strokes)
    seen = observe(
        belief,
        {name: scan.pack for name, scan in by_layout.items() if scan.pack},
        digest(repr(strokes)),
    )
    readings = [by_layout[name] for name in seen.layouts]
    if seen.verdict is Verdict.MISFIT:
        return DecodedScan(
            text=readings[0].text,
            pack=None,
            problems=(_misfit(seen, learned),),
            aim=readings[0].aim,
            layouts=seen.layouts,
            belief=seen.belief,
        )
    packs = {scan.pack for scan in readings}
    warnings = (_relearned(seen, learned),) if seen.verdict is Verdict.RELEARNED else ()
    if len(packs) == 1:
        first = readings[0]
        return replace(
            first,
            problems=(*warnings, *first.problems),
            layouts=seen.layouts,
            belief=seen.belief,
        )
    distinct: dict[PackIdentifier | None, str | None] = {}
    for scan in readings:
        distinct.setdefault(scan.pack, scan.layout)
    named = ", ".join(str(name) for name in distinct.values())
    return DecodedScan(
        text=readings[0].text,
        pack=None,
        problems=(
            error(
                ProblemCode.LAYOUT_AMBIGUOUS,
                f"layouts {named} read {len(packs)} different valid packs",
                f"les dispositions {named} lisent {len(packs)} boîtes valides différentes",
            ),
            *warnings,
        ),
        aim=readings[0].aim,
        layouts=seen.layouts,
        belief=seen.belief,
    )


def _named(layouts: tuple[str, ...]) -> str:
    return "/".join(layouts[:_MAX_NAMED]) + ("/…" if len(layouts) > _MAX_NAMED else "")


def _misfit(seen: Observation, learned: tuple[str, ...]) -> Problem:
    count, proofs = len(seen.belief.misfits), seen.belief.proofs
    return error(
        ProblemCode.LAYOUT_CHANGED,
        f"it reads as a valid pack only with layout {_named(seen.layouts)}, but this scanner "
        f"has typed as {_named(learned)} ({proofs} scans); {count} of {RELEARN_AFTER} different "
        "codes so far",
        f"il ne se lit comme une boîte valide qu'avec la disposition {_named(seen.layouts)}, "
        f"mais ce scanner tape en {_named(learned)} ({proofs} scans) ; {count} codes différents "
        f"sur {RELEARN_AFTER} jusqu'ici",
    )


def _relearned(seen: Observation, learned: tuple[str, ...]) -> Problem:
    return warning(
        ProblemCode.LAYOUT_CHANGED,
        f"the scanner now types as {_named(seen.layouts)}, no longer as {_named(learned)}: "
        f"{RELEARN_AFTER} different codes showed it",
        f"le scanner tape désormais en {_named(seen.layouts)} et non plus en {_named(learned)} : "
        f"{RELEARN_AFTER} codes différents l'ont montré",
    )


@cache
def _meant_by_scanners(host: str) -> dict[str, tuple[str, ...]]:
    """Character a host set to ``host`` shows → what a scanner set to each of :data:`LAYOUTS`
    meant by the same key (the host's preferred key for it); control characters pass."""
    scanners = [get_layout(name) for name in LAYOUTS]
    table = {char: (char,) * len(LAYOUTS) for char in "\x1d\x1e\x04\r\n"}
    for shown, chord in get_layout(host).chords().items():
        if len(shown) == 1:  # not a dead key
            typed = [layout.output(chord.code, chord.shift, chord.altgr) for layout in scanners]
            table[shown] = tuple(t if t is not None and len(t) == 1 else UNMAPPED for t in typed)
    return table


@lru_cache(maxsize=64)
def _scan_character_masks(host: str, possible: frozenset[str]) -> dict[str, int]:
    """Character the host shows → bit mask of the scanner layouts (:data:`LAYOUTS` order) under
    which it means a character of ``possible``."""
    return {
        shown: sum(1 << bit for bit, char in enumerate(meant) if char in possible)
        for shown, meant in _meant_by_scanners(host).items()
    }


# The hint's bounds: longer than any pack code (FMD fields, NHRN, AIM id, separators: ~120),
# and how many distinct retyped texts are decoded at most (each may search splits).
_MAX_HINT_LENGTH = 256
_MAX_HINT_READINGS = 24
_MAX_NAMED = 3  # layouts or hosts named in a hint
# Texts in which no field could be read: only then are layout pairs worth a try.
_NO_FIELDS_READ = frozenset({ProblemCode.UNKNOWN_FORMAT, ProblemCode.SUSPECT_LAYOUT_MISMATCH})


def _layout_pair_hint(text: str, settings: DecodeSettings) -> Problem | None:
    """``SUSPECT_LAYOUT_MISMATCH`` naming the (scanner layout, host layout) pairs through which
    a valid pack would have arrived as ``text``, or None when no pair explains it."""
    if len(text) > _MAX_HINT_LENGTH:
        return None
    distinct = tuple(set(text))  # what each pair makes of these decides the whole text
    possible = _SCAN_CHARACTERS.union(
        settings.prefix, settings.suffix, settings.gs_substitute or ""
    )
    readings: dict[tuple[str, ...], PackIdentifier | None] = {}
    pairs: list[tuple[str, str, PackIdentifier]] = []
    for index, host in enumerate(LAYOUTS):
        # Scanners (bits, in LAYOUTS order) under which every character means a scan character.
        masks = _scan_character_masks(host, possible)
        candidates = ~(1 << index)  # the host's own layout explains nothing
        for char in distinct:
            candidates &= masks.get(char, 0)  # 0 as well when the host cannot show it
            if not candidates:
                break
        if not candidates:
            continue
        meant_by = _meant_by_scanners(host)
        for bit, scanner in enumerate(LAYOUTS):
            if not candidates >> bit & 1:
                continue
            meant = tuple(meant_by[char][bit] for char in distinct)
            if meant not in readings:
                if len(readings) == _MAX_HINT_READINGS:
                    break  # enough to say it is a layout problem; a storm cannot cost more
                reading = None
                if meant != distinct:
                    retyped = text.translate(
                        {ord(a): b for a, b in zip(distinct, meant, strict=True)}
                    )
                    reading = _read_text(retyped, settings)
                readings[meant] = reading.pack if reading and reading.ok else None
            pack = readings[meant]
            if pack is not None:
                pairs.append((scanner, host, pack))
    if not pairs:
        return None
    # Layouts that type a text alike come in families (us, pl, ro…): one line per host and pack.
    scanners: dict[tuple[str, PackIdentifier], list[str]] = {}
    for scanner, host, pack in pairs:
        scanners.setdefault((host, pack), []).append(scanner)
    groups = [
        ("/".join(names[:_MAX_NAMED]) + ("/…" if len(names) > _MAX_NAMED else ""), host)
        for (host, _), names in scanners.items()
    ]
    shown = ", or ".join(f"{names} on {host}" for names, host in groups[:_MAX_NAMED])
    shown_fr = ", ou ".join(f"{names} sur {host}" for names, host in groups[:_MAX_NAMED])
    more = len(groups) - _MAX_NAMED
    count = len({pack for _, _, pack in pairs})
    packs = "a valid pack" if count == 1 else f"{count} different valid packs"
    packs_fr = "une boîte valide" if count == 1 else f"{count} boîtes valides différentes"
    return error(
        ProblemCode.SUSPECT_LAYOUT_MISMATCH,
        f"it reads as {packs} if typed with scanner layout {shown}"
        + (f", and {more} more" if more > 0 else ""),
        f"il se lit comme {packs_fr} s'il a été tapé avec la disposition de scanner {shown_fr}"
        + (f", et {more} de plus" if more > 0 else ""),
    )


def bad_input(text: str, detail: str, fr: str = "") -> DecodedScan:
    """The result for input that is not a scan at all (used by the ``decode`` command)."""
    problem = error(ProblemCode.BAD_INPUT, detail, fr)
    return DecodedScan(text=text, pack=None, problems=(problem,))
